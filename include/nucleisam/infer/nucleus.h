// The value type every segmentation method hands to the writers: one nucleus as a polygon plus
// the measurements the CSV table, the QuPath GeoJSON and the overlay need. Plain data: no OpenCV,
// no LibTorch, so io writers and future model code can share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam {

// A point in image coordinates at full resolution (level 0). Pixel (col, row) covers the square
// [col, col+1) x [row, row+1), so its centre is (col + 0.5, row + 0.5): QuPath's convention.
struct ContourPoint {
  float x = 0;
  float y = 0;
  bool operator==(const ContourPoint& o) const { return x == o.x && y == o.y; }
};

// Half-open pixel box: columns x .. x+width-1, rows y .. y+height-1.
struct PixelBox {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
  bool operator==(const PixelBox& o) const {
    return x == o.x && y == o.y && width == o.width && height == o.height;
  }
};

struct Nucleus {
  int id = 0;                         // the instance id in the label map written beside it
  std::vector<ContourPoint> polygon;  // outer contour, closed ring (last point == first point)
  double centroid_x = 0;              // mean of the pixel centres, image coordinates
  double centroid_y = 0;
  int64_t area = 0;                   // pixels carrying this id in the label map
  PixelBox bbox;                      // of those pixels
  int class_id = 0;                   // 0 = unclassified
  std::string class_name;             // "" when unclassified
  float score = 1.0f;                 // method confidence in [0, 1]; 1 when the method has none
};

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

// Number of distinct positive ids (the nucleus count the label map, CSV and GeoJSON share).
size_t count_instances(const LabelMap& instances);

}  // namespace nucleisam
