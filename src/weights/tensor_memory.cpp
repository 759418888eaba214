// Huge-page mappings for large CPU tensors (see nucleisam/weights/tensor_memory.h).
#include "nucleisam/weights/tensor_memory.h"

#include "nucleisam/log.h"

#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nucleisam {

std::size_t keep_freed_large_blocks_for_training() {
  std::size_t limit = kDefaultTrainingKeepBytes;
  if (const char* v = std::getenv("NUCLEISAM_TRAIN_KEEP_MB"); v && *v) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(v, &end, 10);
    if (end && *end == '\0' && *v != '-' && mb <= (std::size_t{1} << 24))
      limit = static_cast<std::size_t>(mb) << 20;
    else
      log::warn("NUCLEISAM_TRAIN_KEEP_MB=", v, " is not a number of megabytes (0 to 16777216); keeping ",
                limit >> 20, " MB");
  }
  keep_freed_large_blocks(limit);
  return limit;
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Large blocks are their own mappings; the table gives each block's length back to munmap and
// tells the raw deleter which pointers are ours. Only blocks >= 32 MiB pass through it.
class HugePageAllocator final : public c10::Allocator {
 public:
  explicit HugePageAllocator(c10::Allocator* fallback) { fallback_allocator() = fallback; }

  c10::DataPtr allocate(std::size_t n) const override {
    if (n < kHugePageTensorBytes) return fallback_allocator()->allocate(n);
    const std::size_t len = round_up(n, kHugePage);
    if (void* reused = take_kept(len)) return {reused, reused, &release, c10::Device(c10::DeviceType::CPU)};
    make_room_for(len);
    void* p = map(n);
    if (!p) return fallback_allocator()->allocate(n);  // the default allocator reports the failure
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // keep_freed_large_blocks: a new limit; kept blocks beyond it are unmapped now.
  static void set_keep_limit(std::size_t max_bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex());
      keep_limit() = max_bytes;
    }
    drop_kept_beyond(max_bytes);
  }
  // Unmaps kept blocks, the largest first, until at most `max_bytes` are kept.
  static void drop_kept_beyond(std::size_t max_bytes) {
    std::vector<std::pair<void*, std::size_t>> drop;
    {
      std::lock_guard<std::mutex> lock(mutex());
      while (kept_bytes() > max_bytes && !kept().empty()) {
        auto last = std::prev(kept().end());  // the largest first
        drop.emplace_back(last->second, last->first);
        kept_bytes() -= last->first;
        blocks().erase(last->second);
        kept().erase(last);
      }
    }
    for (const auto& [p, len] : drop) munmap(p, len);
  }
  static std::size_t kept_total() {
    std::lock_guard<std::mutex> lock(mutex());
    return kept_bytes();
  }
  static std::size_t most_live() {
    std::lock_guard<std::mutex> lock(mutex());
    return high_water();
  }

 private:
  // Freed blocks kept mapped for reuse, by length (keep_freed_large_blocks); they stay in blocks().
  static std::multimap<std::size_t, void*>& kept() {
    static std::multimap<std::size_t, void*> k;
    return k;
  }
  static std::size_t& kept_bytes() {
    static std::size_t b = 0;
    return b;
  }
  // Bytes of our blocks in use (not kept), and the most ever in use at once.
  static std::size_t& live_bytes() {
    static std::size_t b = 0;
    return b;
  }
  static std::size_t& high_water() {
    static std::size_t b = 0;
    return b;
  }
  static void add_live(std::size_t len) {  // under the mutex
    live_bytes() += len;
    high_water() = std::max(high_water(), live_bytes());
  }
  static std::size_t& keep_limit() {
    static std::size_t limit = 0;
    return limit;
  }
  // Before a new mapping of `len` bytes: unmaps kept blocks so that in-use + kept + len stays
  // within the most ever in use (or in-use + len, when that is a new high).
  static void make_room_for(std::size_t len) {
    std::size_t room = 0;
    {
      std::lock_guard<std::mutex> lock(mutex());
      room = std::max(high_water(), live_bytes() + len) - live_bytes() - len;
    }
    drop_kept_beyond(room);
  }
  // A kept block of exactly `len` bytes (the rounded length), or null.
  static void* take_kept(std::size_t len) {
    std::lock_guard<std::mutex> lock(mutex());
    auto it = kept().find(len);
    if (it == kept().end()) return nullptr;
    void* p = it->second;
    kept().erase(it);
    kept_bytes() -= len;
    add_live(len);
    return p;
  }

  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::unordered_map<void*, std::size_t>& blocks() {
    static std::unordered_map<void*, std::size_t> b;
    return b;
  }
  // LibTorch's allocator, for small blocks and for raw blocks that are not ours (set once).
  static c10::Allocator*& fallback_allocator() {
    static c10::Allocator* f = nullptr;
    return f;
  }

  // A 2 MiB-aligned mapping of round_up(n, 2 MiB) bytes: map one huge page more, cut the ends.
  static void* map(std::size_t n) {
    const std::size_t len = round_up(n, kHugePage);
    void* raw = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const auto base = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = round_up(base, kHugePage);
    if (aligned > base) munmap(raw, aligned - base);
    const std::uintptr_t end = base + len + kHugePage;
    if (end > aligned + len) munmap(reinterpret_cast<void*>(aligned + len), end - (aligned + len));
    void* p = reinterpret_cast<void*>(aligned);
    madvise(p, len, MADV_HUGEPAGE);  // advice only: without THP the mapping still works
    std::lock_guard<std::mutex> lock(mutex());
    blocks().emplace(p, len);
    add_live(len);
    return p;
  }

  // Our mappings are unmapped; anything else came from the fallback (raw_allocate of a small
  // block) and goes back to its own deleter.
  static void release(void* p) {
    if (!p) return;
    std::size_t len = 0;
    {
      std::lock_guard<std::mutex> lock(mutex());
      auto it = blocks().find(p);
      if (it != blocks().end()) {
        len = it->second;
        live_bytes() -= len;
        if (kept_bytes() + len <= keep_limit()) {  // kept for the next block of this length
          kept().emplace(len, p);
          kept_bytes() += len;
          return;
        }
        blocks().erase(it);
      }
    }
    if (len) {
      munmap(p, len);
      return;
    }
    fallback_allocator()->raw_deleter()(p);
  }
};

