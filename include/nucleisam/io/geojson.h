// QuPath-compatible GeoJSON for nuclei: a FeatureCollection with one "detection" per nucleus,
// Polygon geometry in full-resolution pixel coordinates (origin top-left), the class as a QuPath
// classification and the label-map id, area and score as measurements. QuPath 0.4 and later read
// it with File > Import objects from file, or by dragging the file onto the open image.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
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

// One Feature of a streamed FeatureCollection (compact, no newline): the nucleus' polygon as is,
// a classification with name and colour for every nucleus (unclassified ones are "Nucleus" in
// class 0's colour, since QuPath needs both), and `measurements` in the given order.
std::string qupath_feature(const Nucleus& nucleus, const std::vector<std::pair<std::string, double>>& measurements);

// The Polygon and MultiPolygon geometries of a GeoJSON file (a FeatureCollection, a Feature or a
// bare geometry), each as its rings (outer first, then holes). IoError naming the path when it is
// not such a file.
std::vector<std::vector<std::vector<ContourPoint>>> read_geojson_polygons(const std::string& path);

}  // namespace nucleisam::io
