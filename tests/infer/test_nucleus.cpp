// Label map -> Nucleus: measurements match the pixels, polygons are closed outer rings in pixel-
// centre coordinates, and the awkward cases (border, single pixel, thin line, holes, split ids).
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "nucleisam/errors.h"
#include "nucleisam/infer/nucleus.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

void fill(LabelMap& m, int x0, int y0, int w, int h, int32_t id) {
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) m.at(y, x) = id;
}

// Shoelace area of a closed ring.
double ring_area(const std::vector<ContourPoint>& ring) {
  double a = 0;
  for (size_t i = 0; i + 1 < ring.size(); ++i) a += ring[i].x * ring[i + 1].y - ring[i + 1].x * ring[i].y;
  return std::abs(a) / 2;
}

std::set<std::pair<float, float>> vertices(const std::vector<ContourPoint>& ring) {
  std::set<std::pair<float, float>> s;
  for (const auto& p : ring) s.insert({p.x, p.y});
  return s;
}

}  // namespace

TEST(Nucleus, SquareMeasurementsAndRing) {
  LabelMap m(10, 10);
  fill(m, 2, 3, 4, 4, 7);  // columns 2..5, rows 3..6
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 1u);
  const Nucleus& n = nuclei[0];
  EXPECT_EQ(n.id, 7);
  EXPECT_EQ(n.area, 16);
  EXPECT_DOUBLE_EQ(n.centroid_x, 4.0);  // mean column 3.5, plus half a pixel to the centre
  EXPECT_DOUBLE_EQ(n.centroid_y, 5.0);
  EXPECT_EQ(n.bbox, (PixelBox{2, 3, 4, 4}));
  EXPECT_EQ(n.class_id, 0);
  EXPECT_EQ(n.class_name, "");
  EXPECT_FLOAT_EQ(n.score, 1.0f);
  ASSERT_GE(n.polygon.size(), 5u);
  EXPECT_EQ(n.polygon.front(), n.polygon.back());
  EXPECT_EQ(vertices(n.polygon),
            (std::set<std::pair<float, float>>{{2.5f, 3.5f}, {5.5f, 3.5f}, {5.5f, 6.5f}, {2.5f, 6.5f}}));
  EXPECT_DOUBLE_EQ(ring_area(n.polygon), 9.0);
}

TEST(Nucleus, BorderPixelsAndSinglePixels) {
  LabelMap m(6, 8);
  m.at(0, 0) = 1;          // one pixel in the corner
  fill(m, 5, 3, 3, 3, 2);  // touches the right and bottom edges
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 2u);
  EXPECT_EQ(vertices(nuclei[0].polygon),
            (std::set<std::pair<float, float>>{{0, 0}, {1, 0}, {1, 1}, {0, 1}}));
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 1.0);
  EXPECT_EQ(nuclei[1].bbox, (PixelBox{5, 3, 3, 3}));
  EXPECT_EQ(vertices(nuclei[1].polygon),
            (std::set<std::pair<float, float>>{{5.5f, 3.5f}, {7.5f, 3.5f}, {7.5f, 5.5f}, {5.5f, 5.5f}}));
}

TEST(Nucleus, ThinLineGetsItsPixelHull) {
  LabelMap m(5, 10);
  fill(m, 2, 1, 5, 1, 3);
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 1u);
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 5.0);
  EXPECT_EQ(nuclei[0].polygon.front(), nuclei[0].polygon.back());
}

TEST(Nucleus, HolesAreIgnoredInThePolygonButNotInTheArea) {
  LabelMap m(9, 9);
  fill(m, 1, 1, 5, 5, 4);
  m.at(3, 3) = 0;
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 1u);
  EXPECT_EQ(nuclei[0].area, 24);
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 16.0);  // the outer 5x5 ring through pixel centres
}

TEST(Nucleus, SplitIdUsesTheLargestPartForThePolygon) {
  LabelMap m(8, 12);
  fill(m, 0, 0, 2, 2, 3);  // small part first in raster order
  fill(m, 6, 2, 3, 3, 3);  // larger part
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 1u);
  EXPECT_EQ(nuclei[0].area, 13);
  EXPECT_EQ(nuclei[0].bbox, (PixelBox{0, 0, 9, 5}));
  for (const auto& p : nuclei[0].polygon) EXPECT_GE(p.x, 6.0f);
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 4.0);
}

TEST(Nucleus, ClassesScoresAndNamesFollowIdMinusOne) {
  LabelMap m(4, 8);
  fill(m, 0, 0, 2, 2, 1);
  fill(m, 4, 0, 2, 2, 2);
  fill(m, 0, 2, 2, 2, 4);  // id 3 absent: its entries are unused
  auto nuclei = nuclei_from_instances(m, {0, 2, 1, 5}, {0.5f, 0.25f, 0.f, 0.75f}, {"", "tumour", "immune"});
  ASSERT_EQ(nuclei.size(), 3u);
  EXPECT_EQ(nuclei[0].class_id, 0);
  EXPECT_EQ(nuclei[0].class_name, "");
  EXPECT_EQ(nuclei[1].class_id, 2);
  EXPECT_EQ(nuclei[1].class_name, "immune");
  EXPECT_FLOAT_EQ(nuclei[1].score, 0.25f);
  EXPECT_EQ(nuclei[2].id, 4);
  EXPECT_EQ(nuclei[2].class_name, "class 5");  // no name given for class 5
  EXPECT_FLOAT_EQ(nuclei[2].score, 0.75f);
  EXPECT_THROW(nuclei_from_instances(m, {1, 1}), DataError);
  EXPECT_THROW(nuclei_from_instances(m, {}, {0.5f}), DataError);
}

TEST(Nucleus, EmptyMapAndCount) {
  LabelMap m(5, 5);
  EXPECT_TRUE(nuclei_from_instances(m).empty());
  m.at(1, 1) = 6;
  m.at(3, 3) = 2;
  m.at(4, 4) = -1;  // negative values are background
  EXPECT_EQ(nuclei_from_instances(m, {}, {}).size(), 2u);
}
