// The stain options `segment` and `refine` share: --stain-normalize off|range|match and
// --stain-reference IMAGE (nucleisam/stain.h says what each does).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "nucleisam/infer/segmenter.h"
#include "nucleisam/stain.h"

namespace nucleisam::cli {

struct StainArgs {
  std::string mode = "range";
  std::string reference;
};

void add_stain_options(CLI::App& app, StainArgs& args);

// The normalisation the options ask for; with --stain-reference, the target stains are that image's
// (a DataError naming it when they cannot be estimated).
StainNormalization stain_normalization(const StainArgs& args);

// `normalization` with the range of the method's own training images when it records one (a model
// trained with this version), else as it is (the shipped models' range).
StainNormalization with_method_range(StainNormalization normalization, const infer::Segmenter& method);

}  // namespace nucleisam::cli
