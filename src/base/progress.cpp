// Progress bar (terminal) or periodic log lines (anything else).
#include "nucleisam/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "nucleisam/log.h"

namespace nucleisam {
namespace {
constexpr double kTerminalInterval = 0.1;  // seconds between redraws on a terminal
constexpr double kLogInterval = 15.0;      // seconds between plain log lines
}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  terminal_ = isatty(STDERR_FILENO) != 0;
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {
  }
}

void Progress::advance(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  maybe_print(false);
}

void Progress::set(int64_t done) {
  std::lock_guard<std::mutex> lock(mutex_);
  // A jump at the start (resuming) must not inflate the rate.
  if (done_ == 0 && start_count_ == 0) start_count_ = done;
  done_ = done;
  maybe_print(false);
}

int64_t Progress::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  maybe_print(true);
  finished_ = true;
  if (terminal_ && log::level() >= log::Level::info) std::cerr << '\n' << std::flush;
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

std::string Progress::format_line(const std::string& label, int64_t done, int64_t total,
                                  double seconds, const std::string& unit, int bar_width) {
  std::ostringstream s;
  s << label << "  " << done;
  if (total > 0) s << '/' << total;
  if (total > 0 && bar_width > 0) {
    double f = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    int filled = static_cast<int>(f * bar_width);
    s << " [";
    for (int i = 0; i < bar_width; ++i) s << (i < filled ? '=' : (i == filled ? '>' : ' '));
    s << "] " << static_cast<int>(f * 100.0) << '%';
  }
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  char buf[64];
  if (rate >= 1.0 || rate == 0.0)
    std::snprintf(buf, sizeof buf, " %.1f %s/s", rate, unit.c_str());
  else
    std::snprintf(buf, sizeof buf, " %.1f s/%s", 1.0 / rate, unit.c_str());
  s << buf;
  if (total > 0) {
    if (done >= total)
      s << " in " << format_duration(seconds);
    else
      s << " ETA " << (rate > 0 ? format_duration(static_cast<double>(total - done) / rate) : "?");
  }
  return s.str();
}

void Progress::set_note(std::string note) {
  std::lock_guard<std::mutex> lock(mutex_);
  note_ = std::move(note);
}

void Progress::maybe_print(bool force) {
  if (finished_ || log::level() < log::Level::info) return;
  auto now = std::chrono::steady_clock::now();
  double since_last = std::chrono::duration<double>(now - last_print_).count();
  if (!force && since_last < (terminal_ ? kTerminalInterval : kLogInterval)) return;
  last_print_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string line =
      format_line(label_, done_ - start_count_, total_ - start_count_, elapsed, unit_, 0);
  if (terminal_) {
    line = format_line(label_, done_, total_, elapsed, unit_, 30);
    if (!note_.empty()) line += "  " + note_;
    std::cerr << '\r' << line << "\033[K" << std::flush;
  } else {
    // Plain lines: report absolute progress, rate from this run only.
    std::ostringstream s;
    s << label_ << ": " << done_;
    if (total_ > 0) s << '/' << total_ << " (" << (100 * done_ / std::max<int64_t>(1, total_)) << "%)";
    std::string rest = line.substr(line.find("  ") + 2);
    auto sp = rest.find(' ');
    s << (sp == std::string::npos ? "" : rest.substr(sp));
    if (!note_.empty()) s << "  " << note_;
    std::cerr << s.str() << '\n' << std::flush;
  }
}

}  // namespace nucleisam
