// Tile planning (hand-computed windows, owned regions partition the image) and stitching (each
// nucleus exactly once, whole, with its class and score), using an oracle segmenter that reads
// the true labels back from the pixel colours.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "nucleisam/errors.h"
#include "nucleisam/infer/tiling.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

// Pixel colour (id & 255, id >> 8, 255) marks nucleus `id`; black is background.
struct ColourOracle : Segmenter {
  int calls = 0;
  std::string name() const override { return "oracle"; }
  Segmentation segment(const Image& img, const std::string&) override {
    ++calls;
    Segmentation s;
    s.instances = LabelMap(img.height, img.width);
    int32_t max_id = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x)
        if (img.at(y, x, 2) == 255) {
          int32_t id = img.at(y, x, 0) + 256 * img.at(y, x, 1);
          s.instances.at(y, x) = id;
          max_id = std::max(max_id, id);
        }
    for (int32_t id = 1; id <= max_id; ++id) {
      s.classes.push_back(id % 3);
      s.scores.push_back(static_cast<float>(id) / 1000.0f);
    }
    return s;
  }
};

}  // namespace

TEST(Tiling, WindowsAndOwnershipByHand) {
  // Width 700, tiles 256, overlap 64: stride 192, starts 0, 192, 384 and the last moved back to
  // 700 - 256 = 444. Owned borders: middles of the overlaps (192+256)/2 = 224, (384+448)/2 = 416,
  // (444+640)/2 = 542.
  auto tiles = plan_tiles(100, 700, 256, 64);
  ASSERT_EQ(tiles.size(), 4u);
  const int starts[4] = {0, 192, 384, 444}, own0[4] = {0, 224, 416, 542}, own1[4] = {224, 416, 542, 700};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(tiles[i].x, starts[i]);
    EXPECT_EQ(tiles[i].width, 256);
    EXPECT_EQ(tiles[i].own_x0, own0[i]);
    EXPECT_EQ(tiles[i].own_x1, own1[i]);
    EXPECT_EQ(tiles[i].y, 0);
    EXPECT_EQ(tiles[i].height, 100);  // the image is shorter than a tile
    EXPECT_EQ(tiles[i].own_y1, 100);
  }
}

TEST(Tiling, OwnedRegionsPartitionTheImage) {
  for (auto [h, w, tile, overlap] : std::vector<std::array<int, 4>>{{97, 131, 32, 8}, {64, 64, 64, 0}, {50, 200, 40, 39}}) {
    auto tiles = plan_tiles(h, w, tile, overlap);
    std::vector<int> owners(static_cast<size_t>(h) * w, 0);
    for (const auto& t : tiles) {
      EXPECT_GE(t.x, 0);
      EXPECT_LE(t.x + t.width, w);
      EXPECT_LE(t.y + t.height, h);
      EXPECT_GE(t.own_x0, t.x);
      EXPECT_LE(t.own_x1, t.x + t.width);
      EXPECT_GE(t.own_y0, t.y);
      EXPECT_LE(t.own_y1, t.y + t.height);
      for (int y = t.own_y0; y < t.own_y1; ++y)
        for (int x = t.own_x0; x < t.own_x1; ++x) ++owners[static_cast<size_t>(y) * w + x];
    }
    for (int n : owners) ASSERT_EQ(n, 1) << h << "x" << w << " tile " << tile << " overlap " << overlap;
  }
  EXPECT_THROW(plan_tiles(10, 10, 0, 0), OptionError);
  EXPECT_THROW(plan_tiles(10, 10, 8, 8), OptionError);
  EXPECT_THROW(plan_tiles(10, 10, 8, -1), OptionError);
}

TEST(Tiling, StitchingKeepsEveryNucleusOnceAndWhole) {
  // Discs of radius 6 every 17 px: many straddle the 64-px windows; the overlap of 32 px
  // is more than twice the diameter of 13 px, so every nucleus is whole in the tile that keeps it.
  const int h = 150, w = 170;
  Image img(h, w, 3);
  LabelMap truth(h, w);
  int32_t id = 0;
  for (int cy = 8; cy + 6 < h; cy += 17)
    for (int cx = 8; cx + 6 < w; cx += 17) {
      ++id;
      for (int y = cy - 6; y <= cy + 6; ++y)
        for (int x = cx - 6; x <= cx + 6; ++x)
          if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= 36) {
            truth.at(y, x) = id;
            img.at(y, x, 0) = static_cast<uint8_t>(id & 255);
            img.at(y, x, 1) = static_cast<uint8_t>(id >> 8);
            img.at(y, x, 2) = 255;
          }
    }
  ColourOracle oracle;
  Segmentation s = segment_in_tiles(oracle, img, "grid", 64, 32);
  EXPECT_GT(oracle.calls, 4);
  // A bijection between true and stitched ids with identical pixels.
  std::map<int32_t, std::set<int32_t>> seen;
  for (size_t i = 0; i < truth.data.size(); ++i) {
    EXPECT_EQ(truth.data[i] > 0, s.instances.data[i] > 0) << i;
    if (truth.data[i] > 0) seen[truth.data[i]].insert(s.instances.data[i]);
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(id));
  std::set<int32_t> used;
  for (const auto& [t, ids] : seen) {
    ASSERT_EQ(ids.size(), 1u) << "nucleus " << t << " split over tiles";
    int32_t stitched = *ids.begin();
    EXPECT_TRUE(used.insert(stitched).second);
    ASSERT_GE(stitched, 1);
    ASSERT_LE(static_cast<size_t>(stitched), s.classes.size());
    EXPECT_EQ(s.classes[stitched - 1], t % 3);
    EXPECT_FLOAT_EQ(s.scores[stitched - 1], static_cast<float>(t) / 1000.0f);
  }
  EXPECT_EQ(s.classes.size(), static_cast<size_t>(id));
}

TEST(Tiling, TileSizeZeroOrLargerThanTheImageIsOneCall) {
  Image img(20, 30, 3);
  img.at(5, 5, 2) = 255;
  img.at(5, 5, 0) = 1;
  ColourOracle oracle;
  Segmentation s = segment_in_tiles(oracle, img, "x", 0, 0);
  EXPECT_EQ(oracle.calls, 1);
  EXPECT_EQ(s.instances.at(5, 5), 1);
  segment_in_tiles(oracle, img, "x", 64, 16);
  EXPECT_EQ(oracle.calls, 2);
}
