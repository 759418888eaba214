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

#if defined(__GLIBC__)
#include <malloc.h>

#include <cstdlib>
#include <cstring>

// A freed 24 MiB block stays in the process (at the top of the heap, where the next allocation of
// that size finds it) instead of going back to the kernel. glibc's defaults (an mmap threshold
// of 128 KiB that only grows after a mapped block is freed) map such a block and unmap it on free.
TEST(Threads, FreedLargeBlocksStayInTheProcessForReuse) {
  unsetenv("GLIBC_TUNABLES");
  unsetenv("MALLOC_MMAP_THRESHOLD_");
  unsetenv("MALLOC_TRIM_THRESHOLD_");
  setenv("NUCLEISAM_MALLOC_DEFAULTS", "1", 1);
  EXPECT_FALSE(nucleisam::keep_freed_memory_in_process());
  setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1", 1);
  unsetenv("NUCLEISAM_MALLOC_DEFAULTS");
  EXPECT_FALSE(nucleisam::keep_freed_memory_in_process());  // the user's own tuning stands
  unsetenv("GLIBC_TUNABLES");
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's malloc replaces glibc's: mallopt does not apply to it";
#endif
  ASSERT_TRUE(nucleisam::keep_freed_memory_in_process());
  const size_t size = 24u << 20;
  void* block = std::malloc(size);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, size);
  std::free(block);
  EXPECT_GE(mallinfo2().keepcost, size);  // releasable top of the heap: kept, not returned
}
#endif
