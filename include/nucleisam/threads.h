// One place that sets how many CPU threads the engine's libraries may use.
#pragma once

namespace nucleisam {

// Limits the BLAS library's own thread pool. Debian's LibTorch calls a generic libblas.so.3, which
// is OpenBLAS with its own pthreads pool that torch::set_num_threads does not reach: without this,
// `--threads 1` still runs matrix products on every core. No-op when the BLAS has no such control.
// Returns true when a BLAS thread control was found and called.
bool limit_blas_threads(int threads);

// The number of CPUs this process may run on (its affinity mask, as `nproc` counts), at least 1.
int available_cpus();

}  // namespace nucleisam
