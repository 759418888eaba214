// QuPath-compatible GeoJSON for nuclei: a FeatureCollection with one "detection" per nucleus,
// Polygon geometry in full-resolution pixel coordinates (origin top-left), the class as a QuPath
// classification and the label-map id, area and score as measurements. QuPath 0.4 and later read
// it with File > Import objects from file, or by dragging the file onto the open image.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/nucleus.h"

namespace nucleisam::io {

// Display colour of a class id, shared by GeoJSON classifications and overlays. Class 0
// (unclassified) is drawn green; classes 1.. cycle through a fixed palette of distinct colours.
std::array<uint8_t, 3> class_colour(int class_id);

// The GeoJSON text (compact, one line). Nuclei without a polygon are skipped.
std::string qupath_geojson(const std::vector<Nucleus>& nuclei);
// Writes qupath_geojson(nuclei) atomically; throws IoError naming the path.
void write_qupath_geojson(const std::string& path, const std::vector<Nucleus>& nuclei);

}  // namespace nucleisam::io
