// CPU feature detection from /proc/cpuinfo (see cpu_features.h).
#include "nucleisam/cpu_features.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "nucleisam/errors.h"

namespace nucleisam {

std::string CpuFeatures::summary() const {
  std::string s = model.empty() ? "unknown CPU" : model;
  std::string f;
  if (avx2) f += " AVX2";
  if (avx512f) f += " AVX-512";
  if (avx512_bf16) f += " AVX-512-BF16";
  if (amx_bf16) f += " AMX-BF16";
  return s + " (" + (f.empty() ? std::string("no AVX2") : f.substr(1)) + ")";
}

CpuFeatures parse_cpuinfo(const std::string& text) {
  CpuFeatures c;
  std::istringstream in(text);
  std::string line;
  bool have_model = false, have_flags = false, have_vendor = false;
  while (std::getline(in, line) && !(have_model && have_flags && have_vendor)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    std::string value = colon + 1 < line.size() ? line.substr(colon + 1) : "";
    value.erase(0, value.find_first_not_of(" \t"));
    if (key == "vendor_id" && !have_vendor) {
      c.vendor = value;
      have_vendor = true;
    } else if (key == "model name" && !have_model) {
      c.model = value;
      have_model = true;
    } else if (key == "flags" && !have_flags) {
      std::istringstream f(value);
      std::set<std::string> flags;
      for (std::string w; f >> w;) flags.insert(w);
      c.avx2 = flags.count("avx2") > 0;
      c.fma = flags.count("fma") > 0;
      c.avx512f = flags.count("avx512f") > 0;
      c.avx512bw = flags.count("avx512bw") > 0;
      c.avx512_bf16 = flags.count("avx512_bf16") > 0;
      c.amx_bf16 = flags.count("amx_bf16") > 0;
      have_flags = true;
    }
  }
  return c;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    std::ifstream f("/proc/cpuinfo");
    std::stringstream s;
    s << f.rdbuf();
    return parse_cpuinfo(s.str());
  }();
  return features;
}

KernelIsa kernel_isa() {
  static const KernelIsa best = [] {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
      return KernelIsa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return KernelIsa::avx2;
#endif
    return KernelIsa::baseline;
  }();
  const char* forced = std::getenv("NUCLEISAM_KERNEL_ISA");
  if (forced && std::strcmp(forced, "baseline") == 0) return KernelIsa::baseline;
  if (forced && std::strcmp(forced, "avx2") == 0 && best == KernelIsa::avx512) return KernelIsa::avx2;
  return best;
}

std::string resolve_precision(const std::string& precision, bool on_gpu) {
  if (precision == "fp32" || precision == "bf16") return precision;
  if (precision == "auto") return on_gpu || cpu_features().bf16_faster() ? "bf16" : "fp32";
  throw OptionError("precision '" + precision + "' is not fp32, bf16 or auto");
}

}  // namespace nucleisam
