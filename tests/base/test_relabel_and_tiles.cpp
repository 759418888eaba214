// The shared label renumbering (both orders, small and huge ids, bad input) and the one tile
// planner (known windows, full coverage).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "nucleisam/errors.h"
#include "nucleisam/relabel.h"
#include "nucleisam/tile_plan.h"

using namespace nucleisam;

namespace {
LabelMap row_of(std::vector<int32_t> values) {
  LabelMap m(1, static_cast<int>(values.size()));
  m.data = std::move(values);
  return m;
}
}  // namespace

TEST(Relabel, AscendingKeepsTheIdOrder) {
  LabelMap m = row_of({0, 9, 4, 9, 0, 20, 4});
  EXPECT_EQ(relabel_consecutive(m), (std::vector<int32_t>{4, 9, 20}));
  EXPECT_EQ(m.data, (std::vector<int32_t>{0, 2, 1, 2, 0, 3, 1}));
  // Ids beyond the lookup-table range take the same path to the same answer.
  LabelMap big = row_of({0, 1 << 30, 5, 1 << 30});
  EXPECT_EQ(relabel_consecutive(big), (std::vector<int32_t>{5, 1 << 30}));
  EXPECT_EQ(big.data, (std::vector<int32_t>{0, 2, 1, 2}));
}

TEST(Relabel, FirstSeenFollowsRasterOrder) {
  LabelMap m = row_of({0, 9, 4, 9, 0, 20, 4});
  EXPECT_EQ(relabel_consecutive(m, "", RelabelOrder::first_seen), (std::vector<int32_t>{9, 4, 20}));
  EXPECT_EQ(m.data, (std::vector<int32_t>{0, 1, 2, 1, 0, 3, 2}));
  LabelMap big = row_of({1 << 30, 0, 5});
  EXPECT_EQ(relabel_consecutive(big, "", RelabelOrder::first_seen), (std::vector<int32_t>{1 << 30, 5}));
  EXPECT_EQ(big.data, (std::vector<int32_t>{1, 0, 2}));
}

TEST(Relabel, NegativeIdsNameTheFile) {
  LabelMap m = row_of({0, -3});
  try {
    relabel_consecutive(m, "bad.png");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.png: negative instance id -3"), std::string::npos) << e.what();
  }
}

TEST(TilePlan, KnownWindowsAndFullCoverage) {
  // 10 x 7 in 4-pixel windows stepping by 3: rows start 0, 3, 6 (the last pulled back to the
  // border), columns 0, 3.
  std::set<std::pair<int, int>> starts;
  for (const TileWindow& w : plan_tiles(10, 7, 4, 1)) {
    starts.insert({w.y, w.x});
    EXPECT_EQ(w.width, 4);
    EXPECT_EQ(w.height, 4);
  }
  EXPECT_EQ(starts, (std::set<std::pair<int, int>>{{0, 0}, {0, 3}, {3, 0}, {3, 3}, {6, 0}, {6, 3}}));
  for (int h : {4, 9, 300, 1000})
    for (int overlap : {0, 56, 156, 249}) {
      const int tile = std::min(256, h);
      if (overlap >= tile) continue;
      std::vector<int> covered(static_cast<size_t>(h) * h, 0);
      for (const TileWindow& w : plan_tiles(h, h, tile, overlap)) {
        ASSERT_GE(w.y, 0);
        ASSERT_LE(w.y + w.height, h);
        for (int y = w.y; y < w.y + w.height; ++y)
          for (int x = w.x; x < w.x + w.width; ++x) covered[y * h + x] = 1;
      }
      EXPECT_EQ(std::count(covered.begin(), covered.end(), 0), 0) << h << " " << overlap;
    }
  // An image smaller than the tile is one window of the image's size.
  auto one = plan_tiles(100, 50, 256, 128);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].width, 50);
  EXPECT_EQ(one[0].height, 100);
}
