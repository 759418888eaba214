// `nucleisam train`: a recipe trains and exports a model that `segment` runs; a run killed with
// SIGKILL and resumed writes a byte-identical model; bad recipes are one-line usage errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nucleisam/image_io.h"
#include "support/test_support.h"
#include "train/synthetic_nuclei.h"

using namespace nucleisam;
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

// A folder dataset of 4 synthetic 64 x 64 tiles and a recipe training a tiny U-Net on 3 of them.
std::string make_recipe(const TempDir& dir, const std::string& extra_train = "") {
  fs::create_directories(dir.file("data/images"));
  fs::create_directories(dir.file("data/labels"));
  fixtures::SyntheticNuclei syn(4, 64);
  for (size_t i = 0; i < syn.size(); ++i) {
    data::Sample s = syn.get(i);
    io::write_image(dir.file("data/images/" + s.name + ".png"), s.image);
    io::write_label_map(dir.file("data/labels/" + s.name + ".png"), s.instances);
  }
  const std::string recipe = dir.file("recipe.json");
  std::ofstream(recipe) << R"({
  "name": "tiny",
  "model": {"arch": "unet", "options": {"width": 4, "depth": 3}},
  "data": {"train": [{"path": ")" << dir.file("data") << R"(", "exclude": ["syn3"]}],
           "validation": {"path": ")" << dir.file("data") << R"(", "include": ["syn3"]},
           "crop_size": 32, "crops_per_image": 4},
  "train": {"epochs": 3, "batch_size": 2, "lr": 0.003, "precision": "fp32", "checkpoint_every": 1,
            "seed": 5)" << extra_train << R"(},
  "inference": {"tile_size": 32, "tile_overlap": 8}
})";
  return recipe;
}

}  // namespace

TEST(TrainCli, TrainsExportsAndSegments) {
  TempDir dir;
  const std::string recipe = make_recipe(dir);
  auto r = run_cli("--threads 1 train --config " + recipe + " --out " + dir.file("run"));
  ASSERT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(fs::exists(dir.file("run/best.safetensors"))) << r.out;
  const std::string config = slurp(dir.file("run/config.json"));
  EXPECT_NE(config.find("\"threads\": 1"), std::string::npos) << config;
  EXPECT_NE(config.find("\"precision\": \"fp32\""), std::string::npos);
  // 3 images x 4 crops / batch 2 = 6 steps per epoch, 18 in all: one step row (log_every 10, step
  // 10) and one row per epoch, each with validation metrics.
  std::istringstream log(slurp(dir.file("run/log.csv")));
  int epochs = 0, steps = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.rfind("epoch,", 0) == 0) {
      ++epochs;
      EXPECT_EQ(line.find(",,,,,"), std::string::npos) << "validation metrics missing: " << line;
    }
    steps += line.rfind("step,", 0) == 0;
  }
  EXPECT_EQ(epochs, 3);
  EXPECT_EQ(steps, 1);

  auto s = run_cli("segment --model " + dir.file("run/best.safetensors") + " --input " +
                   dir.file("data/images/syn3.png") + " --out " + dir.file("seg") + " --formats geojson,csv");
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_TRUE(fs::exists(dir.file("seg/syn3.geojson")));
  EXPECT_TRUE(fs::exists(dir.file("seg/syn3_nuclei.csv")));

  // A second train into the same folder would overwrite the run: refused.
  auto again = run_cli("train --config " + recipe + " --out " + dir.file("run"));
  EXPECT_EQ(again.code, 2) << again.out;
  EXPECT_NE(again.out.find("--resume"), std::string::npos) << again.out;
}

