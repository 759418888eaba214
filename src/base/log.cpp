// Leveled logging to stderr.
#include "nucleisam/log.h"

#include <atomic>
#include <iostream>
#include <mutex>

namespace nucleisam::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
}  // namespace

void set_level(Level l) { g_level = static_cast<int>(l); }
Level level() { return static_cast<Level>(g_level.load()); }

void write(Level l, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (l == Level::warn) std::cerr << "warning: ";
  std::cerr << message << '\n';
}

}  // namespace nucleisam::log
