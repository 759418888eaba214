// The training recipe (configs/*.json): parsing, validation and the resolved form written to
// <run>/config.json. Kept apart from the `train` command so that the parser can be tested and
// fuzzed on its own (fuzz target `recipe`). See docs/training.md for the keys.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nucleisam/train/trainer.h"

namespace nucleisam::cli {

// One dataset of a recipe's data.train list (or its validation entry).
struct DataSpec {
  std::string path, format = "auto";
  std::vector<std::string> include, exclude;
  int repeat = 1;             // each sample this many times per epoch (weights datasets against each other)
  bool keep_classes = true;   // false: train class-agnostic on a classed dataset
  double mpp = 0;             // > 0: the data's microns per pixel, resampled to the model's (data.mpp)
};

// Everything the command needs, parsed from a recipe (and written back, resolved).
struct Recipe {
  train::TrainConfig config;
  std::string sam_checkpoint;  // SAM-guided networks: the frozen encoder's checkpoint
  int sam_input_size = 1024;
  std::vector<DataSpec> train_data;
  std::optional<DataSpec> validation;
  bool classes = false;
  int threads = 0;
  std::string precision_asked = "auto";
  nlohmann::json resolved;
};

// Parses a recipe. `where` names it in messages (its file); relative paths are resolved against
// `base`. Throws UsageError (cli/usage_error.h) naming the key for unknown keys, wrong types and values out of range.
// parse_recipe(r.resolved) gives back the same resolved recipe.
Recipe parse_recipe(const nlohmann::json& j, const std::string& where, const std::filesystem::path& base);

// A data spec as it appears in the resolved recipe.
nlohmann::json data_spec_json(const DataSpec& d);

// Reads a JSON file (the depth limit checked before parsing); UsageError naming the file otherwise.
nlohmann::json read_json_file(const std::string& path);

}  // namespace nucleisam::cli
