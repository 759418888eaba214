// Nuclei from an instance label map: the polygon and measurements of each instance (the Nucleus
// value type itself is in the base layer, nucleisam/nucleus.h, so io writers need not include
// infer).
#pragma once

#include <string>
#include <vector>

#include "nucleisam/nucleus.h"
#include "nucleisam/raster.h"

namespace nucleisam::infer {

// One Nucleus per instance id present in `instances` (ids <= 0 are background), sorted by id.
// classes / scores / class_names follow the data::Sample convention: element i belongs to
// instance id i+1; empty vectors mean "unclassified" / score 1 / no names. class_names is indexed
// by class id (class_names[c] names class c; index 0 is unused).
//
// Conventions (the writers and the label map must agree with each other):
// - area, centroid and bbox count every pixel of the id, so they match the label map exactly;
// - the polygon is the outer boundary (holes ignored) traced through boundary pixel centres by
//   OpenCV findContours; when an id has several disconnected parts, the polygon is the largest
//   part's (by pixel count, ties: the first in raster order) and the others appear only in the
//   label map and the measurements;
// - parts too thin for a contour with area (one pixel, a one-pixel-wide line) get the convex hull
//   of their pixels' corners, so every polygon has a positive area and QuPath accepts it.
// Throws DataError when a classes/scores vector is shorter than the largest id.
std::vector<Nucleus> nuclei_from_instances(const LabelMap& instances, const std::vector<int>& classes = {},
                                           const std::vector<float>& scores = {},
                                           const std::vector<std::string>& class_names = {});

}  // namespace nucleisam::infer
