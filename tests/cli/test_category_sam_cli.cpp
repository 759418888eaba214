// Method 2 end to end: `train` a tiny category-SAM on a few CoNSeP patches (with validation), then
// `segment --model <file>` writes classes and scores, and `refine` takes points from options,
// JSON and QuPath GeoJSON, with one-line usage errors for bad points.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nucleisam/image_io.h"
#include "nucleisam/relabel.h"
#include "nucleisam/resample.h"
#include "support/test_support.h"

using nucleisam::test::run_cli;
using nucleisam::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

const char* kData = "data/consep256/train";

class CategorySamCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!nucleisam::test::shared_exists(kData)) return;
    dir_ = new TempDir;
    const std::string data = nucleisam::test::shared_path(kData);
    std::ofstream(dir_->file("recipe.json")) << R"({
  "name": "tiny-cat",
  "model": {"arch": "category-sam", "classes": true,
            "options": {"encoder": "vit", "encoder_embed_dim": 32, "encoder_depth": 2, "encoder_heads": 2,
                        "encoder_window": 2, "encoder_global_attn": "1", "encoder_img_size": 64,
                        "alignment_blocks": 1, "alignment_hidden": 16, "descriptors": 2, "input_size": 64,
                        "trainable": "all"}},
  "data": {"train": [{"path": ")" << data << R"(", "include": ["train_1_000", "train_1_001", "train_1_002", "train_1_003"]}],
           "validation": {"path": ")" << data << R"(", "include": ["train_1_004"]},
           "crop_size": 64, "rfs_threshold": 0.5, "mpp": 0.25},
  "train": {"epochs": 1, "batch_size": 2, "lr": 0.001, "precision": "fp32", "seed": 3},
  "loss": {"hinge_margin": 0.2},
  "inference": {"tile_size": 128, "tile_overlap": 64}
})";
    train_ = new nucleisam::test::CliResult(
        run_cli("--threads 1 train --config " + dir_->file("recipe.json") + " --out " + dir_->file("run")));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete dir_;
  }
  void SetUp() override {
    NUCLEISAM_REQUIRE_SHARED(kData);
    ASSERT_EQ(train_->code, 0) << train_->out;
  }
  static std::string model() { return dir_->file("run/best.safetensors"); }
  static std::string image() { return nucleisam::test::shared_path(kData) + "/images/train_1_005.jpg"; }

  static TempDir* dir_;
  static nucleisam::test::CliResult* train_;
};
TempDir* CategorySamCli::dir_ = nullptr;
nucleisam::test::CliResult* CategorySamCli::train_ = nullptr;

}  // namespace

TEST_F(CategorySamCli, TrainsValidatesAndSegmentsWithClasses) {
  const std::string log = slurp(dir_->file("run/log.csv"));
  EXPECT_NE(log.find("epoch,1,"), std::string::npos) << log;
  EXPECT_EQ(log.find(",,,,,"), std::string::npos) << "validation metrics missing: " << log;
  const std::string config = slurp(dir_->file("run/config.json"));
  EXPECT_NE(config.find("\"hinge_margin\": 0.2"), std::string::npos) << config;

  auto s = run_cli("segment --model " + model() + " --input " + image() + " --out " + dir_->file("seg") +
                   " --formats csv,geojson --precision fp32");
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("category-SAM"), std::string::npos) << s.out;
  const std::string csv = slurp(dir_->file("seg/train_1_005_nuclei.csv"));
  // Every nucleus row names one of CoNSeP's classes.
  std::istringstream rows(csv);
  std::string row;
  std::getline(rows, row);
  int nuclei = 0;
  while (std::getline(rows, row)) {
    ++nuclei;
    const bool named = row.find("other") != std::string::npos || row.find("inflammatory") != std::string::npos ||
                       row.find("epithelial") != std::string::npos || row.find("spindle-shaped") != std::string::npos;
    EXPECT_TRUE(named) << row;
  }
  (void)nuclei;  // a one-epoch random model may find none; the format is what is checked
}

