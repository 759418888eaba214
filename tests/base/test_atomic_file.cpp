// Atomic writes leave either the old file or the new one, never a partial file or a temporary.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "support/test_support.h"

using namespace nucleisam;
namespace fs = std::filesystem;

static int count_files(const std::string& dir) {
  int n = 0;
  for (auto& e : fs::directory_iterator(dir)) { (void)e; ++n; }
  return n;
}

TEST(AtomicFile, UncommittedWriteLeavesNothing) {
  test::TempDir dir;
  {
    AtomicFile f(dir.file("out.png"));
    EXPECT_EQ(fs::path(f.temp_path()).extension(), ".png");
    std::ofstream(f.temp_path()) << "partial";
    // An exception before commit(): the destructor cleans up.
  }
  EXPECT_FALSE(fs::exists(dir.file("out.png")));
  EXPECT_EQ(count_files(dir.path()), 0);
}

TEST(AtomicFile, CommitReplacesOldContent) {
  test::TempDir dir;
  write_file_atomic(dir.file("a/b/c.txt"), "first");
  EXPECT_EQ(read_file(dir.file("a/b/c.txt")), "first");
  write_file_atomic(dir.file("a/b/c.txt"), "second");
  EXPECT_EQ(read_file(dir.file("a/b/c.txt")), "second");
  EXPECT_EQ(count_files(dir.file("a/b")), 1);
}

TEST(AtomicFile, ReadErrorsNameThePath) {
  test::TempDir dir;
  try {
    read_file(dir.file("nope.bin"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("nope.bin") + ": no such file");
  }
  EXPECT_THROW(read_file(dir.path()), IoError);
}

namespace {

// Runs `write` in a forked child whose files may not grow past `limit` bytes (RLIMIT_FSIZE, with
// SIGXFSZ ignored, so write() fails with EFBIG as on a full disk: this works as root too, where a
// read-only chmod does not stop writes). Returns the IoError message the child caught ("" when the
// write succeeded).
std::string error_when_disk_is_full(const std::function<void()>& write, rlim_t limit) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);
    rlimit r{limit, limit};
    setrlimit(RLIMIT_FSIZE, &r);
    std::string message;
    try {
      write();
    } catch (const IoError& e) {
      message = e.what();
    }
    if (!message.empty() && ::write(fds[1], message.data(), message.size()) < 0) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  std::string message;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) message.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return message;
}

}  // namespace

TEST(AtomicFile, FullDiskGivesOneErrorKeepsTheOldFileAndLeavesNoTemporary) {
  test::TempDir dir;
  write_file_atomic(dir.file("out.bin"), "old content");
  const std::string big(1 << 20, 'x');
  const std::string message =
      error_when_disk_is_full([&] { write_file_atomic(dir.file("out.bin"), big); }, 64 * 1024);
  EXPECT_EQ(message, dir.file("out.bin") + ": cannot write (File too large)");
  EXPECT_EQ(read_file(dir.file("out.bin")), "old content");
  EXPECT_EQ(count_files(dir.path()), 1);  // no temporary left behind
  // With space again, the same write completes.
  write_file_atomic(dir.file("out.bin"), big);
  EXPECT_EQ(read_file(dir.file("out.bin")).size(), big.size());
  EXPECT_EQ(count_files(dir.path()), 1);
}

TEST(AtomicFile, ReadOnlyFolderGivesTheCause) {
  test::TempDir dir;
  fs::create_directories(dir.file("ro"));
  fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  if (access(dir.file("ro").c_str(), W_OK) == 0) {
    fs::permissions(dir.file("ro"), fs::perms::owner_all);
    GTEST_SKIP() << "running as root: a read-only folder does not stop writes (FullDisk... covers failed writes)";
  }
  try {
    write_file_atomic(dir.file("ro/out.bin"), "x");
    ADD_FAILURE() << "wrote into a read-only folder";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("ro/out.bin") + ": cannot open for writing (Permission denied)");
  }
  fs::permissions(dir.file("ro"), fs::perms::owner_all);
  EXPECT_EQ(count_files(dir.file("ro")), 0);
}
