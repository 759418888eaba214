// The CLI's contract: exit codes (0 ok, 1 runtime failure, 2 usage), one-line errors that name the
// file and the cause, --version contents.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>

#include "nucleisam/atomic_file.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/image_io.h"
#include "support/test_support.h"

namespace {

using Result = ::nucleisam::test::CliResult;

Result run(const std::string& args) { return ::nucleisam::test::run_cli(args); }

int lines(const std::string& s) { return ::nucleisam::test::count_lines(s); }

}  // namespace

TEST(Cli, VersionNamesLibTorchAndCuda) {
  Result r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("nucleisam "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("LibTorch "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CUDA "), std::string::npos) << r.out;
  // What --precision auto resolves to on this machine, and why (the CPU's features).
  EXPECT_NE(r.out.find("CPU: " + nucleisam::cpu_features().summary()), std::string::npos) << r.out;
  const bool bf16 = nucleisam::cpu_features().bf16_faster();
  EXPECT_NE(r.out.find(std::string("--precision auto = ") + (bf16 ? "bf16" : "fp32")), std::string::npos) << r.out;
  // Which path fp32 matrix products take, and why (a probe, or NUCLEISAM_FP32_GEMM).
  EXPECT_TRUE(r.out.find("fp32 matrix products: oneDNN (") != std::string::npos ||
              r.out.find("fp32 matrix products: BLAS (") != std::string::npos)
      << r.out;
}

// Restores an environment variable when the test ends.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v, had_ = true;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_.c_str(), old_.c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

std::string blas_line(const std::string& version) {
  const size_t at = version.find("BLAS: ");
  return at == std::string::npos ? "" : version.substr(at, version.find('\n', at) - at);
}

TEST(Cli, OpenBlasRunsKernelsForThisCpu) {
  ScopedEnv no_core("OPENBLAS_CORETYPE", nullptr), no_mark("NUCLEISAM_OPENBLAS_DETECTED", nullptr),
      no_off("NUCLEISAM_NO_BLAS_REEXEC", nullptr);
  const std::string line = blas_line(run("--version").out);
  ASSERT_FALSE(line.empty());
  if (line.find("OpenBLAS") == std::string::npos) GTEST_SKIP() << line;
  // OpenBLAS's generic fallbacks must not survive on a CPU with AVX2 + FMA (Debian 12's OpenBLAS
  // says "Prescott" on Emerald Rapids).
  const auto& cpu = nucleisam::cpu_features();
  if (cpu.avx2 && cpu.fma) {
    EXPECT_EQ(line.find("Prescott kernels"), std::string::npos) << line;
    EXPECT_EQ(line.find("Nehalem kernels"), std::string::npos) << line;
    EXPECT_EQ(line.find("Core2 kernels"), std::string::npos) << line;
  }
  {
    // The user's own choice stands, and is named.
    ScopedEnv core("OPENBLAS_CORETYPE", "Haswell");
    EXPECT_NE(blas_line(run("--version").out).find("OpenBLAS Haswell kernels (OPENBLAS_CORETYPE=Haswell)"),
              std::string::npos);
  }
  {
    // Without the re-execution: OpenBLAS's own choice, and no claim that nucleisam set it.
    ScopedEnv off("NUCLEISAM_NO_BLAS_REEXEC", "1");
    const std::string own = blas_line(run("--version").out);
    EXPECT_EQ(own.find("set by nucleisam"), std::string::npos) << own;
    if (line.find("set by nucleisam") != std::string::npos) {
      const size_t from = own.find("OpenBLAS ") + 9;
      const std::string chosen = own.substr(from, own.find(" kernels") - from);
      EXPECT_NE(line.find("OpenBLAS chose " + chosen + " for this CPU"), std::string::npos) << line << " / " << own;
    }
  }
}

TEST(Cli, HelpForEverySubcommand) {
  Result top = run("--help");
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("info"), std::string::npos);
  Result sub = run("info --help");
  EXPECT_EQ(sub.code, 0);
  EXPECT_NE(sub.out.find("--labels"), std::string::npos);
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run("no-such-command").code, 2);
  EXPECT_EQ(run("--threads 0 info x.png").code, 2);
  EXPECT_EQ(run("--device tpu info x.png").code, 2);
  Result r = run("info");  // missing required argument
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.out), 1) << r.out;
}

