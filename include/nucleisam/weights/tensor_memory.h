// Memory for large CPU tensors: transparent huge pages.
//
// Training and slide inference allocate and free activations of 32 MiB to several GiB at every
// step. glibc's malloc maps such blocks afresh each time (its mmap threshold cannot exceed 32 MiB)
// and the kernel faults them in 4 KiB at a time: on this project's 2-core machines page faults
// were 15-22% of a training step's CPU time (perf, docs/BENCHMARKS.md). Mapping those blocks
// with MADV_HUGEPAGE (2 MiB pages, where the kernel's transparent huge pages are "always" or
// "madvise") takes about a third of the time per byte and keeps nothing beyond what is live:
// a freed block goes back to the kernel at once, so peak memory is unchanged.
#pragma once

#include <cstddef>

namespace nucleisam {

// Blocks at least this large get their own 2 MiB-aligned huge-page mapping.
inline constexpr std::size_t kHugePageTensorBytes = std::size_t{32} << 20;

// Makes LibTorch's CPU allocator map tensors of kHugePageTensorBytes or more with huge pages
// (smaller ones keep LibTorch's default allocator). Call once at start-up, before tensors exist;
// later calls do nothing. Returns whether it is installed: false on systems without
// madvise(MADV_HUGEPAGE) or when NUCLEISAM_HUGE_PAGES=0.
bool use_huge_pages_for_large_tensors();

// Whether the allocator above is LibTorch's CPU allocator now.
bool huge_pages_for_large_tensors_installed();

}  // namespace nucleisam
