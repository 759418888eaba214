// Progress line formatting: counts, bar, rate, ETA.
#include <gtest/gtest.h>

#include "nucleisam/progress.h"

using nucleisam::Progress;

TEST(Progress, DurationFormatting) {
  EXPECT_EQ(Progress::format_duration(0), "0:00");
  EXPECT_EQ(Progress::format_duration(59.4), "0:59");
  EXPECT_EQ(Progress::format_duration(61), "1:01");
  EXPECT_EQ(Progress::format_duration(3600 + 120 + 5), "1:02:05");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}

TEST(Progress, LineWithBarRateAndEta) {
  // 25 of 100 in 5 s: 5 it/s, 75 left -> 15 s.
  std::string line = Progress::format_line("tiles", 25, 100, 5.0, "tile", 4);
  EXPECT_EQ(line, "tiles  25/100 [=>  ] 25% 5.0 tile/s ETA 0:15");
  // Finished: total time instead of ETA.
  EXPECT_EQ(Progress::format_line("tiles", 100, 100, 20.0, "tile", 0), "tiles  100/100 5.0 tile/s in 0:20");
  // Slow work is shown as seconds per item; unknown totals have no ETA.
  EXPECT_EQ(Progress::format_line("slides", 2, 0, 10.0, "slide", 10), "slides  2 5.0 s/slide");
}
