// Huge-page mappings for large CPU tensors (nucleisam/weights/tensor_memory.h): the off switch,
// alignment and contents of large tensors, raw allocations of both kinds, memory returned at once.
#include "nucleisam/weights/tensor_memory.h"

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <gtest/gtest.h>

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
