// `nucleisam segment` on whole slides through the built binary: a slide gives valid QuPath
// GeoJSON, CSV, summary and thumbnail; a run killed with SIGKILL and rerun gives byte-identical
// outputs; bad slides fail with one clear line; a cohort goes on past a failing slide and exits 1
// with the list; shards split the manifest; the cohort's table has a row per slide of every shard.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nucleisam/atomic_file.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/run_summary.h"
#include "nucleisam/io/csv.h"
#include "nucleisam/io/tiled_tiff.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace nucleisam;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Pink tissue with purple discs of radius 9 every 40 pixels (what the classical baseline finds),
// glass in the right quarter. mpp 0: a generic tiled TIFF without resolution.
void write_slide(const std::string& path, int width, int height, double mpp) {
  io::TiledTiffOptions o;
  o.tile_size = 256;
  o.downsamples = {1, 4};
  if (mpp > 0) o.description = io::aperio_description(width, height, 256, mpp);
  io::write_tiled_tiff(path, width, height, o, [&](int ds, int64_t x0, int64_t y0, int w, int h) {
    Image tile(h, w, 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int64_t gx = (x0 + x) * ds, gy = (y0 + y) * ds;
        const int64_t dx = gx % 40 - 20, dy = gy % 40 - 20;
        const bool glass = gx >= width * 3 / 4;
        const bool nucleus = !glass && dx * dx + dy * dy <= 81;
        const uint8_t purple[3] = {64, 54, 135}, pink[3] = {219, 114, 200}, white[3] = {243, 243, 243};
        for (int c = 0; c < 3; ++c) tile.at(y, x, c) = glass ? white[c] : nucleus ? purple[c] : pink[c];
      }
    return tile;
  });
}

test::CliResult run(const std::string& args) { return test::run_cli(args); }

// Slides a and c (c_width x 300 pixels at 0.25 um/px), a corrupt b, and cohort.txt listing a, b, c.
void write_cohort(const test::TempDir& dir, int c_width) {
  write_slide(dir.file("a.svs"), 300, 300, 0.25);
  write_slide(dir.file("c.svs"), c_width, 300, 0.25);
  write_file_atomic(dir.file("b.svs"), "corrupt");
  write_file_atomic(dir.file("cohort.txt"), "a.svs\nb.svs\nc.svs\n");
}

}  // namespace

TEST(SlideCli, SlideGivesValidOutputs) {
  test::TempDir dir;
  write_slide(dir.file("s.svs"), 800, 600, 0.25);
  auto r = run("segment --model classical --input " + dir.file("s.svs") + " --out " + dir.file("out") +
               " --tile-size 256 --tile-overlap 48");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* f : {"s.geojson", "s_nuclei.csv", "s_summary.json", "s_thumbnail.png"})
    EXPECT_TRUE(fs::exists(dir.file("out/") + f)) << f;
  auto doc = nlohmann::json::parse(read_file(dir.file("out/s.geojson")));
  // 15 x 15 disc centres at (20 + 40i, 20 + 40j) in the 600 x 600 tissue part.
  EXPECT_EQ(doc["features"].size(), 15u * 15u);
  for (const auto& f : doc["features"]) {
    std::vector<ContourPoint> ring;
    for (const auto& p : f["geometry"]["coordinates"][0]) ring.push_back({p[0].get<float>(), p[1].get<float>()});
    std::string why;
    EXPECT_TRUE(test::ring_is_simple(ring, &why)) << why;
  }
  auto summary = nlohmann::json::parse(read_file(dir.file("out/s_summary.json")));
  EXPECT_EQ(summary["nuclei"], 225);
  EXPECT_NEAR(summary["tissue_area_mm2"].get<double>(), 600 * 600 * 0.0625 / 1e6, 0.003);
  // Second run: skipped.
  r = run("segment --model classical --input " + dir.file("s.svs") + " --out " + dir.file("out"));
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(contains(r.out, "skipped")) << r.out;
}

