// GeoJSON tissue masks (infer::read_tissue_mask): polygons in level-0 pixels drawn at an overview
// downsample. Fuzzing found an empty ring (OpenCV's fillPoly asserted) and a vertex at 4.7e10 (int
// overflow, 14 s to draw); polygons are now clipped to the mask before drawing.
#include <gtest/gtest.h>

#include <string>

#include "nucleisam/atomic_file.h"
#include "nucleisam/infer/slide_run.h"
#include "support/test_support.h"

using namespace nucleisam;

namespace {

std::string polygons(const std::string& rings) {
  return R"({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": )" +
         rings + "}}]}";
}

}  // namespace

TEST(TissueMask, PolygonsAreDrawnAtTheDownsampleAndFarVerticesAreClipped) {
  test::TempDir dir;
  // A 40 x 40 square at the origin: 10 x 10 overview pixels at downsample 4.
  write_file_atomic(dir.file("square.geojson"), polygons("[[[[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]]]]"));
  const Mask square = infer::read_tissue_mask(dir.file("square.geojson"), 64, 48, 4.0);
  EXPECT_EQ(square.at(5, 5), 255);
  EXPECT_EQ(square.at(5, 12), 0);
  EXPECT_EQ(square.at(12, 5), 0);
  // A triangle reaching to y = 4e10 (and an empty ring beside it): over the 64 x 48 mask it is the
  // strip x <= 10 on every row.
  write_file_atomic(dir.file("far.geojson"),
                    polygons("[[[[0, 0], [40, 0], [0, 40000000000], [0, 0]]], [[]]]"));
  const Mask far = infer::read_tissue_mask(dir.file("far.geojson"), 64, 48, 4.0);
  for (int y = 0; y < 48; ++y) {
    EXPECT_EQ(far.at(y, 5), 255) << y;
    EXPECT_EQ(far.at(y, 12), 0) << y;
  }
}
