// Whole slides: OpenSlide reading of test slides written here (Aperio-style tiled TIFFs), the
// resampling plan, tissue, exactly-once stitching whatever the tile size, the GeoJSON rules,
// byte-identical resume, clear failures for bad files, and cohort shards.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/slide_run.h"
#include "nucleisam/infer/slide_stitch.h"
#include "nucleisam/io/slide.h"
#include "nucleisam/io/tiled_tiff.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::infer;
namespace fs = std::filesystem;

namespace {

struct Disc {
  double cx, cy, r;
  uint8_t red = 60;  // dark shades differ only between touching discs that are two nuclei
};

// A 900 x 700 slide at 0.5 um/px: pink tissue left of x = 600, glass right of it, dark discs
// ("nuclei") in the tissue, two of them centred exactly on corners of owned tile regions (224, 224)
// for 256/64 tiles and (176, 176) for 200/48 tiles.
const int kW = 900, kH = 700;
std::vector<Disc> test_discs() {
  std::vector<Disc> d = {{224, 224, 7}, {176, 176, 6}};
  for (int y = 30; y < kH - 20; y += 47)
    for (int x = 25; x < 580; x += 53) {
      bool clash = false;
      for (const Disc& o : d) clash = clash || std::hypot(o.cx - x, o.cy - y) < 25;
      if (!clash) d.push_back({x + 0.3 * (y % 3), y + 0.25 * (x % 4), 4.0 + (x + y) % 5});
    }
  return d;
}

std::array<uint8_t, 3> slide_pixel(int x, int y, const std::vector<Disc>& discs) {
  for (const Disc& d : discs)
    if (std::pow(x + 0.5 - d.cx, 2) + std::pow(y + 0.5 - d.cy, 2) <= d.r * d.r) return {d.red, 30, 120};
  if (x < 600) return {230, 170, 200};
  return {245, 245, 245};
}

// Writes a test slide with these discs; mpp 0 writes a generic tiled TIFF with no resolution (or
// with `description` as its ImageDescription).
void write_disc_slide(const std::string& path, double mpp, const std::vector<Disc>& discs,
                      const std::string& description = "") {
  io::TiledTiffOptions o;
  o.tile_size = 128;
  o.downsamples = {1, 4};
  o.description = mpp > 0 ? io::aperio_description(kW, kH, 128, mpp) : description;
  io::write_tiled_tiff(path, kW, kH, o, [&](int ds, int64_t x0, int64_t y0, int w, int h) {
    Image tile(h, w, 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        auto p = slide_pixel(static_cast<int>((x0 + x) * ds), static_cast<int>((y0 + y) * ds), discs);
        for (int c = 0; c < 3; ++c) tile.at(y, x, c) = p[c];
      }
    return tile;
  });
}

void write_test_slide(const std::string& path, double mpp) { write_disc_slide(path, mpp, test_discs()); }

// Nuclei wider than every tile overlap used with them (diameter 70-90 px against overlaps of 24
// and 32): one on the 4-tile corner and two on seams of 256/32 tiles (owned regions split at 240,
// 464, ... along both axes), one on a 4-tile corner of 200/24 tiles (split at 188, 364), two
// touching discs of different shades stacked across the vertical seam at x = 240 (two nuclei,
// both cut by the seam), and the small discs of test_discs() where they do not clash.
std::vector<Disc> big_discs() {
  std::vector<Disc> d = {{240.5, 240.5, 40},  {464.3, 120.2, 36},  {120.7, 464.4, 38},
                         {364.2, 364.6, 45},  {240.2, 560.5, 35, 60}, {240.2, 630.5, 35, 80}};
  for (const Disc& small : test_discs()) {
    bool clash = small.cx + small.r >= 600;
    for (size_t k = 0; k < 6; ++k) clash = clash || std::hypot(d[k].cx - small.cx, d[k].cy - small.cy) < d[k].r + small.r + 6;
    if (!clash) d.push_back(small);
  }
  return d;
}

// The 4-connected components of dark pixels (red < 100): of one shade each (same_shade), or of
// any dark shades. Returns how many.
int32_t dark_components(const Image& image, bool same_shade, LabelMap& labels) {
  labels = LabelMap(image.height, image.width);
  int32_t count = 0;
  std::vector<std::pair<int, int>> stack;
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) {
      const uint8_t shade = image.at(y, x, 0);
      if (shade >= 100 || labels.at(y, x)) continue;
      stack = {{x, y}};
      labels.at(y, x) = ++count;
      while (!stack.empty()) {
        auto [px, py] = stack.back();
        stack.pop_back();
        const int nx[4] = {px + 1, px - 1, px, px}, ny[4] = {py, py, py + 1, py - 1};
        for (int k = 0; k < 4; ++k) {
          if (nx[k] < 0 || ny[k] < 0 || nx[k] >= image.width || ny[k] >= image.height ||
              labels.at(ny[k], nx[k]))
            continue;
          const uint8_t other = image.at(ny[k], nx[k], 0);
          if (same_shade ? other != shade : other >= 100) continue;
          labels.at(ny[k], nx[k]) = count;
          stack.push_back({nx[k], ny[k]});
        }
      }
    }
  return count;
}

// Dark pixels (red < 100), 4-connected components of one shade: a local method, so a nucleus whole
// in two windows is the same in both, and touching discs of two shades are two nuclei.
class DarkSpotSegmenter : public Segmenter {
 public:
  std::string name() const override { return "dark-spots"; }
  double microns_per_pixel() const override { return 0.5; }
  Segmentation segment(const Image& image, const std::string&) override {
    Segmentation s;
    dark_components(image, true, s.instances);
    ++calls;
    return s;
  }
  int calls = 0;
};

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

