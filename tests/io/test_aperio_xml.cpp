// Aperio XML parsing and polygon rasterisation: hand-made files with known pixel sets, overlap
// rules, malformed input, and the MoNuSeg test annotations from ../shared.
#include <gtest/gtest.h>

#include <set>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/aperio_xml.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;

namespace {

std::string region_xml(int id, const std::vector<std::pair<double, double>>& pts) {
  std::string s = "<Region Id=\"" + std::to_string(id) + "\"><Attributes/><Vertices>";
  for (auto& p : pts)
    s += "<Vertex X=\"" + std::to_string(p.first) + "\" Y=\"" + std::to_string(p.second) + "\"/>";
  return s + "</Vertices></Region>";
}

std::string annotation_xml(const std::string& regions) {
  return "<Annotations MicronsPerPixel=\"0.25\"><Annotation Id=\"1\"><Regions>"
         "<RegionAttributeHeaders/>" + regions + "</Regions></Annotation></Annotations>";
}

std::set<std::pair<int, int>> pixels_of(const LabelMap& m, int32_t id) {
  std::set<std::pair<int, int>> s;
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x)
      if (m.at(y, x) == id) s.insert({x, y});
  return s;
}

}  // namespace

TEST(AperioXml, ParsesRegionsAndVerticesInOrder) {
  auto regions = parse_aperio_xml(
      annotation_xml(region_xml(7, {{1.5, 2}, {3, 4}, {5, 6}}) + region_xml(9, {{0, 0}, {1, 0}, {1, 1}})),
      "mem.xml");
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].id, 7);
  ASSERT_EQ(regions[0].vertices.size(), 3u);
  EXPECT_DOUBLE_EQ(regions[0].vertices[0].x, 1.5);
  EXPECT_DOUBLE_EQ(regions[0].vertices[2].y, 6);
  EXPECT_EQ(regions[1].id, 9);
}

TEST(AperioXml, SquareRasterisesToExactPixelSet) {
  // Square with corners (2,3) and (6,5): columns 2..5, rows 3..4 (half-open edges).
  test::TempDir dir;
  write_file_atomic(dir.file("sq.xml"), annotation_xml(region_xml(1, {{2, 3}, {6, 3}, {6, 5}, {2, 5}})));
  auto regions = read_aperio_xml(dir.file("sq.xml"));
  LabelMap m = rasterize_regions(regions, 10, 10);
  std::set<std::pair<int, int>> expected;
  for (int y = 3; y <= 4; ++y)
    for (int x = 2; x <= 5; ++x) expected.insert({x, y});
  EXPECT_EQ(pixels_of(m, 1), expected);
  EXPECT_EQ(pixels_of(m, 0).size(), 100u - 8u);
}

TEST(AperioXml, TriangleUsesPixelCentres) {
  // Right triangle (0,0),(4,0),(0,4): centre (x,y) inside iff x >= 0, y >= 0, x + y < 4 on the
  // left/top-inclusive rule; the hypotenuse is a right edge, so centres on it (x + y == 4) are out.
  LabelMap m = rasterize_polygons({{{0, 0}, {4, 0}, {0, 4}}}, 6, 6);
  std::set<std::pair<int, int>> expected;
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x)
      if (x + y < 4) expected.insert({x, y});
  EXPECT_EQ(pixels_of(m, 1), expected);
}

TEST(AperioXml, AdjacentPolygonsShareNoPixelAndLaterOverwrites) {
  // Two squares sharing the edge x = 3: each keeps 3 x 3 pixels.
  LabelMap a = rasterize_polygons({{{0, 0}, {3, 0}, {3, 3}, {0, 3}}, {{3, 0}, {6, 0}, {6, 3}, {3, 3}}}, 4, 8);
  EXPECT_EQ(pixels_of(a, 1).size(), 9u);
  EXPECT_EQ(pixels_of(a, 2).size(), 9u);
  // Overlap: the second (later) square overwrites the first on columns 2..3.
  LabelMap b = rasterize_polygons({{{0, 0}, {4, 0}, {4, 2}, {0, 2}}, {{2, 0}, {6, 0}, {6, 2}, {2, 2}}}, 2, 8);
  EXPECT_EQ(b.at(0, 1), 1);
  EXPECT_EQ(b.at(0, 2), 2);
  EXPECT_EQ(b.at(1, 3), 2);
  EXPECT_EQ(pixels_of(b, 1).size(), 4u);
}

