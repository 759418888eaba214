// The library's typed exceptions. Library code throws only these (never the CLI's UsageError,
// never a raw c10::Error for bad input: LibTorch errors are translated at the module boundary
// into a message that names the input). The CLI catches them, prints what() on one line and
// exits: OptionError -> 2 (like its own UsageError), every other Error -> 1.
#pragma once

#include <stdexcept>
#include <string>

namespace nucleisam {

// Base of every error the engine raises on purpose. The message must name the file (when there
// is one) and the cause, in words a user can act on.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A function was given an option value it cannot use (a tile size, an output format name, a SAM
// input size, an unknown segmenter). The CLI exits with code 2 for it, as for its UsageError.
struct OptionError : Error {
  using Error::Error;
};

// A file could not be read or written, or its content is not what it should be.
struct IoError : Error {
  using Error::Error;
};

// A model checkpoint is corrupt, unsafe, or does not match the model it is loaded into.
struct CheckpointError : Error {
  using Error::Error;
};

// A model cannot be built or run as asked (unknown architecture or option, bad option value,
// input of the wrong shape).
struct ModelError : Error {
  using Error::Error;
};

// A dataset is inconsistent (image and labels of different sizes, unknown class id, ...).
struct DataError : Error {
  using Error::Error;
};

// Multi-process training failed: the rendezvous did not complete, or another process stopped
// answering (it died, or a collective timed out).
struct DistributedError : Error {
  using Error::Error;
};

}  // namespace nucleisam
