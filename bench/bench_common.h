// Helpers shared by the benchmark programs (header-only; bench/ is on their include path).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

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

// Model options from a benchmark's network spec after "arch:": "32" is a width, "key=value;key=value"
// any options (';' between them: values such as encoder_global_attn=1,3 hold commas).
inline std::map<std::string, std::string> model_options_from_spec(const std::string& spec) {
  std::map<std::string, std::string> options;
  if (spec.find('=') == std::string::npos) {
    options["width"] = spec;
    return options;
  }
  for (size_t at = 0; at < spec.size();) {
    const size_t end = std::min(spec.find(';', at), spec.size()), eq = spec.find('=', at);
    if (eq >= end) throw std::invalid_argument("model option '" + spec.substr(at, end - at) + "' is not key=value");
    options[spec.substr(at, eq - at)] = spec.substr(eq + 1, end - eq - 1);
    at = end + 1;
  }
  return options;
}

}  // namespace nucleisam::bench