TEST_F(CategorySamCli, RefineTakesPointsFromOptionsJsonAndQuPathGeoJson) {
  auto a = run_cli("refine --model " + model() + " --input " + image() + " --out " + dir_->file("r1") +
                   " --formats csv --point 100,120,epithelial --point 30.5,40,2 --precision fp32");
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("2 point(s) in"), std::string::npos) << a.out;
  EXPECT_TRUE(fs::exists(dir_->file("r1/train_1_005_nuclei.csv")));

  std::ofstream(dir_->file("points.json")) << R"({"points": [{"x": 100, "y": 120, "class": "Epithelial"},
                                                             {"x": 30.5, "y": 40, "class": 2}]})";
  auto b = run_cli("refine --model " + model() + " --input " + image() + " --out " + dir_->file("r2") +
                   " --formats csv --points " + dir_->file("points.json") + " --precision fp32");
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_EQ(slurp(dir_->file("r1/train_1_005_nuclei.csv")), slurp(dir_->file("r2/train_1_005_nuclei.csv")));

  std::ofstream(dir_->file("qupath.geojson")) << R"({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100, 120]},
     "properties": {"objectType": "annotation", "classification": {"name": "epithelial", "color": [255, 0, 0]}}},
    {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[30.5, 40]]},
     "properties": {"objectType": "annotation", "classification": {"name": "inflammatory"}}}]})";
  auto c = run_cli("refine --model " + model() + " --input " + image() + " --out " + dir_->file("r3") +
                   " --formats csv --points " + dir_->file("qupath.geojson") + " --precision fp32");
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_EQ(slurp(dir_->file("r1/train_1_005_nuclei.csv")), slurp(dir_->file("r3/train_1_005_nuclei.csv")));
}

TEST_F(CategorySamCli, RefineWithMppAnswersInTheImagesOwnPixels) {
  // The 256-pixel patch halved: a 0.5 um/px image for this 0.25 um/px model. `refine --mpp 0.5` with
  // a point at (50, 60) must give what refine gives on the image it resamples to (256 pixels) with
  // the point at (100, 120), brought back to 128 pixels.
  using namespace nucleisam;
  const Image half = resample_image(io::read_image(image()), 128, 128);
  io::write_image(dir_->file("half.png"), half);
  io::write_image(dir_->file("back.png"), resample_image(half, 256, 256));
  const std::string common = " --model " + model() + " --formats labels --precision fp32 --out ";
  auto m = run_cli("refine --mpp 0.5 --input " + dir_->file("half.png") + " --point 50,60,epithelial" + common +
                   dir_->file("m"));
  ASSERT_EQ(m.code, 0) << m.out;
  EXPECT_NE(m.out.find("resampled x2"), std::string::npos) << m.out;
  auto b = run_cli("refine --input " + dir_->file("back.png") + " --point 100,120,epithelial" + common + dir_->file("b"));
  ASSERT_EQ(b.code, 0) << b.out;
  const LabelMap at_model = io::read_label_map(dir_->file("b/back_labels.tif"));
  LabelMap expected = resample_labels(at_model, 128, 128);
  relabel_consecutive(expected);
  const LabelMap got = io::read_label_map(dir_->file("m/half_labels.tif"));
  ASSERT_TRUE(got.same_size(128, 128));
  EXPECT_EQ(got, expected);
  EXPECT_GT(*std::max_element(got.data.begin(), got.data.end()), 0) << "no nucleus: the comparison says little";
}

TEST_F(CategorySamCli, RefineRerunsOnlyTheCropsWhosePointsChangedSinceItsLastCall) {
  // 256 x 256 patch, crops of 128 at stride 64: 9 crops. (100, 120) lies in 4 of them, (200, 30) in 1.
  const std::string base = "refine --model " + model() + " --input " + image() + " --formats csv --precision fp32 " +
                           "--batch-size 1 --out ";
  const std::string one = " --point 100,120,epithelial", two = one + " --point 200,30,2";
  auto a = run_cli(base + dir_->file("s") + one);
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("1 point(s) in 4 of 9 crops; ran 9 of 9 crops"), std::string::npos) << a.out;
  EXPECT_TRUE(fs::exists(dir_->file("s/train_1_005.refine-session")));
  const std::string first = slurp(dir_->file("s/train_1_005_nuclei.csv"));

  auto same = run_cli(base + dir_->file("s") + one);
  ASSERT_EQ(same.code, 0) << same.out;
  EXPECT_NE(same.out.find("ran 0 of 9 crops"), std::string::npos) << same.out;
  EXPECT_EQ(slurp(dir_->file("s/train_1_005_nuclei.csv")), first);

  auto added = run_cli(base + dir_->file("s") + two);
  ASSERT_EQ(added.code, 0) << added.out;
  EXPECT_NE(added.out.find("2 point(s) in 5 of 9 crops; ran 1 of 9 crops"), std::string::npos) << added.out;
  auto scratch = run_cli(base + dir_->file("s-fresh") + two);
  ASSERT_EQ(scratch.code, 0) << scratch.out;
  EXPECT_NE(scratch.out.find("ran 9 of 9 crops"), std::string::npos) << scratch.out;
  EXPECT_EQ(slurp(dir_->file("s/train_1_005_nuclei.csv")), slurp(dir_->file("s-fresh/train_1_005_nuclei.csv")));

  auto fresh = run_cli(base + dir_->file("s") + two + " --fresh");
  ASSERT_EQ(fresh.code, 0) << fresh.out;
  EXPECT_NE(fresh.out.find("ran 9 of 9 crops"), std::string::npos) << fresh.out;

  // A damaged session is a warning, and every crop runs again.
  fs::resize_file(dir_->file("s/train_1_005.refine-session"), 100);
  auto damaged = run_cli(base + dir_->file("s") + two);
  ASSERT_EQ(damaged.code, 0) << damaged.out;
  EXPECT_NE(damaged.out.find("train_1_005.refine-session: not a usable refine session"), std::string::npos)
      << damaged.out;
  EXPECT_NE(damaged.out.find("ran 9 of 9 crops"), std::string::npos) << damaged.out;
  EXPECT_EQ(slurp(dir_->file("s/train_1_005_nuclei.csv")), slurp(dir_->file("s-fresh/train_1_005_nuclei.csv")));
}

