// Postprocessing on hand-made maps: touching discs split, single blobs stay whole, small blobs
// go, holes fill only when small, seeds grow by a bounded ring, watershed respects its markers.
#include <gtest/gtest.h>

#include <set>

#include "nucleisam/errors.h"
#include "nucleisam/infer/postprocess.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

void draw_disc(ProbabilityMap& m, double cx, double cy, double r, float value = 1.0f) {
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x)
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) m.at(y, x) = value;
}

std::set<int32_t> ids(const LabelMap& m) {
  std::set<int32_t> s(m.data.begin(), m.data.end());
  s.erase(0);
  return s;
}

int64_t area_of(const LabelMap& m, int32_t id) {
  int64_t n = 0;
  for (int32_t v : m.data) n += v == id;
  return n;
}

}  // namespace

TEST(Foreground, TwoTouchingDiscsAreSplitIntoTwo) {
  ProbabilityMap p(40, 60);
  draw_disc(p, 20, 20, 10);
  draw_disc(p, 36, 20, 10);  // centres 1.6 radii apart: a neck of half-width 6 between peaks of 10
  LabelMap m = instances_from_foreground(p);
  ASSERT_EQ(ids(m), (std::set<int32_t>{1, 2}));
  EXPECT_EQ(m.at(20, 20), 1);  // raster order: the left disc's first pixel comes first
  EXPECT_EQ(m.at(20, 36), 2);
  // Every foreground pixel keeps a label, and the split follows the neck (x = 28).
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 60; ++x) {
      EXPECT_EQ(p.at(y, x) > 0.5f, m.at(y, x) > 0) << x << "," << y;
      if (m.at(y, x) == 1) {
        EXPECT_LE(x, 29);
      } else if (m.at(y, x) == 2) {
        EXPECT_GE(x, 27);
      }
    }
}

TEST(Foreground, WithoutSplittingTouchingDiscsAreOneComponent) {
  ProbabilityMap p(40, 60);
  draw_disc(p, 20, 20, 10);
  draw_disc(p, 36, 20, 10);
  ForegroundSplitOptions o;
  o.split_depth = 0;
  EXPECT_EQ(ids(instances_from_foreground(p, o)).size(), 1u);
}

TEST(Foreground, IsolatedDiscAndEllipseStayWhole) {
  ProbabilityMap p(60, 80);
  draw_disc(p, 15, 15, 9);
  // An elongated nucleus: a long flat distance ridge must not be cut.
  for (int y = 0; y < 60; ++y)
    for (int x = 0; x < 80; ++x) {
      double dx = (x - 50) / 22.0, dy = (y - 40) / 7.0;
      if (dx * dx + dy * dy <= 1) p.at(y, x) = 0.9f;
    }
  LabelMap m = instances_from_foreground(p);
  ASSERT_EQ(ids(m).size(), 2u);
  EXPECT_NE(m.at(15, 15), m.at(40, 50));
  EXPECT_EQ(m.at(40, 30), m.at(40, 70));  // both ends of the ellipse share one id
}

TEST(Foreground, SmallBlobsAndSubThresholdValuesAreRemoved) {
  ProbabilityMap p(30, 30);
  draw_disc(p, 5, 5, 1.5);         // 9 pixels < min_area 30
  draw_disc(p, 20, 20, 6, 0.4f);   // below the threshold
  LabelMap m = instances_from_foreground(p);
  EXPECT_TRUE(ids(m).empty());
  ForegroundSplitOptions o;
  o.min_area = 5;
  o.threshold = 0.3f;
  EXPECT_EQ(ids(instances_from_foreground(p, o)).size(), 2u);
}

TEST(Foreground, SmallHolesFillLargeHolesStay) {
  ProbabilityMap p(50, 80);
  // Ring with a 3x3 hole (pale nucleus centre): filled.
  for (int y = 5; y < 16; ++y)
    for (int x = 5; x < 16; ++x) p.at(y, x) = 1;
  for (int y = 9; y < 12; ++y)
    for (int x = 9; x < 12; ++x) p.at(y, x) = 0;
  // Thick frame around a 20x20 lumen (400 px > max_hole_area 100): the lumen stays background.
  for (int y = 10; y < 40; ++y)
    for (int x = 40; x < 70; ++x) p.at(y, x) = (y >= 15 && y < 35 && x >= 45 && x < 65) ? 0.0f : 1.0f;
  ForegroundSplitOptions o;
  o.split_depth = 0;
  LabelMap m = instances_from_foreground(p, o);
  EXPECT_EQ(area_of(m, m.at(10, 10)), 121);
  EXPECT_EQ(m.at(25, 55), 0);
  EXPECT_EQ(area_of(m, m.at(12, 42)), 30 * 30 - 400);
  o.max_hole_area = 0;
  m = instances_from_foreground(p, o);
  EXPECT_EQ(m.at(10, 10), 0);
}