// The label pyramid is written for a slide only when --formats names it: then it holds the 225
// nuclei, each id once, and only the selected outputs are there.
TEST(SlideCli, LabelPyramidOnlyWhenAskedFor) {
  test::TempDir dir;
  write_slide(dir.file("s.svs"), 800, 600, 0.25);
  const std::string args = "segment --model classical --input " + dir.file("s.svs") + " --tile-size 256 --tile-overlap 48";
  auto r = run(args + " --out " + dir.file("default"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir.file("default/s.geojson")));
  EXPECT_FALSE(fs::exists(dir.file("default/s_labels.tif")));
  r = run(args + " --formats csv,labels --out " + dir.file("labels"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(fs::exists(dir.file("labels/s.geojson")));
  ASSERT_TRUE(fs::exists(dir.file("labels/s_labels.tif")));
  const LabelMap labels = io::read_tiled_label_tiff(dir.file("labels/s_labels.tif"), 0);
  EXPECT_EQ(labels.width, 800);
  EXPECT_EQ(labels.height, 600);
  std::vector<int> seen(226, 0);
  for (int32_t v : labels.data) {
    ASSERT_GE(v, 0);
    ASSERT_LE(v, 225);
    seen[v] = 1;
  }
  for (int id = 1; id <= 225; ++id) EXPECT_TRUE(seen[id]) << "id " << id;
}

TEST(SlideCli, KilledRunResumesToIdenticalBytes) {
  test::TempDir dir;
  write_slide(dir.file("k.svs"), 1600, 1600, 0.25);
  const std::string args = " segment --model classical --input " + dir.file("k.svs") + " --tile-size 128 --tile-overlap 32 --out ";
  auto r = run(args + dir.file("full"));
  ASSERT_EQ(r.code, 0) << r.out;
  // Start a run, SIGKILL it once its journal has recorded a few tiles.
  const std::string journal = dir.file("killed/.k.journal");
  const std::string script = "( " + test::binary_dir() + "/nucleisam --quiet" + args + dir.file("killed") +
                             " & pid=$!; for i in $(seq 1 2000); do"
                             " if [ -f " + journal + " ] && [ $(wc -l < " + journal + ") -ge 6 ]; then"
                             " kill -9 $pid; wait $pid; exit 0; fi; sleep 0.01; done; wait $pid; exit 3 )";
  const int status = std::system(script.c_str());
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "the run finished before it could be killed";
  ASSERT_TRUE(fs::exists(journal));
  EXPECT_FALSE(fs::exists(dir.file("killed/k.geojson")));  // nothing half-written under a final name
  r = run(args + dir.file("killed"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "resuming after")) << r.out;
  EXPECT_EQ(read_file(dir.file("killed/k.geojson")), read_file(dir.file("full/k.geojson")));
  EXPECT_EQ(read_file(dir.file("killed/k_nuclei.csv")), read_file(dir.file("full/k_nuclei.csv")));
  EXPECT_EQ(read_file(dir.file("killed/k_thumbnail.png")), read_file(dir.file("full/k_thumbnail.png")));
}

TEST(SlideCli, BadSlidesFailWithOneClearLine) {
  test::TempDir dir;
  write_file_atomic(dir.file("junk.svs"), std::string(3000, 'x'));
  auto r = run("--quiet segment --model classical --input " + dir.file("junk.svs") + " --out " + dir.file("out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "nucleisam: " + dir.file("junk.svs") +
                       ": not a whole-slide image OpenSlide can read (unknown or corrupt format)\n");
  write_slide(dir.file("plain.tif"), 300, 300, 0);
  r = run("--quiet segment --model classical --input " + dir.file("plain.tif") + " --out " + dir.file("out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(test::count_lines(r.out), 1) << r.out;
  EXPECT_TRUE(contains(r.out, "plain.tif: the slide does not record its resolution")) << r.out;
  // The classical baseline scores no nuclei, so they cannot tell the resolution either.
  EXPECT_TRUE(contains(r.out, "its nuclei could not tell it")) << r.out;
  EXPECT_TRUE(contains(r.out, "; give it with --mpp\n")) << r.out;
  EXPECT_FALSE(fs::exists(dir.file("out/plain.geojson")));
  r = run("segment --model classical --unknown-mpp model --input " + dir.file("plain.tif") + " --out " +
          dir.file("model"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "taken to be at 0.25 um/px, the resolution of classical")) << r.out;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir.file("model/plain_summary.json")))["mpp_source"], "model");
  r = run("--quiet segment --model classical --input " + dir.file("plain.tif") + " --out " + dir.file("out") +
          " --mpp 0.25");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir.file("out/plain.geojson")));
}

