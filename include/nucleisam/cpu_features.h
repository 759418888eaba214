// What the CPU can do natively, read once from the operating system (Linux /proc/cpuinfo flags).
// Used to resolve --precision auto: bfloat16 only where it is faster than fp32 on this CPU.
#pragma once

#include <string>

namespace nucleisam {

struct CpuFeatures {
  std::string model;   // "Intel(R) Xeon(R) Platinum 8480+" or "" when unknown
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", or "" when unknown
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512_bf16 = false, amx_bf16 = false;
  bool native_bf16() const { return avx512_bf16 || amx_bf16; }
  // Whether bf16 models run faster than fp32 here, as measured (docs/BENCHMARKS.md, runs Z1, K1,
  // E1): with AMX (Intel Sapphire / Emerald Rapids: about 2x), and with AVX-512-BF16 on AMD (Zen
  // 4: 1.8-2.4x). Intel's AVX-512-BF16 without AMX (Cooper Lake, or a newer Xeon whose hypervisor
  // hides AMX) runs the shipped models 1.1-1.6x slower in bf16 than in fp32.
  bool bf16_faster() const { return amx_bf16 || (avx512_bf16 && vendor == "AuthenticAMD"); }
  std::string summary() const;  // "model (AVX2 AVX-512 AVX-512-BF16 AMX)"
};

// Parses the text of /proc/cpuinfo (the first processor's "model name" and "flags" lines).
CpuFeatures parse_cpuinfo(const std::string& text);
// This machine's features (empty when /proc/cpuinfo is unreadable).
const CpuFeatures& cpu_features();

// The vector instructions nucleisam's own CPU kernels (e.g. models/upsampled_conv.cpp) are built
// for besides the compiler's baseline: each such kernel is compiled three times and picks at run
// time. avx2 needs AVX2 and FMA; avx512 needs AVX-512 F, BW, VL and DQ with FMA, as the CPU and
// the operating system report them.
enum class KernelIsa { baseline, avx2, avx512 };
// The widest this machine runs; NUCLEISAM_KERNEL_ISA=baseline or =avx2 asks for a narrower one
// (read at each call, so tests can compare the builds in one process; never wider than the CPU).
KernelIsa kernel_isa();

// "fp32" | "bf16" | "auto" -> "fp32" | "bf16"; auto picks bf16 on a GPU or where it is faster on
// this CPU (CpuFeatures::bf16_faster). Throws OptionError for any other value.
std::string resolve_precision(const std::string& precision, bool on_gpu = false);

}  // namespace nucleisam
