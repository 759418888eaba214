// Outline overlay for visual checks of a segmentation.
#include "nucleisam/io/overlay.h"

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "nucleisam/errors.h"
#include "nucleisam/io/geojson.h"

namespace nucleisam::io {

Image draw_nucleus_overlay(const Image& image, const std::vector<Nucleus>& nuclei) {
  if (image.channels != 3) throw DataError("overlay: expected an RGB image");
  Image out = image;
  if (out.empty()) return out;
  cv::Mat canvas(out.height, out.width, CV_8UC3, out.data.data());
  std::vector<cv::Point> points;
  for (const Nucleus& n : nuclei) {
    points.clear();
    // Polygon vertices are pixel centres (x + 0.5): back to the pixel grid.
    for (const auto& p : n.polygon)
      points.emplace_back(static_cast<int>(std::floor(p.x)), static_cast<int>(std::floor(p.y)));
    if (points.empty()) continue;
    auto c = class_colour(n.class_id);
    cv::polylines(canvas, points, true, cv::Scalar(c[0], c[1], c[2]), 1, cv::LINE_8);
  }
  return out;
}

}  // namespace nucleisam::io
