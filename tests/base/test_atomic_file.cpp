// Atomic writes leave either the old file or the new one, never a partial file or a temporary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
