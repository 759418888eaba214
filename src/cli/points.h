// Point prompts for `nucleisam refine` (docs/method2.md): from a points file (JSON or a QuPath
// GeoJSON of point annotations) or from --point x,y,class. A library of their own, like the recipe
// parser, so that the `points` fuzz target and the tests link them without the CLI.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nucleisam/models/model_file.h"
#include "nucleisam/predict/category_sam_segmenter.h"

namespace nucleisam::cli {

// A class given by name (the model's class names, "background", "boundary"; any case) or number
// (0 background, 1..T the nucleus types, T + 1 boundary). UsageError naming `where` otherwise.
int category_of(const nlohmann::json& value, const models::ModelCard& card, const std::string& where);

// The points of a file: {"points": [{"x": .., "y": .., "class": ..}, ...]}, the bare list, or a
// GeoJSON FeatureCollection (or Feature) of Point / MultiPoint features whose
// properties.classification.name (or properties.classification) is the class. UsageError naming
// the file (and the feature or point) for anything else.
std::vector<predict::PointPrompt> read_points_file(const std::string& path, const models::ModelCard& card);

// One --point x,y,class.
predict::PointPrompt parse_point_option(const std::string& text, const models::ModelCard& card);

}  // namespace nucleisam::cli