TEST(SlideCli, CohortGoesOnPastAFailingSlideAndShardsSplitIt) {
  test::TempDir dir;
  write_cohort(dir, 300);
  auto r = run("segment --model classical --manifest " + dir.file("cohort.txt") + " --out " + dir.file("out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.out, "1 of 3 slides failed:\n  " + dir.file("b.svs") + ": not a whole-slide image")) << r.out;
  EXPECT_TRUE(fs::exists(dir.file("out/a.geojson")));
  EXPECT_TRUE(fs::exists(dir.file("out/c.geojson")));
  // Shard 1 of 2 holds b only; shard 0 holds a and c (already done: skipped).
  r = run("segment --model classical --manifest " + dir.file("cohort.txt") + " --shard 0/2 --out " + dir.file("out"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "0 slides segmented, 2 skipped")) << r.out;
  r = run("segment --model classical --manifest " + dir.file("cohort.txt") + " --shard 1/2 --out " + dir.file("out2"));
  EXPECT_EQ(r.code, 1);
  EXPECT_FALSE(fs::exists(dir.file("out2/a.geojson")));
  r = run("segment --model classical --manifest " + dir.file("cohort.txt") + " --shard 2/2 --out " + dir.file("o"));
  EXPECT_EQ(r.code, 2) << r.out;
  // A folder of slides: the same list without a manifest (the corrupt one listed at the end).
  r = run("segment --model classical --input " + dir.path() + " --out " + dir.file("folder"));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.out, "1 of 3 slides failed:\n  " + dir.file("b.svs") + ": ")) << r.out;
  EXPECT_EQ(read_file(dir.file("folder/c.geojson")), read_file(dir.file("out/c.geojson")));
}