// CSV rows without the id (ids follow tile order), sorted: the nuclei as a set.
std::vector<std::string> nuclei_without_ids(const std::string& csv) {
  auto rows = lines_of(csv);
  std::vector<std::string> out;
  for (size_t i = 1; i < rows.size(); ++i) out.push_back(rows[i].substr(rows[i].find(',')));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> polygons_sorted(const std::string& geojson) {
  auto doc = nlohmann::json::parse(read_file(geojson));
  std::vector<std::string> out;
  for (const auto& f : doc["features"]) out.push_back(f["geometry"].dump());
  std::sort(out.begin(), out.end());
  return out;
}

// A 40x (0.25 um/px) method that scores what it finds: every 4-connected run of dark pixels (red
// below 100) is a nucleus of score 0.9, so the discs of a slide read as nuclei at any scale.
class ScoredDarkSegmenter : public Segmenter {
 public:
  std::string name() const override { return "scored-dark"; }
  double microns_per_pixel() const override { return 0.25; }
  Segmentation segment(const Image& image, const std::string&) override {
    Segmentation s;
    const int32_t count = dark_components(image, false, s.instances);
    s.classes.assign(static_cast<size_t>(count), 0);
    s.scores.assign(static_cast<size_t>(count), 0.9f);
    return s;
  }
};

SlideRunOptions options_in(const std::string& dir, int tile, int overlap) {
  SlideRunOptions o;
  o.out_dir = dir;
  o.tile_size = tile;
  o.tile_overlap = overlap;
  return o;
}

}  // namespace

TEST(SlideResampling, LevelAndFactorFromTheResolutions) {
  const std::vector<io::SlideLevel> levels = {{40000, 30000, 1}, {10000, 7500, 4}, {2500, 1875, 16}};
  SlideResampling r = plan_slide_resampling(levels, 0.25, 0.5);  // 40x slide, 20x model
  EXPECT_EQ(r.level, 0);
  EXPECT_DOUBLE_EQ(r.factor, 2);
  EXPECT_TRUE(r.integer_factor);
  EXPECT_EQ(r.width, 20000);
  EXPECT_DOUBLE_EQ(r.mpp, 0.5);
  r = plan_slide_resampling(levels, 0.2527, 0.25);  // scanner's "0.25": read as is
  EXPECT_EQ(r.level, 0);
  EXPECT_DOUBLE_EQ(r.factor, 1);
  r = plan_slide_resampling(levels, 0.125, 0.5);  // 80x slide, 20x model: level 1 as is
  EXPECT_EQ(r.level, 1);
  EXPECT_DOUBLE_EQ(r.factor, 1);
  EXPECT_EQ(r.width, 10000);
  r = plan_slide_resampling(levels, 0.25, 0.6);  // 2.4x: block means by 2, then bilinear
  EXPECT_EQ(r.level, 0);
  EXPECT_NEAR(r.factor, 2.4, 1e-12);
  EXPECT_FALSE(r.integer_factor);
  r = plan_slide_resampling(levels, 0.5, 0.25);  // 20x slide, 40x model: upsampled
  EXPECT_EQ(r.level, 0);
  EXPECT_DOUBLE_EQ(r.factor, 0.5);
  EXPECT_EQ(r.width, 80000);
  r = plan_slide_resampling(levels, 0.25, 0);  // method without a resolution: level 0
  EXPECT_DOUBLE_EQ(r.downsample, 1);
  EXPECT_THROW(plan_slide_resampling(levels, 0, 0.5), OptionError);
}

TEST(Slide, ReadsTheTestSlideWithItsResolution) {
  test::TempDir dir;
  const std::string path = dir.file("s.svs");
  write_test_slide(path, 0.5);
  ASSERT_TRUE(io::Slide::is_slide(path));
  io::Slide slide(path);
  EXPECT_EQ(slide.vendor(), "aperio");
  EXPECT_EQ(slide.width(), kW);
  EXPECT_EQ(slide.height(), kH);
  ASSERT_EQ(slide.levels().size(), 2u);
  EXPECT_EQ(slide.levels()[1].width, kW / 4);
  EXPECT_DOUBLE_EQ(slide.mpp_x(), 0.5);
  const auto discs = test_discs();
  Image region = slide.read_region(0, 220, 215, 12, 20);
  for (int y = 0; y < region.height; ++y)
    for (int x = 0; x < region.width; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(region.at(y, x, c), slide_pixel(220 + x, 215 + y, discs)[c]);
  // Outside the slide: white.
  Image outside = slide.read_region(0, kW - 2, 0, 4, 1);
  EXPECT_EQ(outside.at(0, 3, 0), 255);
}

TEST(Slide, BadFilesFailClearly) {
  test::TempDir dir;
  const std::string good = dir.file("good.svs");
  write_test_slide(good, 0.5);
  // Not a slide: a PNG.
  io::write_image(dir.file("tile.png"), Image(8, 8, 3, 200));
  EXPECT_FALSE(io::Slide::is_slide(dir.file("tile.png")));
  try {
    io::Slide s(dir.file("tile.png"));
    FAIL() << "opened a PNG as a slide";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("tile.png: not a whole-slide image"), std::string::npos) << e.what();
  }
  // Corrupt: random bytes.
  write_file_atomic(dir.file("junk.svs"), std::string(5000, '\x17'));
  EXPECT_THROW(io::Slide(dir.file("junk.svs")), IoError);
  // Truncated: the first 40% of a real slide. It may open (the directory is at the start) but
  // reading the missing tiles must fail with the file named.
  const std::string bytes = read_file(good);
  write_file_atomic(dir.file("cut.svs"), bytes.substr(0, bytes.size() * 2 / 5));
  DarkSpotSegmenter seg;
  try {
    run_slide(dir.file("cut.svs"), seg, options_in(dir.file("out_cut"), 256, 64));
    FAIL() << "a truncated slide was segmented";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir.file("cut.svs") + ": ", 0), 0u) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("out_cut/cut.geojson")));
  EXPECT_THROW(io::Slide(dir.file("missing.svs")), IoError);
}

