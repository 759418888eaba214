// Huge-page mappings for large CPU tensors (nucleisam/weights/tensor_memory.h): the off switch,
// alignment and contents of large tensors, raw allocations of both kinds, memory returned at once.
#include "nucleisam/weights/tensor_memory.h"

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace {

// A field of /proc/self/status or smaps_rollup in KiB (-1 when the file or field is missing).
long proc_kib(const std::string& file, const std::string& field) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

bool transparent_huge_pages_usable() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::stringstream s;
  s << in.rdbuf();
  return s.str().find("[always]") != std::string::npos || s.str().find("[madvise]") != std::string::npos;
}

}  // namespace

// Runs first (gtest keeps file order): the switch is read before anything is installed.
TEST(TensorMemory, OffSwitchKeepsLibTorchsAllocator) {
  c10::Allocator* before = c10::GetCPUAllocator();
  setenv("NUCLEISAM_HUGE_PAGES", "0", 1);
  EXPECT_FALSE(nucleisam::use_huge_pages_for_large_tensors());
  EXPECT_FALSE(nucleisam::huge_pages_for_large_tensors_installed());
  EXPECT_EQ(c10::GetCPUAllocator(), before);
  unsetenv("NUCLEISAM_HUGE_PAGES");
}

TEST(TensorMemory, LargeTensorsAreAlignedHugePageMappingsWithTheirContents) {
#if !defined(__linux__)
  GTEST_SKIP() << "huge-page mappings are Linux only";
#endif
  ASSERT_TRUE(nucleisam::use_huge_pages_for_large_tensors());
  EXPECT_TRUE(nucleisam::use_huge_pages_for_large_tensors());  // a second call changes nothing
  const long huge_before = proc_kib("/proc/self/smaps_rollup", "AnonHugePages");
  const int64_t n = int64_t{48} << 20 >> 2;  // 48 MiB of floats
  auto big = torch::full({n}, 1.5f);
  const auto address = reinterpret_cast<std::uintptr_t>(big.data_ptr());
  EXPECT_EQ(address % (std::uintptr_t{2} << 20), 0u);
  EXPECT_DOUBLE_EQ(big.sum(torch::kDouble).item<double>(), 1.5 * static_cast<double>(n));
  auto small = torch::full({1000}, 2.0f);  // the default allocator: 64-byte alignment only
  EXPECT_DOUBLE_EQ(small.sum().item<double>(), 2000.0);
  if (transparent_huge_pages_usable() && huge_before >= 0) {
    // At least one 2 MiB page backs the touched block (the kernel may fall back for some).
    EXPECT_GE(proc_kib("/proc/self/smaps_rollup", "AnonHugePages") - huge_before, 2048);
  }
}

TEST(TensorMemory, RawAllocationsOfBothSizesRoundTrip) {
  ASSERT_TRUE(nucleisam::use_huge_pages_for_large_tensors());
  c10::Allocator* a = c10::GetCPUAllocator();
  for (std::size_t bytes : {std::size_t{4096}, nucleisam::kHugePageTensorBytes + 12345}) {
    auto* p = static_cast<unsigned char*>(a->raw_allocate(bytes));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5a, bytes);
    EXPECT_EQ(p[bytes - 1], 0x5a);
    a->raw_deallocate(p);
  }
}

TEST(TensorMemory, AFreedLargeTensorGoesBackToTheKernelAtOnce) {
  ASSERT_TRUE(nucleisam::use_huge_pages_for_large_tensors());
  const long before = proc_kib("/proc/self/status", "VmRSS");
  ASSERT_GT(before, 0);
  {
    auto big = torch::ones({int64_t{256} << 20 >> 2});  // 256 MiB, touched
    EXPECT_GE(proc_kib("/proc/self/status", "VmRSS") - before, 200 * 1024);
  }
  EXPECT_LT(proc_kib("/proc/self/status", "VmRSS") - before, 32 * 1024);
}

