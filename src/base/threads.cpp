// BLAS thread control, looked up at run time so the engine links against any BLAS.
#include "nucleisam/threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <thread>
#include <vector>

#include <dlfcn.h>
#include <malloc.h>

#include "nucleisam/cpu_features.h"

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

std::string openblas_core() {
  using CoreName = char* (*)();
  auto f = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!f) return "";
  const char* name = f();
  return name ? name : "";
}

std::string better_openblas_core(const CpuFeatures& cpu, const std::string& detected) {
  std::string d = detected;
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return std::tolower(c); });
  // OpenBLAS's x86-64 families older than AVX2 (its fallbacks for CPUs it does not know).
  static const std::vector<std::string> before_avx2 = {
      "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
      "dunnington", "nehalem", "sandybridge", "barcelona", "bobcat", "bulldozer", "piledriver", "steamroller",
      "excavator", "opteron", "opteron_sse3"};
  const bool generic = std::find(before_avx2.begin(), before_avx2.end(), d) != before_avx2.end();
  if (cpu.avx512f && cpu.avx512bw && generic) return "SkylakeX";
  if (cpu.avx2 && cpu.fma && generic) return "Haswell";
  return "";
}

void use_best_openblas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("NUCLEISAM_OPENBLAS_DETECTED")) return;
  const char* off = std::getenv("NUCLEISAM_NO_BLAS_REEXEC");
  if (off && std::string(off) == "1") return;
  const std::string detected = openblas_core();
  if (detected.empty()) return;
  const std::string better = better_openblas_core(cpu_features(), detected);
  if (better.empty()) return;
  setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
  setenv("NUCLEISAM_OPENBLAS_DETECTED", detected.c_str(), 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): carry on with OpenBLAS's own choice.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("NUCLEISAM_OPENBLAS_DETECTED");
}

std::string blas_kernels_summary() {
  const std::string core = openblas_core();
  if (core.empty()) return "not OpenBLAS";
  std::string s = "OpenBLAS " + core + " kernels";
  const char* detected = std::getenv("NUCLEISAM_OPENBLAS_DETECTED");
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (detected && forced)
    s += std::string(" (set by nucleisam: OpenBLAS chose ") + detected + " for this CPU)";
  else if (forced)
    s += std::string(" (OPENBLAS_CORETYPE=") + forced + ")";
  return s;
}

bool keep_freed_memory_in_process() {
#if defined(__GLIBC__)
  for (const char* user : {"GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"})
    if (const char* v = std::getenv(user); v && *v) return false;
  if (const char* v = std::getenv("NUCLEISAM_MALLOC_DEFAULTS"); v && std::string(v) == "1") return false;
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
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
