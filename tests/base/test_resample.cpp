// Raster resampling by hand: area means over whole and fractional footprints, bilinear between
// pixel centres with replicated edges, nearest-centre labels, and the factor snapping.
#include <gtest/gtest.h>

#include "nucleisam/errors.h"
#include "nucleisam/resample.h"

using namespace nucleisam;

namespace {

Image row_image(std::vector<uint8_t> values) {
  Image img(1, static_cast<int>(values.size()), 1);
  img.data = std::move(values);
  return img;
}

}  // namespace

TEST(Resample, AreaMeansOverWholeAndFractionalFootprints) {
  // 4 -> 2: means of pairs.
  EXPECT_EQ(resample_image(row_image({10, 20, 30, 41}), 2, 1).data, (std::vector<uint8_t>{15, 36}));  // 35.5 rounds up
  // 3 -> 2: footprints [0, 1.5) and [1.5, 3): (a0 + a1 / 2) / 1.5 and (a1 / 2 + a2) / 1.5.
  EXPECT_EQ(resample_image(row_image({30, 90, 150}), 2, 1).data, (std::vector<uint8_t>{50, 130}));
  // Both axes: a 2 x 2 block mean per channel.
  Image img(2, 2, 3);
  for (int i = 0; i < 12; ++i) img.data[i] = static_cast<uint8_t>(i * 10);
  EXPECT_EQ(resample_image(img, 1, 1).data, (std::vector<uint8_t>{45, 55, 65}));
}

TEST(Resample, BilinearBetweenCentresWithReplicatedEdges) {
  // 2 -> 4: target centres at source -0.25, 0.25, 0.75, 1.25 -> a0, 3/4 a0 + 1/4 a1, 1/4 a0 + 3/4 a1, a1.
  EXPECT_EQ(resample_image(row_image({0, 200}), 4, 1).data, (std::vector<uint8_t>{0, 50, 150, 200}));
  // 2 -> 3: centres at -1/6, 1/2, 7/6.
  EXPECT_EQ(resample_image(row_image({0, 200}), 3, 1).data, (std::vector<uint8_t>{0, 100, 200}));
  // Same size: a copy.
  const Image same = row_image({1, 2, 3});
  EXPECT_EQ(resample_image(same, 3, 1), same);
}

TEST(Resample, LabelsTakeTheNearestPixelCentre) {
  LabelMap in(4, 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) in.at(y, x) = 10 * y + x;
  // Halving: target x samples floor((x + 0.5) * 2) = 1, 3.
  LabelMap half = resample_labels(in, 2, 2);
  EXPECT_EQ(half.data, (std::vector<int32_t>{11, 13, 31, 33}));
  // Doubling: floor((x + 0.5) / 2) = 0, 0, 1, 1, ...
  LabelMap twice = resample_labels(half, 4, 4);
  EXPECT_EQ(twice.data, (std::vector<int32_t>{11, 11, 13, 13, 11, 11, 13, 13, 31, 31, 33, 33, 31, 31, 33, 33}));
  // 3 -> 2 wide: floor(0.75) = 0, floor(2.25) = 2; same size: unchanged.
  LabelMap row(1, 3);
  row.data = {5, 6, 7};
  EXPECT_EQ(resample_labels(row, 2, 1).data, (std::vector<int32_t>{5, 7}));
  EXPECT_EQ(resample_labels(in, 4, 4), in);
}

TEST(Resample, FactorsNearWholeNumbersAreSnapped) {
  EXPECT_EQ(snap_scale_factor(0.2527 / 0.25), 1.0);
  EXPECT_EQ(snap_scale_factor(0.49 / 0.25), 2.0);
  EXPECT_EQ(snap_scale_factor(0.125 / 0.25), 0.5);
  EXPECT_DOUBLE_EQ(snap_scale_factor(0.52), 0.52);  // 1 / 0.52 = 1.923: 3.8% from 2
  EXPECT_DOUBLE_EQ(snap_scale_factor(1.4924), 1.4924);
  EXPECT_EQ(snap_scale_factor(0), 1.0);
  EXPECT_EQ(snap_scale_factor(-2), 1.0);
}

TEST(Resample, EmptySizesAreDataErrors) {
  EXPECT_THROW(resample_image(row_image({1, 2}), 0, 1), DataError);
  EXPECT_THROW(resample_image(Image(), 2, 2), DataError);
  EXPECT_THROW(resample_labels(LabelMap(2, 2), 2, 0), DataError);
}
