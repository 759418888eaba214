// Minimal leveled logging to stderr, shared by the CLI and the library.
#pragma once

#include <sstream>
#include <string>

namespace nucleisam::log {

enum class Level { quiet = 0, warn = 1, info = 2, debug = 3 };

void set_level(Level level);
Level level();
void write(Level level, const std::string& message);

template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

template <typename... Args>
void warn(Args&&... args) {
  if (level() >= Level::warn) write(Level::warn, concat(std::forward<Args>(args)...));
}
template <typename... Args>
void info(Args&&... args) {
  if (level() >= Level::info) write(Level::info, concat(std::forward<Args>(args)...));
}
template <typename... Args>
void debug(Args&&... args) {
  if (level() >= Level::debug) write(Level::debug, concat(std::forward<Args>(args)...));
}

}  // namespace nucleisam::log
