// `nucleisam segment` against damaged input, hostile file names and a full disk, through the built
// binary: a cut JPEG is refused (one line naming the file, exit 1) unless --accept-damaged-images;
// outputs of odd names stay inside --out; a full disk gives one error, no partial output, and a
// later run with space completes with the same bytes as a run that never failed.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <sys/wait.h>

#include "nucleisam/atomic_file.h"
#include "nucleisam/image_io.h"
#include "cli/synthetic_tile.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace nucleisam;
using namespace nucleisam::io;

namespace {

using Result = ::nucleisam::test::CliResult;
Result run(const std::string& args) { return ::nucleisam::test::run_cli(args); }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The segment tests' tile, 64 rows, with a little texture.
Image tile(int n) { return test::synthetic_tile(n, 64, 5); }

// Runs the binary through sh with `prefix` (e.g. a ulimit) in front; stdout + stderr.
Result run_with(const std::string& prefix, const std::string& args) {
  Result r;
  const std::string cmd = "sh -c '" + prefix + " exec " + test::binary_dir() + "/nucleisam " + args + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

}  // namespace

TEST(ReliabilityCli, CutJpegIsRefusedUnlessAccepted) {
  test::TempDir dir;
  write_image(dir.file("whole.jpg"), tile(3));
  const std::string whole = read_file(dir.file("whole.jpg"));
  ASSERT_GT(whole.size(), 1500u);
  write_file_atomic(dir.file("cut.jpg"), whole.substr(0, whole.size() / 2));
  Result r = run("--quiet segment --model classical --input " + dir.file("cut.jpg") + " --out " + dir.file("out"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("nucleisam: " + dir.file("cut.jpg") + ": damaged image: JPEG cut short", 0), 0u) << r.out;
  EXPECT_EQ(test::count_lines(r.out), 1) << r.out;
  EXPECT_FALSE(fs::exists(dir.file("out/cut.geojson")));
  r = run("--accept-damaged-images segment --model classical --input " + dir.file("cut.jpg") + " --out " +
          dir.file("out"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "warning: " + dir.file("cut.jpg") + ": damaged image")) << r.out;
  EXPECT_TRUE(fs::exists(dir.file("out/cut.geojson")));
  EXPECT_TRUE(contains(run("--help").out, "--accept-damaged-images"));
}

TEST(ReliabilityCli, HostileInputNamesStayInsideTheOutputFolder) {
  test::TempDir dir;
  const std::string odd = "odd\nname\x01";
  const std::string long_name(240, 'L');
  write_image(dir.file("in/" + odd + ".png"), tile(1));
  write_image(dir.file("in/" + long_name + ".png"), tile(2));
  const std::set<std::string> around = names_in(dir.path());
  Result r = run("segment --model classical --formats geojson,csv --input " + dir.file("in") + " --out " +
                 dir.file("out"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(names_in(dir.path()), (std::set<std::string>{"in", "out"}));
  EXPECT_EQ(around, (std::set<std::string>{"in"}));
  const std::string cut(200, 'L');  // limits::kMaxOutputNameBytes
  EXPECT_EQ(names_in(dir.file("out")), (std::set<std::string>{"odd_name_.geojson", "odd_name__nuclei.csv",
                                                              cut + ".geojson", cut + "_nuclei.csv"}));
}

TEST(ReliabilityCli, FullDiskGivesOneErrorNoPartialOutputAndARerunCompletes) {
  test::TempDir dir;
  for (int i = 0; i < 3; ++i) write_image(dir.file("in/t" + std::to_string(i) + ".png"), tile(2 + i));
  const std::string args = "segment --model classical --input " + dir.file("in") + " --out ";
  Result clean = run(args + dir.file("clean"));
  ASSERT_EQ(clean.code, 0) << clean.out;
  // Files may not grow past a few KiB (ulimit -f, SIGXFSZ ignored): writes fail with EFBIG, as on
  // a full disk. A label TIFF or overlay PNG of these tiles is larger than that.
  Result full = run_with("ulimit -f 8; trap \"\" XFSZ;", args + dir.file("out"));
  EXPECT_EQ(full.code, 1) << full.out;
  EXPECT_TRUE(contains(full.out, "nucleisam: " + dir.file("out/t0_")) && contains(full.out, "(File too large)"))
      << full.out;
  // No temporary and no partial file: every output present is byte-identical to the clean run's.
  for (const std::string& name : names_in(dir.file("out"))) {
    EXPECT_NE(name[0], '.') << name;
    EXPECT_EQ(read_file(dir.file("out/" + name)), read_file(dir.file("clean/" + name))) << name;
  }
  Result again = run(args + dir.file("out"));
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(names_in(dir.file("out")), names_in(dir.file("clean")));
  for (const std::string& name : names_in(dir.file("clean")))
    EXPECT_EQ(read_file(dir.file("out/" + name)), read_file(dir.file("clean/" + name))) << name;
}
