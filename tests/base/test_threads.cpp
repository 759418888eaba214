// --threads must reach OpenBLAS's own pool (torch::set_num_threads does not).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "nucleisam/cpu_features.h"
#include "nucleisam/threads.h"

TEST(Threads, LimitReachesOpenBlas) {
  // The test binary does not link a BLAS itself; load the system one as LibTorch would.
  void* blas = dlopen("libblas.so.3", RTLD_NOW | RTLD_GLOBAL);
  if (!blas) GTEST_SKIP() << "no libblas.so.3 on this machine";
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!get) GTEST_SKIP() << "the active BLAS is not OpenBLAS";
  EXPECT_TRUE(nucleisam::limit_blas_threads(1));
  EXPECT_EQ(get(), 1);
  EXPECT_FALSE(nucleisam::limit_blas_threads(0));  // 0 = leave the library default
  EXPECT_EQ(get(), 1);
}

TEST(Threads, BetterOpenBlasCoreOnlyReplacesGenericFallbacks) {
  using nucleisam::better_openblas_core;
  nucleisam::CpuFeatures emerald = nucleisam::parse_cpuinfo(
      "model name : Intel(R) Xeon(R) Processor\nflags : sse3 avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16\n");
  nucleisam::CpuFeatures haswell = nucleisam::parse_cpuinfo("model name : X\nflags : sse3 avx avx2 fma\n");
  nucleisam::CpuFeatures old = nucleisam::parse_cpuinfo("model name : X\nflags : sse3 ssse3 sse4_2 avx\n");
  nucleisam::CpuFeatures knl = nucleisam::parse_cpuinfo("model name : X\nflags : avx2 fma avx512f\n");  // no BW
  // OpenBLAS 0.3.21 on an Emerald Rapids Xeon says "Prescott": ask for its AVX-512 kernels.
  EXPECT_EQ(better_openblas_core(emerald, "Prescott"), "SkylakeX");
  EXPECT_EQ(better_openblas_core(emerald, "Nehalem"), "SkylakeX");
  EXPECT_EQ(better_openblas_core(haswell, "Prescott"), "Haswell");
  EXPECT_EQ(better_openblas_core(haswell, "sandybridge"), "Haswell");  // any case
  EXPECT_EQ(better_openblas_core(knl, "Core2"), "Haswell");
  // A known, modern choice stands, and a CPU without AVX2 keeps whatever OpenBLAS chose.
  EXPECT_EQ(better_openblas_core(emerald, "SkylakeX"), "");
  EXPECT_EQ(better_openblas_core(emerald, "Cooperlake"), "");
  EXPECT_EQ(better_openblas_core(emerald, "Haswell"), "");
  EXPECT_EQ(better_openblas_core(haswell, "Zen"), "");
  EXPECT_EQ(better_openblas_core(old, "Prescott"), "");
  EXPECT_EQ(better_openblas_core(nucleisam::CpuFeatures{}, "Prescott"), "");
}
