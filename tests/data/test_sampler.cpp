// Repeat-factor sampling on a hand-computed example, its per-epoch draw and determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "nucleisam/data/sampler.h"
#include "nucleisam/errors.h"

using namespace nucleisam;
using namespace nucleisam::data;

TEST(RepeatFactor, HandExample) {
  // Class 1 in 3 of 4 images (f = 0.75), class 2 in 1 of 4 (f = 0.25), t = 0.5:
  // class 1: max(1, sqrt(0.5 / 0.75) = 0.816) = 1; class 2: sqrt(0.5 / 0.25) = sqrt(2).
  std::vector<std::vector<int>> classes = {{1}, {1, 2, 2}, {1, 0}, {}};
  std::vector<double> r = repeat_factors(classes, 0.5);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_DOUBLE_EQ(r[0], 1.0);
  EXPECT_DOUBLE_EQ(r[1], std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(r[2], 1.0);
  EXPECT_DOUBLE_EQ(r[3], 1.0);
  // t = 3: class 1 gives sqrt(4) = 2, class 2 sqrt(12).
  std::vector<double> r3 = repeat_factors(classes, 3.0);
  EXPECT_DOUBLE_EQ(r3[0], 2.0);
  EXPECT_DOUBLE_EQ(r3[1], std::sqrt(12.0));
  EXPECT_THROW(repeat_factors(classes, 0), DataError);
}

TEST(RepeatFactor, EpochDrawsFractionalPart) {
  std::vector<double> r = {1.0, 2.25, 0.5, 3.0};
  const int epochs = 4000;
  std::vector<double> counts(4, 0);
  for (int e = 0; e < epochs; ++e) {
    std::vector<size_t> idx = repeat_factor_epoch(r, 11, static_cast<uint64_t>(e));
    std::vector<int> per(4, 0);
    for (size_t i : idx) ++per[i];
    EXPECT_EQ(per[0], 1);
    EXPECT_TRUE(per[1] == 2 || per[1] == 3);
    EXPECT_TRUE(per[2] == 0 || per[2] == 1);
    EXPECT_EQ(per[3], 3);
    for (int i = 0; i < 4; ++i) counts[i] += per[i];
  }
  // Expected count per epoch = r (binomial error ~ 0.007 over 4000 epochs).
  EXPECT_NEAR(counts[1] / epochs, 2.25, 0.03);
  EXPECT_NEAR(counts[2] / epochs, 0.5, 0.03);
}

TEST(RepeatFactor, EpochIsDeterministicAndShuffled) {
  std::vector<double> r(50, 1.5);
  auto a = repeat_factor_epoch(r, 1, 3), b = repeat_factor_epoch(r, 1, 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, repeat_factor_epoch(r, 1, 4));
  EXPECT_NE(a, repeat_factor_epoch(r, 2, 3));
  auto plain = repeat_factor_epoch(r, 1, 3, false);
  EXPECT_TRUE(std::is_sorted(plain.begin(), plain.end()));
  EXPECT_FALSE(std::is_sorted(a.begin(), a.end()));
  std::vector<size_t> sa = a;
  std::sort(sa.begin(), sa.end());
  EXPECT_EQ(sa, plain);  // shuffling only reorders the same draw
}