TEST(Foreground, BorderTouchingNucleusIsKept) {
  ProbabilityMap p(30, 30);
  draw_disc(p, 0, 15, 8);  // half a disc cut by the left edge
  LabelMap m = instances_from_foreground(p);
  EXPECT_EQ(ids(m).size(), 1u);
  EXPECT_EQ(m.at(15, 0), 1);
}

TEST(Foreground, RejectsMultiChannelInput) {
  ProbabilityMap p(4, 4, 2);
  EXPECT_THROW(instances_from_foreground(p), DataError);
}

TEST(ThreeClass, InteriorSeedsGrowOverTheirBoundaryRing) {
  ProbabilityMap interior(30, 40), boundary(30, 40);
  // Two 5x5 cores with a 2-pixel boundary ring each; the rings touch between the cores.
  auto nucleus = [&](int x0, int y0) {
    for (int y = y0 - 2; y < y0 + 7; ++y)
      for (int x = x0 - 2; x < x0 + 7; ++x) boundary.at(y, x) = 0.8f;
    for (int y = y0; y < y0 + 5; ++y)
      for (int x = x0; x < x0 + 5; ++x) interior.at(y, x) = 0.9f, boundary.at(y, x) = 0.05f;
  };
  nucleus(5, 10);
  nucleus(13, 10);
  interior.at(25, 35) = 0.9f;  // a one-pixel seed: below min_interior_area
  LabelMap m = instances_from_three_class(interior, boundary);
  ASSERT_EQ(ids(m), (std::set<int32_t>{1, 2}));
  EXPECT_EQ(m.at(12, 7), 1);
  EXPECT_EQ(m.at(12, 15), 2);
  EXPECT_EQ(m.at(8, 3), 1);    // ring corner: two diagonal steps from the core
  EXPECT_EQ(m.at(25, 35), 0);  // dropped seed
  // The two 9x9 grown squares share column 11 (9 pixels): each of those goes to one nucleus.
  EXPECT_EQ(area_of(m, 1) + area_of(m, 2), 9 * 9 * 2 - 9);
  EXPECT_EQ(m.at(12, 12), 2);  // column 12 is the second ring's own
}

TEST(ThreeClass, GrowthIsBoundedAndSizesMustMatch) {
  ProbabilityMap interior(20, 20), boundary(20, 20);
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 20; ++x) boundary.at(y, x) = 0.9f;  // a wide boundary field
  for (int y = 8; y < 12; ++y)
    for (int x = 8; x < 12; ++x) interior.at(y, x) = 0.95f, boundary.at(y, x) = 0;
  ThreeClassOptions o;
  o.max_growth = 3;
  LabelMap m = instances_from_three_class(interior, boundary, o);
  EXPECT_EQ(area_of(m, 1), 10 * 10);  // 4x4 core + 3 rings (8-connected steps grow a square)
  EXPECT_THROW(instances_from_three_class(interior, ProbabilityMap(20, 21)), DataError);
}

TEST(Watershed, MarkersFloodUpToTheRidge) {
  ProbabilityMap elevation(1, 12);
  const float e[12] = {0, 1, 2, 3, 4, 5, 9, 3, 2, 1, 0, 0};
  for (int x = 0; x < 12; ++x) elevation.at(0, x) = e[x];
  LabelMap markers(1, 12);
  markers.at(0, 0) = 4;
  markers.at(0, 9) = 7;
  Mask mask(1, 12, 1, 1);
  mask.at(0, 10) = 0;  // cuts pixel 11 off from every marker
  LabelMap m = watershed_from_markers(elevation, markers, mask);
  for (int x = 0; x <= 5; ++x) EXPECT_EQ(m.at(0, x), 4) << x;
  for (int x = 7; x <= 9; ++x) EXPECT_EQ(m.at(0, x), 7) << x;
  EXPECT_TRUE(m.at(0, 6) == 4 || m.at(0, 6) == 7);
  EXPECT_EQ(m.at(0, 10), 0);
  EXPECT_EQ(m.at(0, 11), 0);
}

TEST(RemoveSmall, RenumbersSurvivorsInRasterOrder) {
  LabelMap m(3, 6);
  // id 9: 3 px (first in raster order), id 2: 1 px, id 5: 4 px
  m.at(0, 0) = 9, m.at(0, 1) = 9, m.at(1, 0) = 9;
  m.at(0, 4) = 2;
  m.at(1, 3) = 5, m.at(1, 4) = 5, m.at(2, 3) = 5, m.at(2, 4) = 5;
  LabelMap r = remove_small_instances(m, 2);
  EXPECT_EQ(r.at(0, 0), 1);
  EXPECT_EQ(r.at(1, 3), 2);
  EXPECT_EQ(r.at(0, 4), 0);
  EXPECT_EQ(ids(r).size(), 2u);
}