HugePageAllocator*& installed() {
  static HugePageAllocator* a = nullptr;
  return a;
}

}  // namespace

bool use_huge_pages_for_large_tensors() {
  const char* off = std::getenv("NUCLEISAM_HUGE_PAGES");
  if (!installed() && off && std::strcmp(off, "0") == 0) return false;
  static std::once_flag once;
  std::call_once(once, [] {
    c10::Allocator* fallback = c10::GetCPUAllocator();
    if (!fallback || !fallback->raw_deleter()) return;
    static HugePageAllocator allocator(fallback);  // lives as long as the process
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
    if (c10::GetCPUAllocator() == &allocator) installed() = &allocator;
  });
  return installed() != nullptr;
}

bool huge_pages_for_large_tensors_installed() {
  return installed() != nullptr && c10::GetCPUAllocator() == installed();
}

void keep_freed_large_blocks(std::size_t max_bytes) { HugePageAllocator::set_keep_limit(max_bytes); }

std::size_t kept_large_block_bytes() { return HugePageAllocator::kept_total(); }

std::size_t large_block_high_water() { return HugePageAllocator::most_live(); }

#else

bool use_huge_pages_for_large_tensors() { return false; }
bool huge_pages_for_large_tensors_installed() { return false; }
void keep_freed_large_blocks(std::size_t) {}
std::size_t kept_large_block_bytes() { return 0; }
std::size_t large_block_high_water() { return 0; }

#endif

}  // namespace nucleisam