TEST(AperioXml, FullyCoveredAndDegenerateRegionsAreDroppedAndIdsRenumbered) {
  std::vector<std::vector<PolygonPoint>> polys = {
      {{1, 1}, {2, 1}, {2, 2}, {1, 2}},           // 1 px, covered by the next one
      {{0, 0}, {4, 0}, {4, 4}, {0, 4}},           // 16 px
      {{5, 5}, {6, 6}},                           // two vertices: no area
      {{20, 20}, {30, 20}, {30, 30}, {20, 30}},   // outside the 8 x 8 raster
      {{5, 0}, {7, 0}, {7, 2}, {5, 2}}};          // 4 px
  LabelMap m = rasterize_polygons(polys, 8, 8);
  EXPECT_EQ(pixels_of(m, 1).size(), 16u);
  EXPECT_EQ(pixels_of(m, 2).size(), 4u);
  EXPECT_EQ(m.at(0, 5), 2);
  int32_t maxid = 0;
  for (int32_t v : m.data) maxid = std::max(maxid, v);
  EXPECT_EQ(maxid, 2);
}

TEST(AperioXml, ClipsPolygonsCrossingTheBorder) {
  LabelMap m = rasterize_polygons({{{-2, -2}, {2, -2}, {2, 2}, {-2, 2}}}, 5, 5);
  std::set<std::pair<int, int>> expected = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
  EXPECT_EQ(pixels_of(m, 1), expected);
}

TEST(AperioXml, BadInputNamesTheFile) {
  test::TempDir dir;
  auto expect_error = [&](const std::string& file, const std::string& content, const std::string& cause) {
    write_file_atomic(dir.file(file), content);
    try {
      read_aperio_xml(dir.file(file));
      FAIL() << "no error for " << file;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
    }
  };
  expect_error("broken.xml", "<Annotations><Annotation>", "not well-formed");
  expect_error("other.xml", "<svg></svg>", "no <Annotations>");
  expect_error("novalue.xml", annotation_xml("<Region Id=\"4\"><Vertices><Vertex X=\"1\"/></Vertices></Region>"),
               "Region 4");
  EXPECT_THROW(read_aperio_xml(dir.file("absent.xml")), IoError);
}

TEST(AperioXml, MonusegTestAnnotationsRasterise) {
  NUCLEISAM_REQUIRE_SHARED("data/monuseg/test/annotations_xml");
  const std::string stem = "TCGA-2Z-A9J9-01A-01-TS1";
  auto regions = read_aperio_xml(test::shared_path("data/monuseg/test/annotations_xml/" + stem + ".xml"));
  ASSERT_GT(regions.size(), 100u);
  LabelMap m = rasterize_regions(regions, 1000, 1000);
  std::vector<int64_t> area(regions.size() + 1, 0);
  for (int32_t v : m.data) {
    ASSERT_GE(v, 0);
    ASSERT_LE(v, static_cast<int32_t>(regions.size()));
    ++area[v];
  }
  // Every id up to the maximum is used (renumbered), and at most a few regions vanish under
  // overlapping neighbours, as in the published label maps.
  int32_t maxid = 0;
  for (int32_t v : m.data) maxid = std::max(maxid, v);
  for (int32_t i = 1; i <= maxid; ++i) EXPECT_GT(area[i], 0) << "id " << i;
  EXPECT_GE(maxid, static_cast<int32_t>(regions.size()) - 5);
  // Nuclei cover a plausible fraction of the tile (not empty, not everything).
  double fg = 1.0 - static_cast<double>(area[0]) / m.pixels();
  EXPECT_GT(fg, 0.05);
  EXPECT_LT(fg, 0.6);
}
