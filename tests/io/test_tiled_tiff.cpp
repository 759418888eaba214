// The label pyramid writer: tiles a source leaves empty (0 x 0: "all zeros") read back as zeros
// beside tiles given in full, at every level; wrong tiles and negative labels are refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "nucleisam/errors.h"
#include "nucleisam/io/tiled_tiff.h"
#include "support/test_support.h"

using namespace nucleisam;
namespace fs = std::filesystem;

namespace {

// A 600 x 520 (w x h) label image: labels only in a block around (100..159, 300..339); every
// other 256-pixel tile of either level is zeros.
int32_t label_at(int64_t x, int64_t y) {
  return (x >= 100 && x < 160 && y >= 300 && y < 340) ? 7 + x % 3 : 0;
}

LabelMap tile_of(int ds, int64_t x, int64_t y, int w, int h) {
  LabelMap t(h, w);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) t.at(r, c) = label_at((x + c) * ds, (y + r) * ds);
  return t;
}

bool all_zero(const LabelMap& t) {
  for (int32_t v : t.data)
    if (v) return false;
  return true;
}

}  // namespace

TEST(TiledLabelTiff, EmptyTilesFromTheSourceReadBackAsZeros) {
  test::TempDir dir;
  for (const bool say_empty : {false, true}) {
    const std::string path = dir.file(say_empty ? "empty.tif" : "full.tif");
    int empty_said = 0;
    io::write_tiled_label_tiff(path, 600, 520, 256, {1, 2}, [&](int ds, int64_t x, int64_t y, int w, int h) {
      LabelMap t = tile_of(ds, x, y, w, h);
      if (say_empty && all_zero(t)) {
        ++empty_said;
        return LabelMap();
      }
      return t;
    });
    if (say_empty) {
      EXPECT_EQ(empty_said, 3 * 3 - 1 + 2 * 2 - 1);  // all tiles but the one with labels, per level
    }
    for (int level : {0, 1}) {
      const int ds = 1 << level;
      const LabelMap back = io::read_tiled_label_tiff(path, level);
      ASSERT_EQ(back.width, 600 / ds);
      ASSERT_EQ(back.height, 520 / ds);
      EXPECT_EQ(back, tile_of(ds, 0, 0, 600 / ds, 520 / ds)) << path << " level " << level;
    }
  }
}

TEST(TiledLabelTiff, WrongTilesAndNegativeLabelsAreRefused) {
  test::TempDir dir;
  const std::string path = dir.file("bad.tif");
  EXPECT_THROW(
      io::write_tiled_label_tiff(path, 300, 300, 256, {1},
                                 [](int, int64_t, int64_t, int w, int h) { return LabelMap(h, w + 1); }),
      IoError);
  EXPECT_THROW(
      io::write_tiled_label_tiff(path, 300, 300, 256, {1},
                                 [](int, int64_t, int64_t, int w, int h) { return LabelMap(h, w, 1, -2); }),
      IoError);
  EXPECT_FALSE(fs::exists(path));  // nothing half-written
}