TEST(SlideCli, TheCohortTableHasARowPerSlideOfEveryShard) {
  test::TempDir dir;
  write_cohort(dir, 400);
  const std::string args =
      "segment --model classical --manifest " + dir.file("cohort.txt") + " --out " + dir.file("out");
  // Shard 0 of 2 (a and c) first: their rows.
  auto r = run(args + " --shard 0/2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "a row per slide in " + dir.file("out/segment_summary.csv"))) << r.out;
  EXPECT_EQ(infer::RunSummary(dir.file("out/segment_summary.csv")).find("b"), nullptr);
  // Shard 1 (b, which fails), in another job: the table then holds every slide, in the manifest's
  // order, the other shard's from their summaries.
  r = run(args + " --shard 1/2");
  EXPECT_EQ(r.code, 1) << r.out;
  const std::string table = read_file(dir.file("out/segment_summary.csv"));
  EXPECT_LT(table.find("\n" + dir.file("a.svs")), table.find("\n" + dir.file("b.svs"))) << table;
  EXPECT_LT(table.find("\n" + dir.file("b.svs")), table.find("\n" + dir.file("c.svs"))) << table;
  const infer::RunSummary summary(dir.file("out/segment_summary.csv"));
  EXPECT_EQ(summary.find("b")->at("status"), "failed");
  EXPECT_EQ(summary.find("b")->at("error").rfind("not a whole-slide image", 0), 0u)
      << summary.find("b")->at("error");
  for (const char* stem : {"a", "c"}) {
    const infer::RunSummaryRow& row = *summary.find(stem);
    const auto doc = nlohmann::json::parse(read_file(dir.file("out/" + std::string(stem) + "_summary.json")));
    EXPECT_EQ(row.at("status"), "segmented");
    EXPECT_EQ(row.at("method"), "classical");
    EXPECT_EQ(row.at("mpp"), "0.25");
    EXPECT_EQ(row.at("mpp_source"), "file");
    EXPECT_EQ(row.at("nuclei"), std::to_string(doc["nuclei"].get<int>()));
    EXPECT_NEAR(std::stod(row.at("tissue_mm2")), doc["tissue_area_mm2"].get<double>(), 1e-4);
    // Sizes over the slide's nucleus table: the mean area, and the median equivalent diameter.
    const auto records = io::read_csv(dir.file("out/" + std::string(stem) + "_nuclei.csv"));
    std::vector<double> areas;
    for (size_t i = 1; i < records.size(); ++i) areas.push_back(records[i].number(7, stem));
    ASSERT_GT(areas.size(), 10u);
    double mean = 0;
    for (double a : areas) mean += a / static_cast<double>(areas.size());
    std::sort(areas.begin(), areas.end());
    const auto diameter = [](double a) { return 2 * std::sqrt(a / M_PI); };
    const size_t m = areas.size() / 2;
    const double median =
        areas.size() % 2 ? diameter(areas[m]) : 0.5 * (diameter(areas[m - 1]) + diameter(areas[m]));
    EXPECT_NEAR(std::stod(row.at("mean_area_um2")), mean, 0.005) << stem;
    EXPECT_NEAR(std::stod(row.at("median_diameter_um")), median, 0.005) << stem;
    EXPECT_EQ(row.at("mean_score"), "1.000");  // the classical baseline has no scores
  }
  // Shard 0's job again: it keeps the row shard 1's job wrote for b.
  r = run(args + " --shard 0/2 --overwrite");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(infer::RunSummary(dir.file("out/segment_summary.csv")).find("b")->at("status"), "failed");
  // One slide on its own: no table.
  r = run("segment --model classical --input " + dir.file("a.svs") + " --out " + dir.file("one"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(fs::exists(dir.file("one/segment_summary.csv")));
}

// A folder of slides in folders of their own (as a TCGA download lays them out), two with one
// name: with --recursive each is segmented into its folder below --out, the table names them by
// those folders, and an image among them is segmented too.
TEST(SlideCli, RecursiveFoldersOfSlidesMirrorTheirFolders) {
  test::TempDir dir;
  write_slide(dir.file("cohort/case-1/s.svs"), 300, 300, 0.25);
  write_slide(dir.file("cohort/case-2/s.svs"), 400, 300, 0.25);
  write_file_atomic(dir.file("cohort/case-2/notes.txt"), "not a slide");
  io::write_image(dir.file("cohort/case-1/tile.png"), Image(64, 64, 3, 200));
  const std::string args =
      "segment --model classical --input " + dir.file("cohort") + " --recursive --out " + dir.file("out");
  auto r = run(args);
  ASSERT_EQ(r.code, 0) << r.out;
  const infer::RunSummary summary(dir.file("out/segment_summary.csv"));
  for (const std::string stem : {"case-1/s", "case-2/s"}) {
    for (const char* suffix : {".geojson", "_nuclei.csv", "_summary.json", "_thumbnail.png"})
      EXPECT_TRUE(fs::exists(dir.file("out/" + stem + suffix))) << stem << suffix;
    EXPECT_FALSE(fs::exists(dir.file("out/" + stem.substr(0, 7) + "/.s.journal"))) << stem;
    ASSERT_NE(summary.find(stem), nullptr) << stem;
    const auto doc = nlohmann::json::parse(read_file(dir.file("out/" + stem + "_summary.json")));
    EXPECT_EQ(summary.find(stem)->at("nuclei"), std::to_string(doc["nuclei"].get<int>())) << stem;
  }
  EXPECT_NE(summary.find("case-1/s")->at("nuclei"), summary.find("case-2/s")->at("nuclei"));
  EXPECT_TRUE(fs::exists(dir.file("out/case-1/tile.geojson")));
  r = run(args);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "0 slides segmented, 2 skipped")) << r.out;
  // Without --recursive the folder holds nothing to segment, and the error says where they are.
  r = run("segment --model classical --input " + dir.file("cohort") + " --out " + dir.file("flat"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "its subfolders hold 3 images or slides: give --recursive")) << r.out;
}
