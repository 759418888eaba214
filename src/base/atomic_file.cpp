// Atomic file output (temporary + rename) and whole-file reading.
#include "nucleisam/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/log.h"

namespace fs = std::filesystem;

namespace nucleisam {
namespace {
std::atomic<int> g_counter{0};

// This machine's name as it goes into a temporary's name: at most 64 bytes of letters, digits,
// '.' and '_' ('-' separates the fields, so it and anything else become '_').
const std::string& host_tag() {
  static const std::string tag = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == 0) return std::string("host");
    std::string t;
    for (const char* c = name; *c && t.size() < 64; ++c)
      t += (std::isalnum(static_cast<unsigned char>(*c)) || *c == '.') ? *c : '_';
    return t;
  }();
  return tag;
}

bool process_runs(pid_t pid) { return pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM; }
}  // namespace

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
  std::string name = "." + t.filename().string().substr(0, 128) + ".tmp-" + host_tag() + "-" +
                     std::to_string(getpid()) + "-" + std::to_string(g_counter++) + t.extension().string();
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

size_t remove_stale_temporaries(const std::string& dir) {
  const std::string marker = ".tmp-" + host_tag() + "-";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  size_t removed = 0;
  // The folder itself, not its subfolders: outputs never go below it (output_path_inside), and a
  // mistaken --out / must not walk the whole disk.
  for (auto it = fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(marker);
    if (name.empty() || name[0] != '.' || at == std::string::npos || !it->is_regular_file(ec)) continue;
    // ".<target>.tmp-<host>-<pid>-<n>[<extension>]"
    const char* digits = name.c_str() + at + marker.size();
    char* end = nullptr;
    errno = 0;
    const long pid = std::strtol(digits, &end, 10);
    if (end == digits || *end != '-' || errno != 0 || pid <= 0 || !std::isdigit(static_cast<unsigned char>(end[1])))
      continue;
    if (process_runs(static_cast<pid_t>(pid))) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  if (removed > 0) log::info(dir, ": removed ", removed, " temporary file(s) left by killed runs");
  return removed;
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
