// Atomic output: write to a temporary file next to the target, then rename over it. A crash or
// an error never leaves a half-written output under the final name.
#pragma once

#include <string>

namespace nucleisam {

class AtomicFile {
 public:
  // The temporary is hidden, names this machine and this process, and keeps the target's extension
  // so that encoders that choose a format by extension (OpenCV) still work:
  // "out/.mask.png.tmp-node7-1234-0.png" (host node7, process 1234, this process's first).
  explicit AtomicFile(std::string target);
  ~AtomicFile();  // removes the temporary unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  // Renames the temporary to the target. Throws IoError on failure.
  void commit();

 private:
  std::string target_, temp_;
  bool committed_ = false;
};

// Writes bytes to path atomically; creates missing parent folders.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Reads a whole file; throws IoError naming the path when it is missing or unreadable.
std::string read_file(const std::string& path);
// Creates path's parent folders if missing (throws IoError on failure).
void ensure_parent_dir(const std::string& path);

// Removes the temporaries that AtomicFile writers on this machine left in `dir` (not in its
// subfolders: outputs are never written below an output folder) when they were killed (kill -9,
// power loss): hidden files named as above whose host is this machine and whose process no longer
// runs. A temporary of a live process, or of another machine
// writing to the same shared folder, is never touched. Returns how many were removed (and says so
// at info level when any were); a missing folder is 0. Called by every command that resumes into
// an output folder.
size_t remove_stale_temporaries(const std::string& dir);

}  // namespace nucleisam