// keep_freed_large_blocks: a freed large block comes back for the next tensor of its rounded
// length, never for another length; the limit bounds what is kept (a block that would pass it is
// unmapped); lowering it to 0 unmaps everything kept, and then nothing is kept.
TEST(TensorMemory, KeptBlocksAreReusedForTheSameLengthWithinTheLimit) {
  ASSERT_TRUE(nucleisam::use_huge_pages_for_large_tensors());
  const int64_t n40 = int64_t{40} << 20 >> 2, n50 = int64_t{50} << 20 >> 2;  // 40 and 50 MiB of floats
  const std::size_t len40 = std::size_t{40} << 20, len50 = std::size_t{50} << 20;
  nucleisam::keep_freed_large_blocks(0);
  { auto headroom = torch::empty({int64_t{1} << 28}); }  // 1 GiB once in use (never touched): the
  ASSERT_GE(nucleisam::large_block_high_water(), std::size_t{1} << 30);  // kept blocks below fit under it
  nucleisam::keep_freed_large_blocks(len40 + len50);
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
  void* first = nullptr;
  {
    auto a = torch::full({n40}, 3.0f);
    first = a.data_ptr();
  }
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), len40);
  {
    auto other = torch::empty({n50});  // another length: a new mapping, the 40 MiB block stays kept
    EXPECT_NE(other.data_ptr(), first);
    EXPECT_EQ(nucleisam::kept_large_block_bytes(), len40);
    auto again = torch::zeros({n40 - 1000});  // the same 2 MiB-rounded length: the kept block
    EXPECT_EQ(again.data_ptr(), first);
    EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
    // Its contents are the new tensor's (read element by element: no large temporary).
    const float* v = again.data_ptr<float>();
    EXPECT_EQ(v[0], 0.0f);
    EXPECT_EQ(v[n40 / 2], 0.0f);
    EXPECT_EQ(v[n40 - 1001], 0.0f);
  }
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), len40 + len50);  // both fit the limit
  {
    auto a = torch::empty({n40}), b = torch::empty({n50}), c = torch::empty({n40});
  }
  // a and b were reused and are kept again; c (40 MiB more) would pass the limit: unmapped.
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), len40 + len50);
  nucleisam::keep_freed_large_blocks(len50);  // both no longer fit: the largest goes first
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), len40);
  nucleisam::keep_freed_large_blocks(0);
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
  {
    auto a = torch::empty({n40});
  }
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
}

TEST(TensorMemory, TrainingKeepLimitComesFromTheEnvironment) {
  ASSERT_TRUE(nucleisam::use_huge_pages_for_large_tensors());
  unsetenv("NUCLEISAM_TRAIN_KEEP_MB");
  EXPECT_EQ(nucleisam::keep_freed_large_blocks_for_training(), nucleisam::kDefaultTrainingKeepBytes);
  setenv("NUCLEISAM_TRAIN_KEEP_MB", "0", 1);
  EXPECT_EQ(nucleisam::keep_freed_large_blocks_for_training(), 0u);
  setenv("NUCLEISAM_TRAIN_KEEP_MB", "300", 1);
  EXPECT_EQ(nucleisam::keep_freed_large_blocks_for_training(), std::size_t{300} << 20);
  for (const char* bad : {"-5", "12MB", "lots", "99999999999"}) {
    setenv("NUCLEISAM_TRAIN_KEEP_MB", bad, 1);
    EXPECT_EQ(nucleisam::keep_freed_large_blocks_for_training(), nucleisam::kDefaultTrainingKeepBytes) << bad;
  }
  unsetenv("NUCLEISAM_TRAIN_KEEP_MB");
  nucleisam::keep_freed_large_blocks(0);
}

// Kept blocks never raise the peak: a new mapping first unmaps kept blocks until in use + kept +
// the new block is at most the most ever in use at once.
TEST(TensorMemory, KeptBlocksGiveWayBeforeTheHighWaterMarkIsPassed) {
  ASSERT_TRUE(nucleisam::use_huge_pages_for_large_tensors());
  nucleisam::keep_freed_large_blocks(std::size_t{1} << 40);  // no limit of its own
  const std::size_t mib = std::size_t{1} << 20;
  // A new high water mark H of at least 1 GiB, a whole number of 2 MiB pages (never touched).
  const std::size_t start = std::max(nucleisam::large_block_high_water(), std::size_t{1} << 30) + 2 * mib;
  { auto t = torch::empty({static_cast<int64_t>(start / 4)}); }
  const std::size_t H = nucleisam::large_block_high_water();
  ASSERT_EQ(H, start);
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), H);  // that block, freed, is kept
  {
    // 40 MiB more in use: H + 40 MiB would pass H, so the kept H-block goes first.
    auto a = torch::empty({int64_t{40} << 20 >> 2});
    EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
    EXPECT_EQ(nucleisam::large_block_high_water(), H);  // 40 MiB in use, not more than before
  }
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), 40 * mib);
  {
    // Two blocks of H / 2 (rounded): the first finds room under H only if 40 MiB + H/2 <= H.
    auto b = torch::empty({static_cast<int64_t>(H / 2 / 4)});
    EXPECT_EQ(nucleisam::kept_large_block_bytes(), 40 * mib);  // H >= 1 GiB here, so it fits
    auto c = torch::empty({static_cast<int64_t>(H / 2 / 4)});  // H/2 + H/2 + 40 MiB > H: dropped
    EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
  }
  nucleisam::keep_freed_large_blocks(0);
  EXPECT_EQ(nucleisam::kept_large_block_bytes(), 0u);
}
