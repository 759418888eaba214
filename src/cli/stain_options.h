// The stain options `segment` and `refine` share: --stain-normalize off|range|match and
// --stain-reference IMAGE (nucleisam/stain.h says what each does).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

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

}  // namespace nucleisam::cli
