// The per-nucleus CSV table written beside every segmentation: one row per nucleus with its
// label-map id, class, centroid, area, bounding box and score (columns in kNucleusTableHeader).
#pragma once

#include <string>
#include <vector>

#include "nucleisam/nucleus.h"

namespace nucleisam::io {

// id: label-map id; class: class id (0 unclassified); class_name: "" when unclassified;
// centroid in image coordinates (pixel centres at +0.5); area in pixels; bbox_* half-open pixel box.
inline constexpr const char* kNucleusTableHeader =
    "id,class,class_name,centroid_x,centroid_y,area,bbox_x,bbox_y,bbox_width,bbox_height,score";

// CSV text (RFC 4180 quoting for class names with commas, quotes or newlines).
std::string nucleus_table_csv(const std::vector<Nucleus>& nuclei);
// Writes nucleus_table_csv(nuclei) atomically.
void write_nucleus_table(const std::string& path, const std::vector<Nucleus>& nuclei);
// Reads a table written by write_nucleus_table (polygons are not in the table: left empty).
// Throws IoError naming the path, the line and the cause for a malformed file.
std::vector<Nucleus> read_nucleus_table(const std::string& path);

}  // namespace nucleisam::io
