// BLAS thread control, looked up at run time so the engine links against any BLAS.
#include "nucleisam/threads.h"

#include <sched.h>

#include <thread>

#include <dlfcn.h>

namespace nucleisam {

bool limit_blas_threads(int threads) {
  if (threads <= 0) return false;
  // OpenBLAS and BLIS (in its OpenBLAS-compatible layer) export this; MKL has its own name.
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    f(threads);
    return true;
  }
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads"))) {
    f(threads);
    return true;
  }
  return false;
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace nucleisam
