// BLAS thread control, looked up at run time so the engine links against any BLAS.
#include "nucleisam/threads.h"

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

}  // namespace nucleisam
