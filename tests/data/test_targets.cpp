// Target maps worked out by hand on tiny instance maps.
#include <gtest/gtest.h>

#include "nucleisam/data/targets.h"
#include "nucleisam/errors.h"

using namespace nucleisam;
using namespace nucleisam::data;

namespace {
LabelMap from_rows(int h, int w, std::vector<int32_t> v) {
  LabelMap m(h, w);
  m.data = std::move(v);
  return m;
}
}  // namespace

TEST(Targets, ForegroundMask) {
  LabelMap m = from_rows(1, 4, {0, 3, 7, 0});
  EXPECT_EQ(foreground_mask(m).data, (std::vector<uint8_t>{0, 1, 1, 0}));
}

TEST(Targets, ThreeClassHandExample) {
  // Two touching 3-wide nuclei and one alone; the image border is not a boundary.
  LabelMap m = from_rows(5, 7, {
      1, 1, 1, 2, 2, 2, 0,
      1, 1, 1, 2, 2, 2, 0,
      1, 1, 1, 2, 2, 2, 0,
      0, 0, 0, 0, 0, 0, 0,
      3, 3, 3, 0, 0, 0, 0});
  LabelMap expected = from_rows(5, 7, {
      1, 1, 2, 2, 1, 2, 0,
      1, 1, 2, 2, 1, 2, 0,
      2, 2, 2, 2, 2, 2, 0,
      0, 0, 0, 0, 0, 0, 0,
      2, 2, 2, 0, 0, 0, 0});
  EXPECT_EQ(three_class_map(m), expected);
}

TEST(Targets, PerClassMasks) {
  LabelMap c = from_rows(1, 4, {0, 2, 1, 2});
  Mask m = per_class_masks(c, 3);
  ASSERT_EQ(m.channels, 3);
  EXPECT_EQ(m.data, (std::vector<uint8_t>{0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0}));
  EXPECT_THROW(per_class_masks(from_rows(1, 1, {4}), 3), DataError);
  EXPECT_THROW(per_class_masks(c, 0), DataError);
}