TEST(TrainCli, BestModelCanBeChosenByHoverNetsDetectionScore) {
  TempDir dir;
  const std::string recipe = make_recipe(dir, R"(, "best_metric": "f1_d")");
  auto r = run_cli("--threads 1 train --config " + recipe + " --out " + dir.file("run"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("val f1_d "), std::string::npos) << r.out;
  auto card = run_cli("export --model " + dir.file("run/best.safetensors"));
  ASSERT_EQ(card.code, 0) << card.out;
  EXPECT_NE(card.out.find("validation.f1_d: "), std::string::npos) << card.out;
  EXPECT_NE(card.out.find("validation.aji: "), std::string::npos) << card.out;
}

TEST(TrainCli, CardKeepsTheTrainingImagesStainRangeAndSegmentUsesIt) {
  // Three tiles of H&E-like tissue drawn from known stains (test_support.h), a square nucleus each.
  TempDir dir;
  const double stains[2][3] = {{0.5706, 0.7292, 0.3776}, {0.2982, 0.8133, 0.4997}};
  for (int i = 0; i < 3; ++i) {
    LabelMap labels(64, 64);
    for (int y = 10; y < 20; ++y)
      for (int x = 10 + 10 * i; x < 20 + 10 * i; ++x) labels.at(y, x) = 1;
    io::write_image(dir.file("data/images/t" + std::to_string(i) + ".png"),
                    test::stained_tissue(stains, 64, 64, static_cast<uint64_t>(i), 0.5 + 0.25 * i).image);
    io::write_label_map(dir.file("data/labels/t" + std::to_string(i) + ".png"), labels);
  }
  std::ofstream(dir.file("recipe.json")) << R"({
  "name": "stained",
  "model": {"arch": "unet", "options": {"width": 4, "depth": 3}},
  "data": {"train": [{"path": ")" << dir.file("data") << R"("}], "crop_size": 32},
  "train": {"epochs": 1, "batch_size": 3, "lr": 0.003, "precision": "fp32", "seed": 5},
  "inference": {"tile_size": 32, "tile_overlap": 8}
})";
  auto r = run_cli("--threads 1 train --config " + dir.file("recipe.json") + " --out " + dir.file("run"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("train: stain amounts of the training images: haematoxylin "), std::string::npos) << r.out;
  // Their haematoxylin: 0.5, 0.75 and 1 times the drawing's (whose 99th percentile is about 1.9).
  auto card = run_cli("export --model " + dir.file("run/best.safetensors"));
  ASSERT_EQ(card.code, 0) << card.out;
  const size_t at = card.out.find("stain amounts of the training images: haematoxylin ");
  ASSERT_NE(at, std::string::npos) << card.out;
  double h_low = 0, h_high = 0;
  ASSERT_EQ(std::sscanf(card.out.c_str() + at, "stain amounts of the training images: haematoxylin %lf-%lf", &h_low,
                        &h_high), 2);
  EXPECT_NEAR(h_low, 0.5 * 1.9 / 1.1, 0.15);
  EXPECT_NEAR(h_high, 1.9 * 1.1, 0.2);
  // A tile with three times the drawing's haematoxylin is brought to the top of the model's own
  // range, not the shipped models' (3.31).
  io::write_image(dir.file("dark.png"), test::stained_tissue(stains, 64, 64, 9, 3.0).image);
  auto s = run_cli("segment --model " + dir.file("run/best.safetensors") + " --input " + dir.file("dark.png") +
                   " --out " + dir.file("seg") + " --formats csv");
  ASSERT_EQ(s.code, 0) << s.out;
  const size_t note = s.out.find("haematoxylin amount ");
  ASSERT_NE(note, std::string::npos) << s.out;
  double from = 0, to = 0;
  ASSERT_EQ(std::sscanf(s.out.c_str() + note, "haematoxylin amount %lf -> %lf", &from, &to), 2) << s.out;
  EXPECT_GT(from, 4.5);
  EXPECT_NEAR(to, h_high, 0.006);
}

