// Helpers shared by the benchmark programs (header-only; bench/ is on their include path).
#pragma once

#include <sys/resource.h>

#include "nucleisam/threads.h"
#include "nucleisam/weights/tensor_memory.h"

namespace nucleisam::bench {

// The process set-up the nucleisam binary does at start (threads.h, tensor_memory.h), so that a
// benchmark measures the kernels and allocator the CLI runs with. May re-execute the program.
inline void start_like_the_cli(char** argv) {
  use_best_openblas_kernels(argv);
  keep_freed_memory_in_process();
  use_huge_pages_for_large_tensors();
}

// Peak resident set size of this process so far, MB (getrusage's ru_maxrss / 1024).
inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

}  // namespace nucleisam::bench