TEST_F(CategorySamCli, BadPointsAreOneLineUsageErrorsAndWriteNothing) {
  auto expect_usage = [&](const std::string& args, const std::string& needle) {
    auto r = run_cli("refine --model " + model() + " --input " + image() + " --out " + dir_->file("bad") + " " + args);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_EQ(nucleisam::test::count_lines(r.out), 1) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir_->file("bad/train_1_005_nuclei.csv")));
  };
  expect_usage("--point 10,10,tumour", "unknown class 'tumour'");
  expect_usage("--point 10,10,9", "class 9");
  expect_usage("--point 10,abc,2", "expected x,y,class");
  expect_usage("--point 300,10,2", "outside");
  std::ofstream(dir_->file("poly.geojson")) << R"({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]},
     "properties": {"classification": {"name": "epithelial"}}}]})";
  expect_usage("--points " + dir_->file("poly.geojson"), "poly.geojson: feature 0: geometry 'Polygon'");
  std::ofstream(dir_->file("broken.json")) << "{\"points\": [";
  expect_usage("--points " + dir_->file("broken.json"), "broken.json: not valid JSON");
  expect_usage("--stain-normalize sometimes", "--stain-normalize");
  expect_usage("--stain-reference " + image(), "--stain-reference needs --stain-normalize match");
}

TEST_F(CategorySamCli, RefineBringsStainsIntoTheModelsOwnRange) {
  // The model's card records the stain amounts of its 4 training patches; train_1_005 is not one
  // of them and lies outside that narrow range, so the default (range) scales it and answers
  // differently from off; match redraws it again and runs every crop anew (the session key follows
  // the pixels the model sees).
  auto refine = [&](const std::string& out, const std::string& extra) {
    auto r = run_cli("refine --model " + model() + " --input " + image() + " --out " + dir_->file(out) +
                     " --point 40,40,2 --formats csv" + extra);
    EXPECT_EQ(r.code, 0) << r.out;
    return r.out;
  };
  const std::string ranged = refine("stain_range", "");
  EXPECT_NE(ranged.find("stain amounts brought into those of its training images"), std::string::npos) << ranged;
  EXPECT_NE(ranged.find(" amount "), std::string::npos) << ranged;  // "haematoxylin amount 1.01 -> ..."
  refine("stain_off", " --stain-normalize off");
  EXPECT_NE(slurp(dir_->file("stain_range/train_1_005_nuclei.csv")), slurp(dir_->file("stain_off/train_1_005_nuclei.csv")));
  const std::string matched = refine("stain_off", " --stain-normalize match");
  EXPECT_NE(matched.find("is from another image"), std::string::npos) << matched;
}

TEST_F(CategorySamCli, ClickBenchWritesOneRowPerStep) {
  const std::string data = nucleisam::test::shared_path(kData);
  auto r = run_cli("click-bench --model " + model() + " --data " + data + " --include train_1_005 --steps 0 1 2 --out " +
                   dir_->file("clicks.csv"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::istringstream rows(slurp(dir_->file("clicks.csv")));
  std::string header, row;
  std::getline(rows, header);
  EXPECT_EQ(header, "points_per_class,f1_other,f1_inflammatory,f1_epithelial,f1_spindle-shaped,mean_f1,mpq_plus,map,map50");
  std::vector<std::string> first;
  while (std::getline(rows, row)) first.push_back(row.substr(0, row.find(',')));
  EXPECT_EQ(first, (std::vector<std::string>{"0", "1", "2"}));
}
