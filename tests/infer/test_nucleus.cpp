// Label map -> Nucleus: measurements match the pixels, polygons are simple closed rings through the
// midpoints of the outline's pixel edges, and the awkward cases (border, single pixel, thin line,
// holes, split ids, one-pixel necks, parts touching at a corner, random blobs).
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <utility>

#include "nucleisam/errors.h"
#include "nucleisam/infer/nucleus.h"
#include "support/test_support.h"

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
  // The pixel square [2,6) x [3,7) with each corner cut at the edge midpoints.
  EXPECT_EQ(vertices(n.polygon), (std::set<std::pair<float, float>>{{2.5f, 3}, {5.5f, 3}, {6, 3.5f}, {6, 6.5f},
                                                                     {5.5f, 7}, {2.5f, 7}, {2, 6.5f}, {2, 3.5f}}));
  EXPECT_EQ(n.polygon.size(), 9u);
  EXPECT_DOUBLE_EQ(ring_area(n.polygon), 16.0 - 4 * 0.125);
}

TEST(Nucleus, BorderPixelsAndSinglePixels) {
  LabelMap m(6, 8);
  m.at(0, 0) = 1;          // one pixel in the corner
  fill(m, 5, 3, 3, 3, 2);  // touches the right and bottom edges
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 2u);
  EXPECT_EQ(vertices(nuclei[0].polygon),
            (std::set<std::pair<float, float>>{{0.5f, 0}, {1, 0.5f}, {0.5f, 1}, {0, 0.5f}}));
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 0.5);
  EXPECT_EQ(nuclei[1].bbox, (PixelBox{5, 3, 3, 3}));
  EXPECT_EQ(vertices(nuclei[1].polygon), (std::set<std::pair<float, float>>{{5.5f, 3}, {7.5f, 3}, {8, 3.5f}, {8, 5.5f},
                                                                            {7.5f, 6}, {5.5f, 6}, {5, 5.5f}, {5, 3.5f}}));
}

TEST(Nucleus, ThinLineHasPositiveArea) {
  LabelMap m(5, 10);
  fill(m, 2, 1, 5, 1, 3);
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 1u);
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 5.0 - 0.5);
  EXPECT_TRUE(test::ring_is_simple(nuclei[0].polygon));
}

TEST(Nucleus, HolesAreIgnoredInThePolygonButNotInTheArea) {
  LabelMap m(9, 9);
  fill(m, 1, 1, 5, 5, 4);
  m.at(3, 3) = 0;
  auto nuclei = nuclei_from_instances(m);
  ASSERT_EQ(nuclei.size(), 1u);
  EXPECT_EQ(nuclei[0].area, 24);
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 25.0 - 0.5);  // the hole is filled in the outline
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
  EXPECT_DOUBLE_EQ(ring_area(nuclei[0].polygon), 9.0 - 0.5);
}

// The shapes whose pixel-centre contours (OpenCV findContours) touch or cross themselves: a
// one-pixel neck, two blobs meeting at a corner, a ring closed by a diagonal step around a hole.
TEST(Nucleus, RingsAreSimpleWhereCentreContoursTouchThemselves) {
  LabelMap m(12, 30);
  fill(m, 1, 1, 3, 3, 1);  // blob, one-pixel neck, blob
  fill(m, 4, 2, 2, 1, 1);
  fill(m, 6, 1, 3, 3, 1);
  fill(m, 11, 1, 3, 3, 2);  // two blobs touching only at a corner: the larger one is outlined
  fill(m, 14, 4, 4, 4, 2);
  // An open ring of pixels whose last step is diagonal: the gap pixel (21, 1) is a hole in
  // 4-connectivity, filled in the outline.
  fill(m, 20, 2, 5, 1, 3);
  fill(m, 20, 2, 1, 5, 3);
  fill(m, 20, 6, 5, 1, 3);
  fill(m, 24, 2, 1, 5, 3);
  m.at(2, 22) = 0;
  m.at(1, 23) = 3;  // touches (2, 22)'s neighbours at corners only
  for (const Nucleus& n : nuclei_from_instances(m)) {
    std::string why;
    EXPECT_TRUE(test::ring_is_simple(n.polygon, &why)) << "nucleus " << n.id << ": " << why;
  }
  auto nuclei = nuclei_from_instances(m);
  EXPECT_DOUBLE_EQ(ring_area(nuclei[1].polygon), 16.0 - 0.5);  // the 4x4 blob alone
}

// Random blobs of every awkward shape: every ring simple, inside the bbox, area within the
// corner cuts of the pixel count of its part.
TEST(Nucleus, RandomBlobsGiveSimpleRings) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 200; ++trial) {
    LabelMap m(24, 24);
    std::bernoulli_distribution on(0.55);
    for (int y = 4; y < 20; ++y)
      for (int x = 4; x < 20; ++x)
        if (on(rng)) m.at(y, x) = 1 + (x + y) % 2 * (trial % 3 == 0);
    for (const Nucleus& n : nuclei_from_instances(m)) {
      std::string why;
      ASSERT_TRUE(test::ring_is_simple(n.polygon, &why)) << "trial " << trial << " id " << n.id << ": " << why;
      for (const auto& p : n.polygon) {
        EXPECT_GE(p.x, n.bbox.x);
        EXPECT_LE(p.x, n.bbox.x + n.bbox.width);
        EXPECT_GE(p.y, n.bbox.y);
        EXPECT_LE(p.y, n.bbox.y + n.bbox.height);
      }
    }
  }
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
