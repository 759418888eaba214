// One place that sets how many CPU threads the engine's libraries may use.
#pragma once

#include <string>

namespace nucleisam {

struct CpuFeatures;

// Limits the BLAS library's own thread pool. Debian's LibTorch calls a generic libblas.so.3, which
// is OpenBLAS with its own pthreads pool that torch::set_num_threads does not reach: without this,
// `--threads 1` still runs matrix products on every core. No-op when the BLAS has no such control.
// Returns true when a BLAS thread control was found and called.
bool limit_blas_threads(int threads);

// OpenBLAS chooses its kernels from the CPU model when it loads, and a release older than the CPU
// does not know the model: it falls back to its generic SSE3 kernels ("Prescott"). Debian 12's
// OpenBLAS 0.3.21 does that on Emerald Rapids Xeons, where its fp32 products then run about 4x
// slower than with its AVX-512 kernels. The only remedy is OPENBLAS_CORETYPE, read once at load.

// OpenBLAS's kernel family in this process ("SkylakeX", "Prescott", ...); "" when the BLAS is not
// OpenBLAS.
std::string openblas_core();
// The OpenBLAS kernel family to ask for when OpenBLAS picked `detected` on a CPU with `cpu`'s
// features: "SkylakeX" (AVX-512 F+BW) or "Haswell" (AVX2+FMA) when `detected` is one of OpenBLAS's
// families from before AVX2 (its fallbacks); "" when its choice should stand.
std::string better_openblas_core(const CpuFeatures& cpu, const std::string& detected);
// If OpenBLAS fell back to kernels below this CPU's and the user set no OPENBLAS_CORETYPE, runs the
// program again (same arguments, /proc/self/exe) with OPENBLAS_CORETYPE set, remembering the
// first choice in NUCLEISAM_OPENBLAS_DETECTED. Returns only when it does not re-execute (nothing to
// do, NUCLEISAM_NO_BLAS_REEXEC=1, or exec failed). Call first thing in main().
void use_best_openblas_kernels(char** argv);
// For --version: "OpenBLAS SkylakeX kernels (set by nucleisam: OpenBLAS chose Prescott for this CPU)".
std::string blas_kernels_summary();

// glibc's malloc returns large freed blocks to the kernel (blocks above its mmap threshold, and the
// top of the heap past its trim threshold, both of which start small) and gets them back, zero-filled
// one page fault at a time, at the next allocation. Tensor code frees and allocates blocks of the
// same sizes at every layer: in SAM's vit_b encoder under bf16 this churn was about 30% of the CPU
// time (docs/BENCHMARKS.md). Raises the mmap threshold to glibc's maximum (32 MiB) and the trim
// threshold to 1 GiB, so that freed blocks stay in the process for reuse (the peak RSS is the same:
// the blocks were in use at the peak anyway). Leaves malloc alone when the user tuned it
// (GLIBC_TUNABLES, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ set), when
// NUCLEISAM_MALLOC_DEFAULTS=1, and on a C library other than glibc. Returns true when it changed
// the settings. Call early in main(), before large allocations.
bool keep_freed_memory_in_process();

// The number of CPUs this process may run on (its affinity mask, as `nproc` counts), at least 1.
int available_cpus();

}  // namespace nucleisam
