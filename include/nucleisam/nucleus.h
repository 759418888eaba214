// The value type every segmentation method hands to the writers: one nucleus as a polygon plus
// the measurements the CSV table, the QuPath GeoJSON and the overlay need. Plain data in the base
// layer (no OpenCV, no LibTorch), so io writers, infer and model code share it without depending on
// each other. nuclei_from_instances (infer/nucleus.h) builds them from a label map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// The name written for a class its model does not name ("class 3"), in tables and GeoJSON alike.
inline std::string unnamed_class_name(int class_id) { return "class " + std::to_string(class_id); }

}  // namespace nucleisam
