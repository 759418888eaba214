// QuPath GeoJSON: parse the written file back and check the layout QuPath reads and the exact
// coordinates of a hand-made square nucleus.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/io/geojson.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;

namespace {

Nucleus square_nucleus() {
  Nucleus n;
  n.id = 12;
  n.polygon = {{2.5f, 3.5f}, {5.5f, 3.5f}, {5.5f, 6.5f}, {2.5f, 6.5f}, {2.5f, 3.5f}};
  n.area = 16;
  n.centroid_x = 4;
  n.centroid_y = 5;
  n.bbox = {2, 3, 4, 4};
  n.class_id = 2;
  n.class_name = "immune";
  n.score = 0.75f;
  return n;
}

}  // namespace

TEST(GeoJson, RoundTripOfASquareNucleus) {
  test::TempDir dir;
  Nucleus classified = square_nucleus();
  Nucleus plain = square_nucleus();
  plain.id = 13;
  plain.class_id = 0;
  plain.class_name = "";
  write_qupath_geojson(dir.file("out/a.geojson"), {classified, plain});

  auto doc = nlohmann::json::parse(read_file(dir.file("out/a.geojson")));
  EXPECT_EQ(doc["type"], "FeatureCollection");
  ASSERT_EQ(doc["features"].size(), 2u);
  const auto& f = doc["features"][0];
  EXPECT_EQ(f["type"], "Feature");
  EXPECT_EQ(f["geometry"]["type"], "Polygon");
  const auto& rings = f["geometry"]["coordinates"];
  ASSERT_EQ(rings.size(), 1u);  // outer ring only
  const double expected[5][2] = {{2.5, 3.5}, {5.5, 3.5}, {5.5, 6.5}, {2.5, 6.5}, {2.5, 3.5}};
  ASSERT_EQ(rings[0].size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(rings[0][i][0].get<double>(), expected[i][0]);
    EXPECT_DOUBLE_EQ(rings[0][i][1].get<double>(), expected[i][1]);
  }
  const auto& props = f["properties"];
  EXPECT_EQ(props["objectType"], "detection");
  EXPECT_EQ(props["classification"]["name"], "immune");
  auto c = class_colour(2);
  EXPECT_EQ(props["classification"]["color"], nlohmann::json({c[0], c[1], c[2]}));
  EXPECT_EQ(props["measurements"]["id"], 12);
  EXPECT_EQ(props["measurements"]["area"], 16);
  EXPECT_DOUBLE_EQ(props["measurements"]["score"].get<double>(), 0.75);

  // Unclassified nuclei carry no classification (QuPath shows them as unclassified).
  const auto& p2 = doc["features"][1]["properties"];
  EXPECT_FALSE(p2.contains("classification"));
  EXPECT_EQ(p2["measurements"]["id"], 13);
}

TEST(GeoJson, EmptyListIsAnEmptyCollectionAndPolygonlessNucleiAreSkipped) {
  auto doc = nlohmann::json::parse(qupath_geojson({}));
  EXPECT_EQ(doc["type"], "FeatureCollection");
  EXPECT_TRUE(doc["features"].is_array());
  EXPECT_TRUE(doc["features"].empty());
  Nucleus no_polygon;
  no_polygon.id = 1;
  EXPECT_TRUE(nlohmann::json::parse(qupath_geojson({no_polygon}))["features"].empty());
}

TEST(GeoJson, ClassColoursAreDistinctAndUnclassifiedIsGreen) {
  EXPECT_EQ(class_colour(0), (std::array<uint8_t, 3>{0, 200, 0}));
  for (int a = 1; a <= 10; ++a)
    for (int b = a + 1; b <= 10; ++b) EXPECT_NE(class_colour(a), class_colour(b)) << a << " " << b;
  EXPECT_EQ(class_colour(11), class_colour(1));  // the palette cycles
}

TEST(GeoJson, UnwritablePathThrowsIoError) {
  test::TempDir dir;
  write_file_atomic(dir.file("file"), "x");
  // A regular file where a folder should be.
  EXPECT_THROW(write_qupath_geojson(dir.file("file/a.geojson"), {square_nucleus()}), IoError);
}
