// The training recipe parser (src/cli/recipe.h): defaults, resolved paths, the round trip through
// the resolved form that --resume reads, and the refusal of wrong keys, types and numbers that
// the fields cannot hold (which used to be cast: 1e300 epochs, 3.5 images per batch, seed -1).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/recipe.h"
#include "cli/usage_error.h"

namespace nucleisam::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

json minimal() { return {{"model", {{"arch", "unet"}}}, {"data", {{"train", json::array({{{"path", "train"}}})}}}}; }

// The message of the UsageError that parsing `j` throws; "" when it parses.
std::string refusal(const json& j) {
  try {
    parse_recipe(j, "r.json", "/base");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Recipe, FillsDefaultsAndResolvesPathsAgainstTheRecipeFolder) {
  const Recipe r = parse_recipe(minimal(), "r.json", "/base/configs");
  ASSERT_EQ(r.train_data.size(), 1u);
  EXPECT_EQ(r.train_data[0].path, "/base/configs/train");
  EXPECT_EQ(r.train_data[0].repeat, 1);
  EXPECT_FALSE(r.validation.has_value());
  EXPECT_EQ(r.config.card.name, "model");
  EXPECT_EQ(r.config.card.arch, "unet");
  EXPECT_EQ(r.resolved.at("data").at("train")[0].at("path"), "/base/configs/train");
  EXPECT_TRUE(r.resolved.at("data").at("validation").is_null());
  EXPECT_EQ(r.resolved.at("train").at("epochs"), r.config.epochs);
  // Method 2 changes the defaults: SAM's normalisation and tiles overlapping by half.
  json c = minimal();
  c["model"]["arch"] = "category-sam";
  c["data"]["crop_size"] = 256;
  const Recipe m = parse_recipe(c, "r.json", "/base");
  EXPECT_TRUE(m.config.card.heads.categories);
  EXPECT_EQ(m.config.card.tile_size, 256);
  EXPECT_EQ(m.config.card.tile_overlap, 128);
  EXPECT_FLOAT_EQ(m.config.card.mean[0], 0.485f);
}

TEST(Recipe, TheResolvedFormParsesBackToItselfForEveryShippedRecipe) {
  const fs::path configs = fs::path(NUCLEISAM_SOURCE_DIR) / "configs";
  int seen = 0;
  for (const auto& e : fs::recursive_directory_iterator(configs)) {
    if (e.path().extension() != ".json") continue;
    const json j = read_json_file(e.path().string());
    const Recipe r = parse_recipe(j, e.path().string(), e.path().parent_path());
    const Recipe again = parse_recipe(r.resolved, "resolved", "/elsewhere");
    EXPECT_EQ(again.resolved, r.resolved) << e.path();
    ++seen;
  }
  EXPECT_GE(seen, 8);
}

TEST(Recipe, WholeNumbersWrittenAsFloatsAreAcceptedOthersAreNot) {
  json j = minimal();
  j["train"] = {{"epochs", 3.0}, {"checkpoint_every", std::numeric_limits<int64_t>::max()}};
  const Recipe r = parse_recipe(j, "r.json", "/base");
  EXPECT_EQ(r.config.epochs, 3);
  EXPECT_EQ(r.config.checkpoint_every, std::numeric_limits<int64_t>::max());

  j["train"] = {{"batch_size", 3.5}};
  EXPECT_NE(refusal(j).find("'batch_size' must be a whole number from -2147483648 to 2147483647 (got 3.5)"),
            std::string::npos)
      << refusal(j);
  j["train"] = {{"epochs", 1e300}};
  EXPECT_NE(refusal(j).find("'epochs' must be a whole number"), std::string::npos) << refusal(j);
  j["train"] = {{"epochs", 5000000000}};  // an integer, but not an int
  EXPECT_NE(refusal(j).find("'epochs' must be a whole number"), std::string::npos) << refusal(j);
  j["train"] = {{"seed", -1}};  // unsigned
  EXPECT_NE(refusal(j).find("'seed' must be a whole number from 0 to 18446744073709551615"), std::string::npos)
      << refusal(j);
  j["train"] = {{"log_every", std::numeric_limits<uint64_t>::max()}};
  EXPECT_NE(refusal(j).find("'log_every' must be a whole number"), std::string::npos) << refusal(j);
  j["train"] = {{"step_epochs", {2, 4.0, 1e20}}};
  EXPECT_NE(refusal(j).find("'step_epochs'[2] must be a whole number"), std::string::npos) << refusal(j);
  j["train"] = {{"step_epochs", {2, 4.0}}};
  EXPECT_EQ(parse_recipe(j, "r.json", "/base").config.schedule.step_epochs, (std::vector<int>{2, 4}));
}

TEST(Recipe, NonFiniteNumbersAreRefused) {
  json j = minimal();
  j["train"] = {{"lr", std::numeric_limits<double>::infinity()}};
  EXPECT_NE(refusal(j).find("'lr' must be a finite number"), std::string::npos) << refusal(j);
  j["train"] = json::object();
  j["loss"] = {{"three_class_weights", {1.0, std::nan(""), 1.0}}};
  EXPECT_NE(refusal(j).find("'three_class_weights'[1] must be a finite number"), std::string::npos) << refusal(j);
}

TEST(Recipe, WrongKeysTypesAndValuesAreNamed) {
  json j = minimal();
  j["trian"] = json::object();
  EXPECT_EQ(refusal(j), "r.json: unknown key 'trian'");
  j = minimal();
  j["model"]["arch"] = json::array({"unet"});
  EXPECT_EQ(refusal(j), "r.json model: 'arch' has the wrong type ([\"unet\"])");
  j = minimal();
  j["data"]["train"] = {{"path", "x"}};
  EXPECT_EQ(refusal(j), "r.json: data 'train' must be a non-empty list of datasets");
  j = minimal();
  j["data"]["mpp"] = -0.25;
  EXPECT_NE(refusal(j).find("'mpp' must not be negative"), std::string::npos) << refusal(j);
  j = minimal();
  j["loss"] = {{"hinge_margin", 1.5}};
  EXPECT_EQ(refusal(j), "r.json: loss 'hinge_margin' must be in [0, 1]");
  j = minimal();
  j["data"]["augment"] = 3;
  EXPECT_EQ(refusal(j), "r.json data augment must be a JSON object");
  j = minimal();
  j["data"]["augment"] = {{"stain_scale", 0.5}};
  EXPECT_EQ(refusal(j), "r.json: data augment 'stain_scale' must be from 1 (off) to 10 (got 0.5)");
  j["data"]["augment"] = {{"stain_scale", 2}};
  EXPECT_EQ(parse_recipe(j, "r.json", "/base").config.augment.stain.amount_scale, 2.0);
}

TEST(Recipe, ADatasetAtAnotherResolutionNeedsTheModelsResolution) {
  json j = minimal();
  j["data"]["mpp"] = 0.25;
  j["data"]["train"].push_back({{"path", "lizard"}, {"mpp", 0.5}});
  j["data"]["validation"] = {{"path", "val"}, {"mpp", 0.5}};
  const Recipe r = parse_recipe(j, "r.json", "/base");
  ASSERT_EQ(r.train_data.size(), 2u);
  EXPECT_EQ(r.train_data[0].mpp, 0.0);  // the model's
  EXPECT_EQ(r.train_data[1].mpp, 0.5);
  EXPECT_EQ(r.validation->mpp, 0.5);
  EXPECT_FALSE(r.resolved.at("data").at("train")[0].contains("mpp"));
  EXPECT_EQ(r.resolved.at("data").at("train")[1].at("mpp"), 0.5);
  EXPECT_EQ(parse_recipe(r.resolved, "config.json", "/").resolved, r.resolved);
  j["data"].erase("mpp");
  EXPECT_EQ(refusal(j), "r.json: /base/lizard gives its 'mpp'; give the model's too (data 'mpp'), to resample it to");
  j = minimal();
  j["data"]["train"][0]["mpp"] = -1;
  EXPECT_NE(refusal(j).find("'mpp' must be a resolution"), std::string::npos) << refusal(j);
}

}  // namespace
}  // namespace nucleisam::cli
