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

// Keeps freed large blocks mapped, up to `max_bytes` in all, for the next large tensor of the same
// length (rounded to 2 MiB) instead of unmapping them; 0 (the default) unmaps every freed block at
// once, and lowering the limit unmaps kept blocks (the largest first) until they fit it. Kept
// blocks never raise the peak: before a new block is mapped, kept ones are unmapped (the largest
// first) until in-use + kept + the new block is at most the most ever in use at once (or the
// in-use + new block, when that is a new high; two threads mapping at the same moment can pass it
// by a block). A training step allocates the same activations as the one before, so most of them
// are found kept: `train` sets a limit (he-nuclei recipe step bf16 2.07-2.28 -> 1.68-1.81 s, fp32
// 3.97-4.50 -> 2.80-3.25 s, same peak; docs/BENCHMARKS.md, C5). Needs the allocator above;
// otherwise does nothing.
void keep_freed_large_blocks(std::size_t max_bytes);

// Bytes of freed large blocks kept mapped now.
std::size_t kept_large_block_bytes();

// The most bytes of large blocks ever in use at once (kept blocks not counted).
std::size_t large_block_high_water();

// What `train` keeps: NUCLEISAM_TRAIN_KEEP_MB megabytes (a whole number; 0 keeps nothing), else
// kDefaultTrainingKeepBytes. Sets keep_freed_large_blocks and returns the limit.
inline constexpr std::size_t kDefaultTrainingKeepBytes = std::size_t{1} << 30;
std::size_t keep_freed_large_blocks_for_training();

}  // namespace nucleisam
