// Progress reporting for every long-running command: a redrawn bar with rate and ETA on a
// terminal, a periodic plain log line otherwise (CI logs, nohup, pipes). Silent at Level::quiet.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace nucleisam {

class Progress {
 public:
  // total <= 0 means unknown: count and rate are shown, no bar or ETA.
  Progress(std::string label, int64_t total, std::string unit = "it");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Thread-safe.
  void advance(int64_t n = 1);
  // Sets the absolute count (for resumed work: start from what is already done).
  void set(int64_t done);
  // Text appended to every line from now on ("12034 nuclei"). Thread-safe.
  void set_note(std::string note);
  // Prints the final line. Called by the destructor if not called before.
  void finish();

  int64_t done() const;

  // Formatting, exposed for tests: "label  42/100 [=====>    ] 3.1 it/s ETA 0:19".
  static std::string format_line(const std::string& label, int64_t done, int64_t total,
                                 double seconds, const std::string& unit, int bar_width);
  static std::string format_duration(double seconds);

 private:
  void maybe_print(bool force);

  std::string label_, unit_, note_;
  int64_t total_ = 0;
  int64_t done_ = 0;
  int64_t start_count_ = 0;
  bool finished_ = false;
  bool terminal_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
  mutable std::mutex mutex_;
};

}  // namespace nucleisam