TEST(Cli, BadInputIsOneLineExitOne) {
  nucleisam::test::TempDir dir;
  Result r = run("info " + dir.file("missing.png"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "nucleisam: " + dir.file("missing.png") + ": no such file\n");
  FILE* f = fopen(dir.file("bad.jpg").c_str(), "wb");
  fputs("not a jpeg", f);
  fclose(f);
  r = run("info " + dir.file("bad.jpg"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("bad.jpg: cannot decode"), std::string::npos) << r.out;
}

TEST(Cli, InfoReportsWhatItRead) {
  nucleisam::test::TempDir dir;
  nucleisam::LabelMap m(4, 6);
  m.at(0, 0) = 3;
  m.at(1, 1) = 9;
  nucleisam::io::write_label_map(dir.file("l.png"), m);
  Result r = run("--quiet info --labels --json " + dir.file("l.png"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"labels\":2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"max_label\":9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"width\":6"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("mpp"), std::string::npos) << r.out;  // a PNG without pHYs records none
  // A label TIFF written with its resolution: info says it.
  nucleisam::io::write_label_map(dir.file("l.tif"), m, 0.5);
  r = run("--quiet info --labels " + dir.file("l.tif"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("2 labels (max 9), 0.5 um/px"), std::string::npos) << r.out;

  // Images: their stain amounts against the shipped models' range, each file printed in full.
  const double stains[2][3] = {{0.5706, 0.7292, 0.3776}, {0.2982, 0.8133, 0.4997}};
  nucleisam::io::write_image(dir.file("dark.png"), nucleisam::test::stained_tissue(stains, 80, 80, 1, 3.0).image);
  nucleisam::io::write_image(dir.file("plain.png"), nucleisam::test::stained_tissue(stains, 80, 80, 2).image);
  nucleisam::write_file_atomic(dir.file("fine.png"), nucleisam::test::png_with_phys(
                                                        nucleisam::read_file(dir.file("plain.png")), 3957262, 3957262));
  r = run("--quiet info " + dir.file("dark.png") + " " + dir.file("fine.png"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("dark.png: image 80x80, stain amounts H 5."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(haematoxylin above the range the shipped models learned from; segment brings it in)"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fine.png: image 80x80, 0.2527 um/px, stain amounts H 1."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(within the range the shipped models learned from)"), std::string::npos) << r.out;
  // The file without a resolution says so (and how segment copes); the one with it does not.
  const std::string dark_line = r.out.substr(0, r.out.find('\n'));
  const std::string no_mpp = "; no resolution recorded (segment judges it from the nuclei; --mpp gives it)";
  EXPECT_NE(dark_line.find(no_mpp), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(no_mpp, dark_line.size()), std::string::npos) << r.out;
  r = run("--quiet info --json " + dir.file("fine.png"));
  EXPECT_NE(r.out.find("\"outside_training_range\":[]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"ink_or_dye_fraction\":0.0"), std::string::npos) << r.out;
  // A green ink stroke over 8 of its 80 rows: 10% of the pixels, left out and said so.
  nucleisam::Image inked = nucleisam::io::read_image(dir.file("plain.png"));
  for (int y = 40; y < 48; ++y)
    for (int x = 0; x < 80; ++x) {
      inked.at(y, x, 0) = 40;
      inked.at(y, x, 1) = 120;
      inked.at(y, x, 2) = 60;
    }
  nucleisam::io::write_image(dir.file("inked.png"), inked);
  r = run("--quiet info " + dir.file("inked.png"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("% of the tissue left out as ink or dye"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("fine.png"), std::string::npos) << r.out;
}

TEST(Cli, CudaRequestWithoutGpuFailsCleanly) {
  Result v = run("--version");
  if (v.out.find("CUDA available") != std::string::npos) GTEST_SKIP() << "a GPU is present";
  nucleisam::test::TempDir dir;
  Result r = run("--device cuda info " + dir.file("x.png"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--device cuda"), std::string::npos) << r.out;
}