TEST(TrainCli, KilledAndResumedRunWritesTheSameModel) {
  TempDir dir;
  const std::string recipe = make_recipe(dir);
  auto whole = run_cli("--threads 1 train --config " + recipe + " --out " + dir.file("whole"));
  ASSERT_EQ(whole.code, 0) << whole.out;
  // Start a second run, SIGKILL it as soon as its first checkpoint exists, then resume it.
  const std::string bin = nucleisam::test::binary_dir() + "/nucleisam";
  const std::string script = "( " + bin + " --threads 1 --quiet train --config " + recipe + " --out " +
                             dir.file("parts") + " & pid=$!; while [ ! -f " + dir.file("parts/last.ckpt") +
                             " ]; do sleep 0.01; done; kill -9 $pid && wait $pid; echo killed=$? )";
  FILE* p = popen(script.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256];
  std::string out;
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  ASSERT_NE(out.find("killed=137"), std::string::npos) << "the run ended before it could be killed: " << out;
  EXPECT_FALSE(fs::exists(dir.file("parts/best.safetensors")) &&
               slurp(dir.file("parts/best.safetensors")) == slurp(dir.file("whole/best.safetensors")));
  auto resumed = run_cli("--threads 1 train --resume " + dir.file("parts"));
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_EQ(slurp(dir.file("parts/best.safetensors")), slurp(dir.file("whole/best.safetensors")));
}