TEST(SlideRun, SlideWithoutResolutionNeedsMpp) {
  test::TempDir dir;
  const std::string path = dir.file("plain.tif");
  write_test_slide(path, 0);
  ASSERT_TRUE(io::Slide::is_slide(path));  // a tiled TIFF is a (generic) slide
  DarkSpotSegmenter seg;
  try {
    run_slide(path, seg, options_in(dir.file("out"), 256, 64));
    FAIL() << "segmented a slide without a resolution";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("does not record its resolution"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--mpp"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir.file("out/plain.geojson")));
  SlideRunOptions o = options_in(dir.file("out"), 256, 64);
  o.mpp = 0.5;
  SlideReport r = run_slide(path, seg, o);
  EXPECT_EQ(r.nuclei, static_cast<int64_t>(test_discs().size()));

  // A generic tiled TIFF whose description is OME-XML (a QuPath / Bio-Formats export): OpenSlide
  // knows no resolution, the file's PhysicalSize gives it.
  const std::string ome = dir.file("ome.tif");
  write_disc_slide(ome, 0, test_discs(),
                   R"(<?xml version="1.0"?><OME><Image ID="Image:0"><Pixels PhysicalSizeX="0.5" )"
                   R"(PhysicalSizeXUnit="&#181;m" PhysicalSizeY="0.5" PhysicalSizeYUnit="um" SizeX="1" /></Image></OME>)");
  r = run_slide(ome, seg, options_in(dir.file("out_ome"), 256, 64));
  EXPECT_DOUBLE_EQ(r.resampling.slide_mpp, 0.5);
  EXPECT_EQ(r.nuclei, static_cast<int64_t>(test_discs().size()));
}

// A slide that records no resolution is judged from the nuclei of its tissue regions: the test
// slide's discs (8-16 px across) are 2-4 um nuclei at the method's 0.25 um/px, too small, and 4-8 um
// at 0.5 um/px, where the method scores them as well: a 20x slide. It is then segmented as if
// --mpp 0.5 had been given. --unknown-mpp model takes the method's resolution instead; a method
// whose nuclei have no scores cannot judge, and the slide is refused.
TEST(SlideRun, SlideWithoutResolutionIsJudgedFromTheNucleiOfItsTissue) {
  test::TempDir dir;
  const std::string path = dir.file("plain.tif");
  write_test_slide(path, 0);
  ScoredDarkSegmenter seg;
  SlideRunOptions o = options_in(dir.file("judged"), 256, 64);
  o.stains.mode = StainNormalization::Mode::off;
  const SlideReport judged = run_slide(path, seg, o);
  EXPECT_DOUBLE_EQ(judged.resampling.slide_mpp, 0.5);
  const auto summary = nlohmann::json::parse(read_file(dir.file("judged/plain_summary.json")));
  EXPECT_EQ(summary["mpp"].get<double>(), 0.5);
  EXPECT_EQ(summary["mpp_source"].get<std::string>(), "nuclei");
  o.out_dir = dir.file("given");
  o.mpp = 0.5;
  const SlideReport given = run_slide(path, seg, o);
  EXPECT_EQ(judged.nuclei, given.nuclei);
  EXPECT_GT(judged.nuclei, 100);
  EXPECT_EQ(read_file(dir.file("judged/plain.geojson")), read_file(dir.file("given/plain.geojson")));

  o.out_dir = dir.file("model");
  o.mpp = 0;
  o.estimate_unknown_mpp = false;
  EXPECT_DOUBLE_EQ(run_slide(path, seg, o).resampling.slide_mpp, 0.25);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir.file("model/plain_summary.json")))["mpp_source"], "model");

  DarkSpotSegmenter unscored;
  o.out_dir = dir.file("unscored");
  o.estimate_unknown_mpp = true;
  try {
    run_slide(path, unscored, o);
    FAIL() << "judged a slide from nuclei without scores";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("could not tell it"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no scores"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("give it with --mpp"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("unscored/plain.geojson")));
}

// Every disc exactly once and identical (centroid, area, perimeter, polygon) with two tile
// layouts; the discs centred on owned-region corners included.
TEST(SlideRun, SameNucleiWithTwoTileSizesEachOnce) {
  test::TempDir dir;
  const std::string path = dir.file("s.svs");
  write_test_slide(path, 0.5);
  DarkSpotSegmenter a, b;
  SlideReport ra = run_slide(path, a, options_in(dir.file("a"), 256, 64));
  SlideReport rb = run_slide(path, b, options_in(dir.file("b"), 200, 48));
  const auto discs = test_discs();
  EXPECT_EQ(ra.nuclei, static_cast<int64_t>(discs.size()));
  EXPECT_EQ(rb.nuclei, static_cast<int64_t>(discs.size()));
  EXPECT_EQ(ra.cut_nuclei, 0);
  EXPECT_GT(ra.tiles, 1);
  const auto na = nuclei_without_ids(dir.file("a/s_nuclei.csv"));
  EXPECT_EQ(na, nuclei_without_ids(dir.file("b/s_nuclei.csv")));
  EXPECT_EQ(polygons_sorted(dir.file("a/s.geojson")), polygons_sorted(dir.file("b/s.geojson")));
  // Each disc's centroid appears once (level-0 px; 0.5 um/px slide and segmenter: no resampling).
  auto rows = lines_of(dir.file("a/s_nuclei.csv"));
  for (const Disc& d : discs) {
    int found = 0;
    for (size_t i = 1; i < rows.size(); ++i) {
      std::vector<std::string> f;
      std::stringstream ss(rows[i]);
      std::string x;
      while (std::getline(ss, x, ',')) f.push_back(x);
      if (std::abs(std::stod(f[3]) - d.cx) < 0.6 && std::abs(std::stod(f[4]) - d.cy) < 0.6) ++found;
    }
    EXPECT_EQ(found, 1) << "disc at " << d.cx << "," << d.cy;
  }
  // Area in um^2: pixels x 0.25. The corner disc of radius 7 has 156 pixels... computed here.
  int pixels = 0;
  for (int y = 210; y < 240; ++y)
    for (int x = 210; x < 240; ++x) pixels += std::pow(x + 0.5 - 224, 2) + std::pow(y + 0.5 - 224, 2) <= 49;
  bool corner_area = false;
  for (const auto& r : na) corner_area = corner_area || r.find(",224.00,224.00,112.00,112.00," +
                                                               std::to_string(pixels / 4) + ".") != std::string::npos;
  EXPECT_TRUE(corner_area) << "no row for the corner disc with area " << pixels * 0.25;
}

// Nuclei wider than the overlap, on seams and on 4-tile corners, come out once and whole: the same
// rows (centroid, area, perimeter) and polygons as one window over the whole slide, with two tile
// layouts; two touching nuclei cut by the same seam stay two.
TEST(SlideRun, NucleiWiderThanTheOverlapAreStitchedWhole) {
  test::TempDir dir;
  const std::string path = dir.file("big.svs");
  const auto discs = big_discs();
  write_disc_slide(path, 0.5, discs);
  DarkSpotSegmenter whole, a, b;
  SlideReport rw = run_slide(path, whole, options_in(dir.file("whole"), 1024, 32));
  ASSERT_EQ(rw.tiles, 1);
  ASSERT_EQ(rw.nuclei, static_cast<int64_t>(discs.size()));
  SlideReport ra = run_slide(path, a, options_in(dir.file("a"), 256, 32));
  SlideReport rb = run_slide(path, b, options_in(dir.file("b"), 200, 24));
  EXPECT_EQ(ra.nuclei, rw.nuclei);
  EXPECT_EQ(rb.nuclei, rw.nuclei);
  // The four discs on 256/32 seams and corners, the touching pair: all cut by that layout's windows.
  EXPECT_GE(ra.merged_nuclei, 5);
  EXPECT_GE(rb.merged_nuclei, 1);
  EXPECT_EQ(ra.cut_nuclei, 0);
  EXPECT_EQ(rb.cut_nuclei, 0);
  const auto nw = nuclei_without_ids(dir.file("whole/big_nuclei.csv"));
  EXPECT_EQ(nuclei_without_ids(dir.file("a/big_nuclei.csv")), nw);
  EXPECT_EQ(nuclei_without_ids(dir.file("b/big_nuclei.csv")), nw);
  EXPECT_EQ(polygons_sorted(dir.file("a/big.geojson")), polygons_sorted(dir.file("whole/big.geojson")));
  EXPECT_EQ(polygons_sorted(dir.file("b/big.geojson")), polygons_sorted(dir.file("whole/big.geojson")));
  // Known answer for the 4-tile corner disc: its pixel count, in um^2 (0.25 per pixel), once.
  int pixels = 0;
  for (int y = 190; y < 292; ++y)
    for (int x = 190; x < 292; ++x) pixels += std::pow(x + 0.5 - 240.5, 2) + std::pow(y + 0.5 - 240.5, 2) <= 1600;
  char area[32];
  std::snprintf(area, sizeof area, ",%.2f,", pixels * 0.25);
  int found = 0;
  for (const auto& row : nuclei_without_ids(dir.file("a/big_nuclei.csv")))
    found += row.find(",240.50,240.50,120.25,120.25" + std::string(area)) != std::string::npos;
  EXPECT_EQ(found, 1) << "the corner disc (" << pixels << " px) is not in the output exactly once";
  // The summary reports the stitching.
  auto summary = nlohmann::json::parse(read_file(dir.file("a/big_summary.json")));
  EXPECT_EQ(summary["merged_nuclei"], ra.merged_nuclei);
  EXPECT_EQ(summary["cut_nuclei"], 0);
}

// Interrupted and resumed on the slide with nuclei across seams: the pending pieces are rebuilt
// by segmenting the tiles that still held them again, and the outputs are the same bytes.
TEST(SlideRun, ResumeWithPendingSeamsIsByteIdentical) {
  test::TempDir dir;
  const std::string path = dir.file("big.svs");
  write_disc_slide(path, 0.5, big_discs());
  DarkSpotSegmenter full_seg;
  SlideRunOptions full_options = options_in(dir.file("full"), 200, 24);
  full_options.labels = true;
  SlideReport full = run_slide(path, full_seg, full_options);
  ASSERT_GT(full.tissue_tiles, 8);
  for (int first_stop : {1, 4, 6}) {
    const std::string out = dir.file("resumed" + std::to_string(first_stop));
    SlideRunOptions o = options_in(out, 200, 24);
    o.labels = true;
    o.stop_after_tiles = first_stop;
    DarkSpotSegmenter first;
    EXPECT_THROW(run_slide(path, first, o), IoError);
    o.stop_after_tiles = 2;
    DarkSpotSegmenter second;
    EXPECT_THROW(run_slide(path, second, o), IoError);
    o.stop_after_tiles = -1;
    DarkSpotSegmenter third;
    SlideReport r = run_slide(path, third, o);
    EXPECT_EQ(r.resumed_tiles, first_stop + 2);
    EXPECT_GT(r.replayed_tiles, 0);  // a row of 200-px tiles still has open seams below it
    EXPECT_EQ(third.calls, r.tissue_tiles - r.resumed_tiles + r.replayed_tiles);
    EXPECT_EQ(r.nuclei, full.nuclei);
    EXPECT_EQ(r.merged_nuclei, full.merged_nuclei);
    EXPECT_EQ(read_file(out + "/big.geojson"), read_file(dir.file("full/big.geojson"))) << first_stop;
    EXPECT_EQ(read_file(out + "/big_nuclei.csv"), read_file(dir.file("full/big_nuclei.csv"))) << first_stop;
    EXPECT_EQ(read_file(out + "/big_thumbnail.png"), read_file(dir.file("full/big_thumbnail.png")));
    EXPECT_EQ(read_file(out + "/big_labels.tif"), read_file(dir.file("full/big_labels.tif"))) << first_stop;
  }
}

// The label pyramid (--formats labels): every written nucleus has its id on exactly its area's
// pixels, the instances are the same as one window over the slide (ids map one to one), and the
// second level samples the first every 4 pixels.
TEST(SlideRun, LabelPyramidMatchesTheNucleiAndOneWindow) {
  test::TempDir dir;
  const std::string path = dir.file("big.svs");
  write_disc_slide(path, 0.5, big_discs());
  DarkSpotSegmenter whole, tiled;
  SlideRunOptions ow = options_in(dir.file("whole"), 1024, 32), ot = options_in(dir.file("tiled"), 200, 24);
  ow.labels = ot.labels = true;
  SlideReport rw = run_slide(path, whole, ow);
  SlideReport rt = run_slide(path, tiled, ot);
  ASSERT_EQ(rt.nuclei, rw.nuclei);
  const LabelMap lw = io::read_tiled_label_tiff(dir.file("whole/big_labels.tif"), 0);
  const LabelMap lt = io::read_tiled_label_tiff(dir.file("tiled/big_labels.tif"), 0);
  ASSERT_EQ(lt.width, kW);
  ASSERT_EQ(lt.height, kH);
  std::map<int32_t, int64_t> pixels;
  for (int32_t v : lt.data)
    if (v) ++pixels[v];
  const auto rows = lines_of(dir.file("tiled/big_nuclei.csv"));
  ASSERT_EQ(pixels.size() + 1, rows.size());
  for (size_t i = 1; i < rows.size(); ++i) {
    std::vector<std::string> f;
    std::stringstream ss(rows[i]);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    const int32_t id = std::stoi(f[0]);
    ASSERT_TRUE(pixels.count(id)) << "id " << id << " is not in the label TIFF";
    char area[32];
    std::snprintf(area, sizeof area, "%.2f", pixels[id] * 0.25);
    EXPECT_EQ(f[7], area) << "id " << id;
  }
  std::map<int32_t, int32_t> t2w, w2t;
  for (size_t k = 0; k < lt.data.size(); ++k) {
    const int32_t a = lt.data[k], b = lw.data[k];
    ASSERT_EQ(a == 0, b == 0) << "pixel " << k % kW << "," << k / kW;
    if (!a) continue;
    ASSERT_EQ(t2w.emplace(a, b).first->second, b);
    ASSERT_EQ(w2t.emplace(b, a).first->second, a);
  }
  EXPECT_EQ(static_cast<int64_t>(t2w.size()), rw.nuclei);
  const LabelMap l1 = io::read_tiled_label_tiff(dir.file("tiled/big_labels.tif"), 1);
  ASSERT_EQ(l1.width, kW / 4);
  ASSERT_EQ(l1.height, kH / 4);
  for (int y = 0; y < l1.height; ++y)
    for (int x = 0; x < l1.width; ++x) ASSERT_EQ(l1.at(y, x), lt.at(4 * y, 4 * x)) << x << "," << y;
  EXPECT_THROW(io::read_tiled_label_tiff(dir.file("tiled/big_labels.tif"), 2), IoError);
  EXPECT_FALSE(fs::exists(dir.file("tiled/.big_labels.runs.part")));
  EXPECT_FALSE(fs::exists(dir.file("tiled/.big_labels.band0")));
}

// The stitcher alone on a long grid of tiles with a nucleus cut by every seam: memory held stays
// at about one row of strips, whatever the number of tiles, and every nucleus comes out once.
TEST(SeamStitcher, HoldsOneRowOfSeamsAndWritesEachCutNucleusOnce) {
  const int cols_px = 60 * 176 + 24, rows_px = 3 * 176 + 24;
  const auto plan = plan_tiles(rows_px, cols_px, 200, 24);
  std::vector<size_t> all(plan.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  SeamStitcher st(plan, all, cols_px, rows_px);
  const size_t per_row = 60;
  ASSERT_EQ(plan.size(), per_row * 3);
  // One 30 x 30 square nucleus centred on each vertical seam x = 188 + 176 k, in the middle row
  // band; each tile sees the parts of the squares inside its window.
  auto inside_square = [&](int64_t gx, int64_t gy) {
    if (gy < 250 || gy >= 280) return 0;
    for (int k = 0; k + 1 < static_cast<int>(per_row); ++k) {
      const int64_t c = 188 + 176 * k;
      if (gx >= c - 15 && gx < c + 15) return k + 1;
    }
    return 0;
  };
  int64_t written = 0, merged = 0;
  size_t most_strips = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const TileWindow& t = plan[i];
    Segmentation seg;
    seg.instances = LabelMap(t.height, t.width);
    std::map<int, int32_t> local;
    for (int y = 0; y < t.height; ++y)
      for (int x = 0; x < t.width; ++x)
        if (int k = inside_square(t.x + x, t.y + y)) {
          auto it = local.emplace(k, static_cast<int32_t>(local.size() + 1)).first;
          seg.instances.at(y, x) = it->second;
        }
    for (const StitchedNucleus& n : st.add(static_cast<int64_t>(i), seg)) {
      ++written;
      merged += n.merged;
      EXPECT_EQ(n.nucleus.area, 900);
      EXPECT_FALSE(n.cut);
    }
    most_strips = std::max(most_strips, st.held_strips());
    EXPECT_GE(st.earliest_held() + static_cast<int64_t>(per_row) + 2, static_cast<int64_t>(i));
  }
  EXPECT_EQ(written, static_cast<int64_t>(per_row) - 1);
  EXPECT_EQ(merged, written);
  EXPECT_EQ(st.pending_pieces(), 0u);
  EXPECT_EQ(st.held_strips(), 0u);
  EXPECT_LE(most_strips, 4 * per_row + 4);  // right, below-left, below, below-right of one row
}

namespace {
// A segmentation of `tile` with the given grid rectangles (x0, y0, x1, y1) as instances 1, 2, ...
Segmentation boxes_in(const TileWindow& tile, const std::vector<std::array<int, 4>>& boxes) {
  Segmentation s;
  s.instances = LabelMap(tile.height, tile.width);
  for (size_t k = 0; k < boxes.size(); ++k)
    for (int y = boxes[k][1]; y < boxes[k][3]; ++y)
      for (int x = boxes[k][0]; x < boxes[k][2]; ++x)
        if (x >= tile.x && y >= tile.y && x < tile.x + tile.width && y < tile.y + tile.height)
          s.instances.at(y - tile.y, x - tile.x) = static_cast<int32_t>(k + 1);
  return s;
}
}  // namespace

// Two tiles that draw a seam nucleus and its touching neighbour one row apart: each nucleus is
// joined with its own piece (more than half shared), not with the neighbour (one shared row), and
// comes out as its two owned halves.
TEST(SeamStitcher, PiecesThatDisagreeSlightlyJoinButTouchingNucleiDoNot) {
  const auto plan = plan_tiles(200, 376, 200, 24);  // windows x [0, 200) and [176, 376), split at 188
  ASSERT_EQ(plan.size(), 2u);
  SeamStitcher st(plan, {0, 1}, 376, 200);
  // Tile 0: X rows 10-49, Y rows 50-59; tile 1: X rows 11-50, Y rows 51-59.
  auto first = st.add(0, boxes_in(plan[0], {{150, 10, 230, 50}, {150, 50, 230, 60}}));
  EXPECT_TRUE(first.empty());  // both cut by the seam: pending
  EXPECT_EQ(st.pending_pieces(), 2u);
  auto second = st.add(1, boxes_in(plan[1], {{150, 11, 230, 51}, {150, 51, 230, 60}}));
  ASSERT_EQ(second.size(), 2u);
  std::vector<int64_t> areas = {second[0].nucleus.area, second[1].nucleus.area};
  std::sort(areas.begin(), areas.end());
  EXPECT_EQ(areas, (std::vector<int64_t>{38 * 10 + 42 * 9, 38 * 40 + 42 * 40}));
  EXPECT_TRUE(second[0].merged && second[1].merged);
  EXPECT_EQ(st.pending_pieces(), 0u);
  EXPECT_EQ(st.held_strips(), 0u);
}

// A nucleus cut by the edge of a tile whose neighbour was not segmented (no tissue there) is
// written once, as far as its tile saw it, and reported as cut.
TEST(SeamStitcher, NucleusAtAnUnsegmentedNeighbourIsWrittenOnceAndReportedCut) {
  const auto plan = plan_tiles(200, 552, 200, 24);  // windows at x 0, 176, 352
  ASSERT_EQ(plan.size(), 3u);
  SeamStitcher st(plan, {0, 2}, 552, 200);  // the middle tile has no tissue
  auto out = st.add(0, boxes_in(plan[0], {{180, 50, 200, 80}, {20, 20, 30, 30}}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].nucleus.area, 100);  // the tile's closed nuclei come first
  EXPECT_FALSE(out[0].cut);
  EXPECT_EQ(out[1].nucleus.area, 600);
  EXPECT_TRUE(out[1].cut);
  EXPECT_FALSE(out[1].merged);
  EXPECT_TRUE(st.add(1, boxes_in(plan[2], {})).empty());
  EXPECT_EQ(st.pending_pieces(), 0u);
}

// The GeoJSON a user imports into QuPath: a FeatureCollection of detections with valid Polygon
// rings in level-0 pixels, a classification with name and colour, measurements as an object.
TEST(SlideRun, GeojsonFollowsQupathRules) {
  test::TempDir dir;
  const std::string path = dir.file("s.svs");
  write_test_slide(path, 0.25);  // 40x slide, 20x segmenter: nuclei come back in level-0 pixels
  DarkSpotSegmenter seg;
  SlideReport r = run_slide(path, seg, options_in(dir.file("out"), 160, 40));
  EXPECT_EQ(r.resampling.factor, 2);
  auto doc = nlohmann::json::parse(read_file(dir.file("out/s.geojson")));
  EXPECT_EQ(doc["type"], "FeatureCollection");
  ASSERT_EQ(static_cast<int64_t>(doc["features"].size()), r.nuclei);
  ASSERT_GT(r.nuclei, 10);
  for (const auto& f : doc["features"]) {
    ASSERT_EQ(f["type"], "Feature");
    ASSERT_EQ(f["geometry"]["type"], "Polygon");
    ASSERT_EQ(f["geometry"]["coordinates"].size(), 1u);
    std::vector<ContourPoint> ring;
    for (const auto& p : f["geometry"]["coordinates"][0]) {
      ASSERT_EQ(p.size(), 2u);
      ring.push_back({p[0].get<float>(), p[1].get<float>()});
      EXPECT_GE(ring.back().x, 0);
      EXPECT_LE(ring.back().x, kW);
      EXPECT_LE(ring.back().y, kH);
    }
    std::string why;
    EXPECT_TRUE(test::ring_is_simple(ring, &why)) << why << " in " << f["geometry"].dump();
    const auto& props = f["properties"];
    EXPECT_EQ(props["objectType"], "detection");
    ASSERT_TRUE(props["classification"].is_object());
    EXPECT_TRUE(props["classification"]["name"].is_string());
    ASSERT_TRUE(props["classification"]["color"].is_array());
    EXPECT_EQ(props["classification"]["color"].size(), 3u);
    ASSERT_TRUE(props["measurements"].is_object());
    EXPECT_GT(props["measurements"]["Area um^2"].get<double>(), 0);
    EXPECT_GT(props["measurements"]["Perimeter um"].get<double>(), 0);
    EXPECT_TRUE(props["measurements"]["Score"].is_number());
  }
  // CSV: one row per feature, centroids in level-0 pixels and microns (0.25 um per level-0 px).
  auto rows = lines_of(dir.file("out/s_nuclei.csv"));
  ASSERT_EQ(static_cast<int64_t>(rows.size()), r.nuclei + 1);
  EXPECT_EQ(rows[0], kSlideNucleusHeader);
  std::stringstream ss(rows[1]);
  std::vector<double> v;
  std::string x;
  while (std::getline(ss, x, ',')) v.push_back(x.empty() ? 0 : std::stod(x));
  EXPECT_NEAR(v[5], v[3] * 0.25, 0.01);
  EXPECT_NEAR(v[6], v[4] * 0.25, 0.01);
}

TEST(SlideRun, TissueDetectionSkipsGlassAndMeasuresTissue) {
  test::TempDir dir;
  const std::string path = dir.file("s.svs");
  write_test_slide(path, 0.5);
  DarkSpotSegmenter seg;
  SlideReport r = run_slide(path, seg, options_in(dir.file("out"), 200, 48));
  EXPECT_LT(r.tissue_tiles, r.tiles);  // the glass column is never read at full resolution
  EXPECT_EQ(seg.calls, r.tissue_tiles);
  EXPECT_NEAR(r.tissue_mm2, 600 * 700 * 0.25 / 1e6, 0.02 * 0.105);
  // Summary and thumbnail.
  auto summary = nlohmann::json::parse(read_file(dir.file("out/s_summary.json")));
  EXPECT_EQ(summary["nuclei"], r.nuclei);
  EXPECT_EQ(summary["nuclei_per_class"]["Nucleus"], r.nuclei);
  EXPECT_NEAR(summary["nuclei_per_mm2"].get<double>(), r.nuclei / r.tissue_mm2, 1e-3 * r.nuclei / r.tissue_mm2);
  Image thumb = io::read_image(dir.file("out/s_thumbnail.png"));
  EXPECT_EQ(thumb.width, kW);  // small slide: the overview is level 0
  EXPECT_EQ(thumb.at(224, 224, 1), 200);  // the corner disc drawn in class 0's green
  EXPECT_EQ(thumb.at(224, 224, 0), 0);

  // --process-all reads every tile; a GeoJSON tissue mask over the left third keeps its nuclei only.
  DarkSpotSegmenter all;
  SlideRunOptions o = options_in(dir.file("all"), 200, 48);
  o.tissue = TissueSource::all;
  SlideReport ra = run_slide(path, all, o);
  EXPECT_EQ(ra.tissue_tiles, ra.tiles);
  EXPECT_EQ(ra.nuclei, r.nuclei);
  write_file_atomic(dir.file("mask.geojson"),
                    R"({"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon",)"
                    R"("coordinates":[[[0,0],[300,0],[300,700],[0,700],[0,0]]]},"properties":{}}]})");
  DarkSpotSegmenter masked;
  o = options_in(dir.file("masked"), 200, 48);
  o.tissue = TissueSource::mask;
  o.tissue_mask = dir.file("mask.geojson");
  SlideReport rm = run_slide(path, masked, o);
  EXPECT_LT(rm.nuclei, r.nuclei);
  EXPECT_GT(rm.nuclei, 0);
  EXPECT_NEAR(rm.tissue_mm2, 300 * 700 * 0.25 / 1e6, 0.02 * 0.0525);
  for (const auto& row : nuclei_without_ids(dir.file("masked/s_nuclei.csv"))) {
    std::stringstream ss(row.substr(1));
    std::string cls, name, cx;
    std::getline(ss, cls, ',');
    std::getline(ss, name, ',');
    std::getline(ss, cx, ',');
    EXPECT_LT(std::stod(cx), 300 + 200);  // kept by tiles whose owned region meets the mask
  }
  // The same region as an image mask of another size, stretched over the slide (non-zero = tissue).
  Image mask_image(70, 90, 3, 0);
  for (int y = 0; y < 70; ++y)
    for (int x = 0; x < 30; ++x) mask_image.at(y, x, 0) = 255;
  io::write_image(dir.file("mask.png"), mask_image);
  DarkSpotSegmenter by_image;
  o = options_in(dir.file("masked_png"), 200, 48);
  o.tissue = TissueSource::mask;
  o.tissue_mask = dir.file("mask.png");
  SlideReport rp = run_slide(path, by_image, o);
  EXPECT_EQ(rp.tissue_tiles, rm.tissue_tiles);
  EXPECT_EQ(read_file(dir.file("masked_png/s_nuclei.csv")), read_file(dir.file("masked/s_nuclei.csv")));
  o.out_dir = dir.file("missing_mask");
  o.tissue_mask = dir.file("nothing.geojson");
  EXPECT_THROW(run_slide(path, masked, o), IoError);
  EXPECT_FALSE(fs::exists(dir.file("missing_mask/s.geojson")));
}

// Interrupted after two tiles (and with a torn write appended, as a kill mid-tile leaves), then
// resumed: the same bytes as an uninterrupted run.
TEST(SlideRun, ResumedRunIsByteIdentical) {
  test::TempDir dir;
  const std::string path = dir.file("s.svs");
  write_test_slide(path, 0.5);
  DarkSpotSegmenter full_seg;
  run_slide(path, full_seg, options_in(dir.file("full"), 200, 48));

  SlideRunOptions o = options_in(dir.file("resumed"), 200, 48);
  o.stop_after_tiles = 2;
  DarkSpotSegmenter first;
  EXPECT_THROW(run_slide(path, first, o), IoError);
  EXPECT_FALSE(fs::exists(dir.file("resumed/s.geojson")));
  ASSERT_TRUE(fs::exists(dir.file("resumed/.s.journal")));
  {
    std::ofstream torn(dir.file("resumed/.s.geojson.part"), std::ios::app);
    torn << ",\n{\"type\":\"Feat";
  }
  o.stop_after_tiles = 3;
  DarkSpotSegmenter second;
  EXPECT_THROW(run_slide(path, second, o), IoError);
  o.stop_after_tiles = -1;
  DarkSpotSegmenter third;
  SlideReport r = run_slide(path, third, o);
  EXPECT_EQ(r.resumed_tiles, 5);
  // Finished tiles are not segmented again, except those whose seams were still pending.
  EXPECT_LE(r.replayed_tiles, 5);
  EXPECT_EQ(third.calls, r.tissue_tiles - 5 + r.replayed_tiles);
  EXPECT_EQ(read_file(dir.file("resumed/s.geojson")), read_file(dir.file("full/s.geojson")));
  EXPECT_EQ(read_file(dir.file("resumed/s_nuclei.csv")), read_file(dir.file("full/s_nuclei.csv")));
  EXPECT_EQ(read_file(dir.file("resumed/s_thumbnail.png")), read_file(dir.file("full/s_thumbnail.png")));
  EXPECT_FALSE(fs::exists(dir.file("resumed/.s.journal")));
  // Done: a rerun skips it.
  DarkSpotSegmenter again;
  EXPECT_TRUE(run_slide(path, again, o).skipped);
  EXPECT_EQ(again.calls, 0);
}

TEST(Cohort, ShardsCoverEachSlideOnce) {
  std::vector<std::string> slides;
  for (int i = 0; i < 11; ++i) slides.push_back("s" + std::to_string(i) + ".svs");
  for (int n : {1, 3, 4, 11, 15}) {
    std::multiset<std::string> seen;
    for (int i = 0; i < n; ++i)
      for (const auto& s : shard_slides(slides, parse_shard(std::to_string(i) + "/" + std::to_string(n), {})))
        seen.insert(s);
    EXPECT_EQ(seen, std::multiset<std::string>(slides.begin(), slides.end())) << n << " shards";
  }
  auto env = [](std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  Shard s = parse_shard("auto", env({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_MIN", "1"},
                                     {"SLURM_ARRAY_TASK_COUNT", "8"}}));
  EXPECT_EQ(s.index, 4);
  EXPECT_EQ(s.count, 8);
  s = parse_shard("auto", env({{"JOB_COMPLETION_INDEX", "2"}, {"NUCLEISAM_SHARD_COUNT", "3"}}));
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 3);
  EXPECT_THROW(parse_shard("auto", env({})), OptionError);
  EXPECT_THROW(parse_shard("auto", env({{"JOB_COMPLETION_INDEX", "2"}})), OptionError);
  EXPECT_THROW(parse_shard("3/3", {}), OptionError);
  EXPECT_THROW(parse_shard("x/3", {}), OptionError);
  EXPECT_THROW(parse_shard("2", {}), OptionError);

  test::TempDir dir;
  write_file_atomic(dir.file("m.txt"), "# cohort\n a.svs\n\n/abs/b.ndpi\r\nsub/c.svs\n");
  EXPECT_EQ(read_manifest(dir.file("m.txt")),
            (std::vector<std::string>{dir.file("a.svs"), "/abs/b.ndpi", dir.file("sub/c.svs")}));
  write_file_atomic(dir.file("dup.txt"), "x/a.svs\ny/a.svs\n");
  EXPECT_THROW(read_manifest(dir.file("dup.txt")), OptionError);
  write_file_atomic(dir.file("empty.txt"), "# nothing\n");
  EXPECT_THROW(read_manifest(dir.file("empty.txt")), IoError);
}

// Glass only: no tile is read at full resolution, and the outputs are valid and empty.
TEST(SlideRun, BlankSlideGivesEmptyValidOutputs) {
  test::TempDir dir;
  io::TiledTiffOptions o;
  o.tile_size = 128;
  o.description = io::aperio_description(500, 400, 128, 0.5);
  io::write_tiled_tiff(dir.file("glass.svs"), 500, 400, o,
                       [](int, int64_t, int64_t, int w, int h) { return Image(h, w, 3, 244); });
  DarkSpotSegmenter seg;
  SlideReport r = run_slide(dir.file("glass.svs"), seg, options_in(dir.file("out"), 256, 64));
  EXPECT_EQ(r.tissue_tiles, 0);
  EXPECT_EQ(seg.calls, 0);
  EXPECT_EQ(r.nuclei, 0);
  EXPECT_EQ(r.tissue_mm2, 0);
  auto doc = nlohmann::json::parse(read_file(dir.file("out/glass.geojson")));
  EXPECT_EQ(doc["type"], "FeatureCollection");
  EXPECT_TRUE(doc["features"].empty());
  EXPECT_EQ(lines_of(dir.file("out/glass_nuclei.csv")), std::vector<std::string>{kSlideNucleusHeader});
  auto summary = nlohmann::json::parse(read_file(dir.file("out/glass_summary.json")));
  EXPECT_EQ(summary["nuclei_per_mm2"], 0);
}

namespace {

// Records every tile it is given and finds nothing.
class TileRecorder : public Segmenter {
 public:
  std::string name() const override { return "tile-recorder"; }
  double microns_per_pixel() const override { return 0.5; }
  Segmentation segment(const Image& image, const std::string&) override {
    tiles.push_back(image);
    Segmentation s;
    s.instances = LabelMap(image.height, image.width);
    return s;
  }
  std::vector<Image> tiles;
};

}  // namespace

TEST(SlideRun, StainNormalisationIsOneMapForTheWholeSlideAndResumes) {
  // Tissue drawn with three times the haematoxylin of the test drawing (nucleisam/stain.h).
  const double stains[2][3] = {{0.5706, 0.7292, 0.3776}, {0.2982, 0.8133, 0.4997}};
  const Image dark = test::stained_tissue(stains, kH, kW, 11, 3.0).image;
  test::TempDir dir;
  const std::string path = dir.file("dark.svs");
  io::TiledTiffOptions t;
  t.tile_size = 128;
  t.downsamples = {1, 4};
  t.description = io::aperio_description(kW, kH, 128, 0.5);
  io::write_tiled_tiff(path, kW, kH, t, [&](int ds, int64_t x0, int64_t y0, int w, int h) {
    Image tile(h, w, 3, 255);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          if ((y0 + y) * ds < kH && (x0 + x) * ds < kW) tile.at(y, x, c) = dark.at((y0 + y) * ds, (x0 + x) * ds, c);
    return tile;
  });
  SlideRunOptions o = options_in(dir.file("out"), 256, 32);
  o.tissue = TissueSource::all;
  o.stains.mode = StainNormalization::Mode::range;
  TileRecorder seg;
  const SlideReport r = run_slide(path, seg, o);
  EXPECT_EQ(r.stains.rfind("haematoxylin amount ", 0), 0u) << r.stains;
  ASSERT_EQ(static_cast<int64_t>(seg.tiles.size()), r.tissue_tiles);
  ASSERT_GT(seg.tiles.size(), 4u);
  // One map: a colour of the slide comes out the same in every tile, and the haematoxylin of the
  // tiles together is at the top of the range.
  std::map<std::array<uint8_t, 3>, std::array<uint8_t, 3>> mapped;
  const std::vector<TileWindow> plan = plan_tiles(kH, kW, 256, 32);
  ASSERT_EQ(plan.size(), seg.tiles.size());
  std::vector<const Image*> views;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Image& tile = seg.tiles[i];
    views.push_back(&tile);
    for (int y = 0; y < tile.height; y += 3)
      for (int x = 0; x < tile.width; x += 3) {
        const std::array<uint8_t, 3> in{dark.at(plan[i].y + y, plan[i].x + x, 0), dark.at(plan[i].y + y, plan[i].x + x, 1),
                                        dark.at(plan[i].y + y, plan[i].x + x, 2)};
        const std::array<uint8_t, 3> out{tile.at(y, x, 0), tile.at(y, x, 1), tile.at(y, x, 2)};
        auto [it, fresh] = mapped.emplace(in, out);
        ASSERT_EQ(it->second, out) << "tile " << i;
      }
  }
  const StainEstimate e = estimate_stains(views);
  ASSERT_TRUE(e.ok);
  EXPECT_NEAR(e.stains.max_amount[0], reference_amount_range().high[0], 0.15);
  const auto summary = nlohmann::json::parse(read_file(dir.file("out/dark_summary.json")));
  EXPECT_EQ(summary["stain_normalisation"]["mode"], "range");
  EXPECT_EQ(summary["stain_normalisation"]["applied"], true);

  // Killed and resumed: the same estimate, so the journal is taken up where it stopped.
  SlideRunOptions k = o;
  k.out_dir = dir.file("killed");
  k.stop_after_tiles = 2;
  TileRecorder first;
  EXPECT_THROW(run_slide(path, first, k), IoError);
  k.stop_after_tiles = -1;
  TileRecorder second;
  EXPECT_EQ(run_slide(path, second, k).resumed_tiles, 2);
  EXPECT_EQ(read_file(dir.file("killed/dark_nuclei.csv")), read_file(dir.file("out/dark_nuclei.csv")));
}
