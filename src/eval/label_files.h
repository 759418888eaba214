// Internal parts of the label-file reader shared by the eval module's files.
#pragma once

#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::eval {

// A label map whose stem ends with this is the class map of the file without it, not an image.
extern const std::string kClassMapSuffix;

// Whether a label map has per-instance classes beside it (a class map, or a CSV whose header has a
// class column), judged without reading the maps.
bool has_class_sidecar(const std::string& label_file);

// The most frequent non-zero class of each instance 1..instance_count in `class_map` (0 when it
// has none; ties go to the lower class).
std::vector<int> majority_classes(const LabelMap& instances, int instance_count, const LabelMap& class_map);

}  // namespace nucleisam::eval
