// --threads must reach OpenBLAS's own pool (torch::set_num_threads does not).
#include <dlfcn.h>
#include <gtest/gtest.h>

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
