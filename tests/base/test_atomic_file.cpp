// Atomic writes leave either the old file or the new one, never a partial file or a temporary.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// A small tmpfs mounted at `dir` (options e.g. "size=64k" or "ro"), unmounted when it dies; mounted()
// is false where mounting is not allowed (not root, or a container without CAP_SYS_ADMIN).
class TmpfsMount {
 public:
  TmpfsMount(std::string dir, const std::string& options) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    mounted_ = std::system(("mount -t tmpfs -o " + options + " tmpfs '" + dir_ + "' 2>/dev/null").c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_ && std::system(("umount '" + dir_ + "'").c_str()) != 0) std::perror("umount");
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST(AtomicFile, FullTmpfsGivesNoSpaceLeftAndLeavesNoTemporary) {
  test::TempDir dir;
  TmpfsMount small(dir.file("small"), "size=64k");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (FullDisk... covers failed writes)";
  try {
    write_file_atomic(dir.file("small/out.bin"), std::string(1 << 20, 'x'));
    ADD_FAILURE() << "1 MiB written into a 64 KiB tmpfs";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("small/out.bin") + ": cannot write (No space left on device)");
  }
  EXPECT_EQ(count_files(dir.file("small")), 0);
  write_file_atomic(dir.file("small/out.bin"), std::string(1000, 'x'));  // what fits is written
  EXPECT_EQ(read_file(dir.file("small/out.bin")).size(), 1000u);
}

TEST(AtomicFile, ReadOnlyFolderGivesTheCause) {
  test::TempDir dir;
  fs::create_directories(dir.file("ro"));
  fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  std::string cause = "Permission denied";
  std::unique_ptr<TmpfsMount> read_only;
  if (access(dir.file("ro").c_str(), W_OK) == 0) {
    // Root ignores permissions: a read-only tmpfs stops root too.
    fs::permissions(dir.file("ro"), fs::perms::owner_all);
    read_only = std::make_unique<TmpfsMount>(dir.file("ro"), "ro,size=64k");
    if (!read_only->mounted())
      GTEST_SKIP() << "root without mount: no read-only folder to test (FullDisk... covers failed writes)";
    cause = "Read-only file system";
  }
  try {
    write_file_atomic(dir.file("ro/out.bin"), "x");
    ADD_FAILURE() << "wrote into a read-only folder";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("ro/out.bin") + ": cannot open for writing (" + cause + ")");
  }
  EXPECT_EQ(count_files(dir.file("ro")), 0);
  read_only.reset();
  fs::permissions(dir.file("ro"), fs::perms::owner_all);
}

// A writer killed mid-write (here: a child that writes its temporary and SIGKILLs itself) leaves
// its temporary; remove_stale_temporaries takes exactly those directly in the folder, and never
// one in a subfolder (outputs are never written there), a live process's temporary, another
// machine's, or any other hidden file.
TEST(AtomicFile, StaleTemporariesOfKilledWritersAreRemovedAndNothingElse) {
  test::TempDir dir;
  fs::create_directories(dir.file("sub"));
  const std::string killed_temps[2] = {test::killed_writer_temporary(dir.file("a.tif")),
                                       test::killed_writer_temporary(dir.file("sub/b.ckpt"))};
  for (const std::string& temp : killed_temps) ASSERT_TRUE(fs::exists(temp)) << temp;
  AtomicFile live(dir.file("c.png"));  // this process: running
  std::ofstream(live.temp_path()) << "in progress";
  // This machine's tag, as the names carry it: ".c.png.tmp-<host>-<pid>-<n>.png".
  const std::string live_name = fs::path(live.temp_path()).filename().string();
  const size_t tag_at = live_name.find(".tmp-") + 5;
  const std::string host = live_name.substr(tag_at, live_name.find("-" + std::to_string(::getpid()) + "-") - tag_at);
  ASSERT_FALSE(host.empty());
  const std::string dead_pid = killed_temps[0].substr(killed_temps[0].rfind(".tmp-" + host + "-") + host.size() + 6);
  const std::vector<std::string> kept = {
      dir.file(".d.tmp-" + host + "x-" + dead_pid),  // another machine's (same dead pid)
      dir.file(".e.tmp-" + host + "-1-0"),           // process 1 runs
      dir.file(".notes"),                             // a hidden file, not a temporary
      dir.file(".f.tmp-" + host + "-12x-0"),          // not a temporary's name
      dir.file("a.tif"),
  };
  for (const auto& p : kept) std::ofstream(p) << "keep";
  EXPECT_EQ(remove_stale_temporaries(dir.path()), 1u);
  EXPECT_FALSE(fs::exists(killed_temps[0])) << killed_temps[0];
  EXPECT_TRUE(fs::exists(killed_temps[1])) << killed_temps[1];  // in sub/: not looked at
  EXPECT_EQ(remove_stale_temporaries(dir.file("sub")), 1u);       // unless sub/ is the folder
  EXPECT_FALSE(fs::exists(killed_temps[1])) << killed_temps[1];
  EXPECT_TRUE(fs::exists(live.temp_path()));
  for (const auto& p : kept) EXPECT_TRUE(fs::exists(p)) << p;
  EXPECT_EQ(remove_stale_temporaries(dir.path()), 0u);
  EXPECT_EQ(remove_stale_temporaries(dir.file("missing")), 0u);
}
