// Typed exceptions. The CLI catches them, prints what() on one line and exits:
// UsageError -> 2, every other Error -> 1.
#pragma once

#include <stdexcept>
#include <string>

namespace nucleisam {

// Base of every error the engine raises on purpose. The message must name the file (when there
// is one) and the cause, in words a user can act on.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The command line was wrong (unknown option value, conflicting flags). Exit code 2.
struct UsageError : Error {
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

}  // namespace nucleisam
