// Classical baseline: colour deconvolution and Otsu on worked-out values, a synthetic H&E tile
// with known nuclei, blank tiles, and (with shared data) a quality floor on a real MoNuSeg tile.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "nucleisam/image_io.h"
#include "nucleisam/infer/classical_segmenter.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;
using namespace nucleisam::infer;

namespace {

// Ruifrok & Johnston's H and E optical-density vectors (normalised where used).
const double kH[3] = {0.650, 0.704, 0.286};
const double kE[3] = {0.072, 0.990, 0.105};

// The 8-bit RGB a pixel with h units of hematoxylin and e of eosin has (Beer-Lambert, the
// inverse of the deconvolution's -log10((I + 1) / 256)).
void stain(Image& img, int y, int x, double h, double e) {
  const double nh = std::sqrt(kH[0] * kH[0] + kH[1] * kH[1] + kH[2] * kH[2]);
  const double ne = std::sqrt(kE[0] * kE[0] + kE[1] * kE[1] + kE[2] * kE[2]);
  for (int c = 0; c < 3; ++c) {
    double od = h * kH[c] / nh + e * kE[c] / ne;
    img.at(y, x, c) = static_cast<uint8_t>(std::lround(std::clamp(256 * std::pow(10.0, -od) - 1, 0.0, 255.0)));
  }
}

std::set<int32_t> ids(const LabelMap& m) {
  std::set<int32_t> s(m.data.begin(), m.data.end());
  s.erase(0);
  return s;
}

}  // namespace

TEST(Classical, HematoxylinDensityOfPureStains) {
  Image img(1, 3, 3);
  stain(img, 0, 0, 1.0, 0.0);
  stain(img, 0, 1, 0.0, 1.0);
  stain(img, 0, 2, 0.0, 0.0);  // glass: 255,255,255
  Raster<float> h = hematoxylin_density(img);
  EXPECT_NEAR(h.at(0, 0), 1.0, 0.02);  // 8-bit rounding only
  EXPECT_NEAR(h.at(0, 1), 0.0, 0.02);
  EXPECT_FLOAT_EQ(h.at(0, 2), 0.0f);
}

TEST(Classical, OtsuSeparatesTheTwoClusters) {
  // {0,0,0} vs {10,10,10,11,11,11}: between-class variance 3*6*10.5^2 = 1984.5 for the split
  // after 0, 6*3*6^2 = 648 for the split after 10, so the threshold lies between 0 and 10.
  Raster<float> v(1, 9);
  const float values[9] = {0, 0, 0, 10, 10, 10, 11, 11, 11};
  std::copy(values, values + 9, v.data.begin());
  float t = otsu_threshold(v);
  EXPECT_GT(t, 0.0f);
  EXPECT_LT(t, 10.0f);
  // Restricted to the last six values the split is between 10 and 11.
  Mask include(1, 9);
  for (int x = 3; x < 9; ++x) include.at(0, x) = 1;
  t = otsu_threshold(v, include);
  EXPECT_GT(t, 10.0f);
  EXPECT_LT(t, 11.0f);
}

TEST(Classical, SyntheticTileGivesTheDrawnNuclei) {
  Image img(120, 140, 3);
  uint32_t seed = 12345;
  auto noise = [&] {
    seed = seed * 1664525u + 1013904223u;
    return ((seed >> 16) % 1000) / 1000.0 * 0.06 - 0.03;
  };
  const double centres[4][2] = {{30, 30}, {100, 30}, {30, 80}, {43, 80}};  // the last two touch
  for (int y = 0; y < 120; ++y)
    for (int x = 0; x < 140; ++x) {
      bool nucleus = false;
      for (const auto& c : centres) nucleus |= (x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1]) <= 64;
      if (x >= 120) stain(img, y, x, 0, 0);  // a strip of glass
      else if (nucleus) stain(img, y, x, 0.9 + noise(), 0.1);
      else stain(img, y, x, 0.05 + noise(), 0.35 + noise());
    }
  ClassicalSegmenter segmenter;
  Segmentation s = segmenter.segment(img, "synthetic");
  ASSERT_EQ(ids(s.instances).size(), 4u);
  std::set<int32_t> at_centres;
  for (const auto& c : centres) at_centres.insert(s.instances.at(static_cast<int>(c[1]), static_cast<int>(c[0])));
  EXPECT_EQ(at_centres, (std::set<int32_t>{1, 2, 3, 4}));
  EXPECT_TRUE(s.classes.empty());
  EXPECT_EQ(s.instances.at(60, 130), 0);
}

TEST(Classical, BlankOrFlatTilesGiveNoNucleiWithoutError) {
  ClassicalSegmenter segmenter;
  Image glass(64, 64, 3, 255);
  Segmentation s = segmenter.segment(glass, "glass");
  EXPECT_TRUE(ids(s.instances).empty());
  EXPECT_TRUE(s.instances.same_size(glass));
  Image pink(64, 64, 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) stain(pink, y, x, 0.05, 0.4);
  EXPECT_TRUE(ids(segmenter.segment(pink, "pink").instances).empty());
  EXPECT_TRUE(ids(segmenter.segment(Image(1, 1, 3, 0), "black pixel").instances).empty());
}

// A floor, not a benchmark: the baseline must find most nuclear pixels on a real tile
// (docs/BENCHMARKS.md has the full MoNuSeg numbers).
TEST(Classical, PixelDiceFloorOnAMoNuSegTile) {
  NUCLEISAM_REQUIRE_SHARED("data/monuseg/train/images/TCGA-A7-A13E-01Z-00-DX1.tif");
  Image img = read_image(test::shared_path("data/monuseg/train/images/TCGA-A7-A13E-01Z-00-DX1.tif"));
  LabelMap truth = read_label_map(test::shared_path("data/monuseg/train/instance_labels/TCGA-A7-A13E-01Z-00-DX1_label.png"));
  ClassicalSegmenter segmenter;
  LabelMap pred = segmenter.segment(img, "A7-A13E").instances;
  ASSERT_TRUE(pred.same_size(truth));
  double both = 0, p = 0, t = 0;
  for (size_t i = 0; i < pred.data.size(); ++i) {
    bool a = pred.data[i] > 0, b = truth.data[i] > 0;
    both += a && b;
    p += a;
    t += b;
  }
  EXPECT_GT(2 * both / (p + t), 0.6);
  EXPECT_GT(ids(pred).size(), 100u);  // the tile holds 314 annotated nuclei
}