TEST(TrainCli, BadRecipesAreOneLineUsageErrors) {
  TempDir dir;
  const std::string recipe = make_recipe(dir, ", \"epochz\": 3");
  auto r = run_cli("train --config " + recipe + " --out " + dir.file("run"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(nucleisam::test::count_lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("epochz"), std::string::npos) << r.out;

  std::ofstream(dir.file("broken.json")) << "{\"model\": ";
  r = run_cli("train --config " + dir.file("broken.json") + " --out " + dir.file("run2"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("broken.json"), std::string::npos) << r.out;

  std::ofstream(dir.file("noarch.json")) << R"({"data": {"train": [{"path": "x"}]}})";
  r = run_cli("train --config " + dir.file("noarch.json") + " --out " + dir.file("run3"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("arch"), std::string::npos) << r.out;

  r = run_cli("train --resume " + dir.path());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("not a training run"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir.file("run/last.ckpt")));
}

TEST(TrainCli, FineTunesFromAModelWithRepeatedDataAndMicroBatches) {
  TempDir dir;
  const std::string recipe = make_recipe(dir);
  auto first = run_cli("--threads 1 train --config " + recipe + " --out " + dir.file("first"));
  ASSERT_EQ(first.code, 0) << first.out;
  // The same recipe, started from the first run's model, each image twice per epoch, two micro-batches.
  std::string text = slurp(recipe);
  text.replace(text.find("\"options\": {\"width\": 4, \"depth\": 3}"), 0,
               "\"init_from\": \"" + dir.file("first/best.safetensors") + "\", ");
  text.replace(text.find("\"exclude\""), 0, "\"repeat\": 2, ");
  text.replace(text.find("\"batch_size\": 2"), 0, "\"micro_batches\": 2, ");
  std::ofstream(dir.file("tune.json")) << text;
  auto tune = run_cli("--threads 1 train --config " + dir.file("tune.json") + " --out " + dir.file("tune"));
  ASSERT_EQ(tune.code, 0) << tune.out;
  EXPECT_NE(tune.out.find("6 training images"), std::string::npos) << tune.out;  // 3 images x 2
  EXPECT_NE(tune.out.find("initialised"), std::string::npos) << tune.out;
  const std::string config = slurp(dir.file("tune/config.json"));
  EXPECT_NE(config.find("\"repeat\": 2"), std::string::npos) << config;
  EXPECT_NE(config.find("\"micro_batches\": 2"), std::string::npos) << config;
  EXPECT_NE(config.find("first/best.safetensors"), std::string::npos) << config;

  // A missing starting model names the file; --distributed without a launcher names the variables.
  text.replace(text.find("first/best.safetensors"), 5, "gone_");
  std::ofstream(dir.file("missing.json")) << text;
  auto missing = run_cli("train --config " + dir.file("missing.json") + " --out " + dir.file("missing"));
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.out.find("gone_/best.safetensors"), std::string::npos) << missing.out;
  auto alone = run_cli("train --distributed --config " + recipe + " --out " + dir.file("alone"));
  EXPECT_EQ(alone.code, 2) << alone.out;
  EXPECT_NE(alone.out.find("WORLD_SIZE"), std::string::npos) << alone.out;
}

TEST(TrainCli, ClassifierTrainsOnClassedAndUnclassedDataTogether) {
  const char* consep = "data/consep256/train";
  NUCLEISAM_REQUIRE_SHARED(consep);
  TempDir dir;
  make_recipe(dir);  // writes the unclassed synthetic folder data/
  const std::string classed = nucleisam::test::shared_path(consep);
  auto recipe = [&](const std::string& model) {
    return R"({
  "name": "mixed",
  "model": )" + model + R"(,
  "data": {"train": [{"path": ")" + classed + R"(", "include": ["train_1_000", "train_1_001"]},
                     {"path": ")" + dir.file("data") + R"("}],
           "validation": {"path": ")" + classed + R"(", "include": ["train_1_002"]},
           "crop_size": 32},
  "train": {"epochs": 1, "batch_size": 3, "lr": 0.003, "precision": "fp32", "seed": 5},
  "inference": {"tile_size": 64, "tile_overlap": 16}
})";
  };
  // A U-Net with a type head: CoNSeP's classes from the classed part, every image trains.
  std::ofstream(dir.file("mixed.json"))
      << recipe(R"({"arch": "unet", "classes": true, "options": {"width": 4, "depth": 3}})");
  auto r = run_cli("--threads 1 train --config " + dir.file("mixed.json") + " --out " + dir.file("run"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("6 training images"), std::string::npos) << r.out;  // 2 CoNSeP + 4 synthetic
  auto card = run_cli("export --model " + dir.file("run/best.safetensors"));
  ASSERT_EQ(card.code, 0) << card.out;
  EXPECT_NE(card.out.find("4 nucleus types"), std::string::npos) << card.out;
  EXPECT_NE(card.out.find("class 4: spindle-shaped"), std::string::npos) << card.out;

  // A category-descriptor model with classes cannot learn from the unclassed part: refused up front.
  std::ofstream(dir.file("category.json")) << recipe(
      R"({"arch": "category-sam", "classes": true, "options": {"encoder": "vit", "encoder_embed_dim": 32,
          "encoder_depth": 2, "encoder_heads": 2, "encoder_window": 2, "encoder_global_attn": "1",
          "encoder_img_size": 64, "alignment_blocks": 1, "alignment_hidden": 16, "descriptors": 2,
          "input_size": 64, "trainable": "all"}})");
  r = run_cli("--threads 1 train --config " + dir.file("category.json") + " --out " + dir.file("cat"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(nucleisam::test::count_lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("train[1]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("has no classes"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir.file("cat/last.ckpt")));
}

TEST(TrainCli, DataAtAnotherResolutionIsResampledToTheModels) {
  TempDir dir;
  make_recipe(dir);  // the synthetic folder data/ (64 x 64 tiles)
  std::ofstream(dir.file("res.json")) << R"({
  "name": "res",
  "model": {"arch": "unet", "options": {"width": 4, "depth": 3}},
  "data": {"train": [{"path": ")" << dir.file("data") << R"(", "exclude": ["syn3"], "mpp": 0.5}],
           "validation": {"path": ")" << dir.file("data") << R"(", "include": ["syn3"], "mpp": 0.5},
           "mpp": 0.25, "crop_size": 96},
  "train": {"epochs": 1, "batch_size": 3, "lr": 0.003, "precision": "fp32", "seed": 5},
  "inference": {"tile_size": 64, "tile_overlap": 16}
})";
  auto r = run_cli("--threads 1 train --config " + dir.file("res.json") + " --out " + dir.file("run"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("at 0.5 um/px is resampled x2 to the model's 0.25 um/px"), std::string::npos) << r.out;
  auto card = run_cli("export --model " + dir.file("run/best.safetensors"));
  EXPECT_NE(card.out.find("microns per pixel: 0.25"), std::string::npos) << card.out;

  // The decoding chosen on the same 0.5 um/px images, resampled for the 0.25 um/px model.
  auto tuned = run_cli("--threads 1 export --model " + dir.file("run/best.safetensors") + " --out " +
                       dir.file("tuned.safetensors") + " --tune-on " + dir.file("data") + " --tune-mpp 0.5");
  ASSERT_EQ(tuned.code, 0) << tuned.out;
  EXPECT_NE(tuned.out.find("on 4 images of"), std::string::npos) << tuned.out;
  EXPECT_NE(tuned.out.find("decoding_chosen_on: AJI on " + dir.file("data")), std::string::npos) << tuned.out;
  auto lone = run_cli("export --model " + dir.file("run/best.safetensors") + " --out " + dir.file("x.safetensors") +
                      " --tune-mpp 0.5");
  EXPECT_EQ(lone.code, 2) << lone.out;
  EXPECT_NE(lone.out.find("--tune-mpp needs --tune-on"), std::string::npos) << lone.out;

  // Chosen by HoVer-Net's detection F1 instead: the table is sorted by it and the card records the
  // best row's value.
  const std::string tune = "--threads 1 export --model " + dir.file("run/best.safetensors") + " --out " +
                           dir.file("tuned.safetensors") + " --tune-on " + dir.file("data") +
                           " --tune-mpp 0.5";
  auto by_fd = run_cli(tune + " --tune-metric f1_d");
  ASSERT_EQ(by_fd.code, 0) << by_fd.out;
  std::istringstream lines(by_fd.out.substr(by_fd.out.find("best 8 by f1_d:")));
  std::string line;
  std::getline(lines, line);
  std::getline(lines, line);  // the column names
  std::vector<double> fd;
  while (std::getline(lines, line) && line.find("decoding") == std::string::npos && std::isdigit(line[0])) {
    double aji, dice, pq, f;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lf %lf %lf %lf", &aji, &dice, &pq, &f), 4) << line;
    fd.push_back(f);
  }
  ASSERT_GE(fd.size(), 2u) << by_fd.out;
  EXPECT_TRUE(std::is_sorted(fd.rbegin(), fd.rend())) << by_fd.out;
  const size_t at = by_fd.out.find("decoding_tuned_f1_d: ");
  ASSERT_NE(at, std::string::npos) << by_fd.out;
  EXPECT_NEAR(std::stod(by_fd.out.substr(at + 21)), fd[0], 5e-5) << by_fd.out;
  EXPECT_NE(by_fd.out.find("decoding_chosen_on: f1_d on " + dir.file("data")), std::string::npos)
      << by_fd.out;
  // A class metric for a model without types, an unknown metric, or a metric without --tune-on.
  auto classless = run_cli(tune + " --tune-metric mpq_plus");
  EXPECT_EQ(classless.code, 2) << classless.out;
  EXPECT_NE(classless.out.find("needs a model with nucleus types"), std::string::npos) << classless.out;
  EXPECT_EQ(run_cli(tune + " --tune-metric dice").code, 2);
  auto untuned = run_cli("export --model " + dir.file("run/best.safetensors") + " --out " +
                         dir.file("x.safetensors") + " --tune-metric f1_d");
  EXPECT_EQ(untuned.code, 2) << untuned.out;
  EXPECT_NE(untuned.out.find("--tune-metric needs --tune-on"), std::string::npos) << untuned.out;
}
