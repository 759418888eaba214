// Atomic file output (temporary + rename) and whole-file reading.
#include "nucleisam/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nucleisam/errors.h"

namespace fs = std::filesystem;

namespace nucleisam {
namespace {
std::atomic<int> g_counter{0};
}

void ensure_parent_dir(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw IoError(parent.string() + ": cannot create folder (" + ec.message() + ")");
}

AtomicFile::AtomicFile(std::string target) : target_(std::move(target)) {
  fs::path t(target_);
  ensure_parent_dir(target_);
  // At most 128 bytes of the target's name, so that the temporary of a 255-byte name still fits
  // the file system's name limit.
  std::string name = "." + t.filename().string().substr(0, 128) + ".tmp-" + std::to_string(getpid()) + "-" +
                     std::to_string(g_counter++) + t.extension().string();
  temp_ = (t.parent_path() / name).string();
}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::commit() {
  if (committed_) return;
  // Whatever wrote the temporary (our writer, OpenCV, libtiff), its data must be on disk before
  // the rename makes it the output: a full disk shows here (delayed allocation) and not later.
  const int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    std::remove(temp_.c_str());
    throw IoError(target_ + ": cannot write (" + std::strerror(err) + ")");
  }
  ::close(fd);
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    int err = errno;
    std::remove(temp_.c_str());
    throw IoError(target_ + ": cannot write (" + std::strerror(err) + ")");
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  // POSIX calls, so that every failure (ENOSPC, EFBIG, EROFS, EACCES, EIO) is seen with its cause;
  // the temporary is removed by ~AtomicFile when anything throws.
  const auto fail = [&](const char* what, int err) {
    throw IoError(path + ": " + what + " (" + std::strerror(err) + ")");
  };
  const int fd = ::open(f.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot open for writing", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      fail("cannot write", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) fail("cannot write", errno);
  f.commit();  // fsyncs before the rename (one fsync per file, whoever wrote it)
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path + ": no such file");
  if (fs::is_directory(path, ec)) throw IoError(path + ": is a folder, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return s.str();
}

}  // namespace nucleisam
