// Label map -> polygons and measurements (the Nucleus list every writer consumes).
#include "nucleisam/infer/nucleus.h"

#include <algorithm>
#include <map>
#include <opencv2/imgproc.hpp>
#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::infer {
namespace {

struct InstanceStats {
  int64_t count = 0;
  double sum_x = 0, sum_y = 0;
  int min_x = 0, min_y = 0, max_x = -1, max_y = -1;
};

// One pass over the map; runs of equal ids (the common case) skip the map lookup.
std::map<int32_t, InstanceStats> collect_stats(const LabelMap& m) {
  std::map<int32_t, InstanceStats> stats;
  for (int y = 0; y < m.height; ++y) {
    const int32_t* row = m.row(y);
    int32_t last_id = 0;
    InstanceStats* s = nullptr;
    for (int x = 0; x < m.width; ++x) {
      int32_t id = row[x];
      if (id <= 0) continue;
      if (id != last_id || !s) {
        s = &stats[id];
        last_id = id;
        if (s->count == 0) {
          s->min_x = s->max_x = x;
          s->min_y = s->max_y = y;
        }
      }
      ++s->count;
      s->sum_x += x;
      s->sum_y += y;
      s->min_x = std::min(s->min_x, x);
      s->max_x = std::max(s->max_x, x);
      s->min_y = std::min(s->min_y, y);
      s->max_y = std::max(s->max_y, y);
    }
  }
  return stats;
}

// Corners of every set pixel, then their convex hull: a positive-area ring for parts that
// findContours can only describe as a point or a back-and-forth line.
std::vector<ContourPoint> pixel_corner_hull(const cv::Mat1b& part, int origin_x, int origin_y) {
  std::vector<cv::Point2f> corners;
  for (int y = 0; y < part.rows; ++y)
    for (int x = 0; x < part.cols; ++x)
      if (part(y, x)) {
        float fx = static_cast<float>(x + origin_x), fy = static_cast<float>(y + origin_y);
        corners.insert(corners.end(), {{fx, fy}, {fx + 1, fy}, {fx + 1, fy + 1}, {fx, fy + 1}});
      }
  std::vector<cv::Point2f> hull;
  cv::convexHull(corners, hull);
  std::vector<ContourPoint> ring;
  for (const auto& p : hull) ring.push_back({p.x, p.y});
  return ring;
}

std::vector<ContourPoint> outer_ring(const LabelMap& m, int32_t id, const InstanceStats& s) {
  // Crop with a one-pixel empty margin so instances touching the image border still get a
  // closed contour along that border.
  const int w = s.max_x - s.min_x + 1, h = s.max_y - s.min_y + 1;
  cv::Mat1b mask(h + 2, w + 2, uchar(0));
  for (int y = 0; y < h; ++y) {
    const int32_t* row = m.row(s.min_y + y) + s.min_x;
    for (int x = 0; x < w; ++x)
      if (row[x] == id) mask(y + 1, x + 1) = 255;
  }
  const int origin_x = s.min_x - 1, origin_y = s.min_y - 1;

  // Keep only the largest 8-connected part (findContours traces 8-connected outlines).
  cv::Mat1i parts;
  cv::Mat stats, centroids;
  int n = cv::connectedComponentsWithStats(mask, parts, stats, centroids, 8, CV_32S);
  if (n > 2) {
    int best = 1;
    for (int i = 2; i < n; ++i)
      if (stats.at<int>(i, cv::CC_STAT_AREA) > stats.at<int>(best, cv::CC_STAT_AREA)) best = i;
    mask = (parts == best);
  }

  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  const std::vector<cv::Point>* largest = nullptr;
  double largest_area = 0;
  for (const auto& c : contours) {
    double a = cv::contourArea(c);
    if (!largest || a > largest_area) {
      largest = &c;
      largest_area = a;
    }
  }
  std::vector<ContourPoint> ring;
  if (!largest || largest_area < 0.5) {
    ring = pixel_corner_hull(mask, origin_x, origin_y);
  } else {
    for (const auto& p : *largest)
      ring.push_back({static_cast<float>(p.x + origin_x) + 0.5f, static_cast<float>(p.y + origin_y) + 0.5f});
  }
  if (!ring.empty()) ring.push_back(ring.front());
  return ring;
}

}  // namespace

std::vector<Nucleus> nuclei_from_instances(const LabelMap& instances, const std::vector<int>& classes,
                                           const std::vector<float>& scores,
                                           const std::vector<std::string>& class_names) {
  auto stats = collect_stats(instances);
  if (!stats.empty()) {
    int32_t max_id = stats.rbegin()->first;
    if (!classes.empty() && classes.size() < static_cast<size_t>(max_id))
      throw DataError("instance map has id " + std::to_string(max_id) + " but only " +
                      std::to_string(classes.size()) + " class entries");
    if (!scores.empty() && scores.size() < static_cast<size_t>(max_id))
      throw DataError("instance map has id " + std::to_string(max_id) + " but only " +
                      std::to_string(scores.size()) + " scores");
  }
  std::vector<Nucleus> out;
  out.reserve(stats.size());
  for (const auto& [id, s] : stats) {
    Nucleus n;
    n.id = id;
    n.area = s.count;
    n.centroid_x = s.sum_x / s.count + 0.5;
    n.centroid_y = s.sum_y / s.count + 0.5;
    n.bbox = {s.min_x, s.min_y, s.max_x - s.min_x + 1, s.max_y - s.min_y + 1};
    if (!classes.empty()) {
      n.class_id = classes[id - 1];
      if (n.class_id > 0 && static_cast<size_t>(n.class_id) < class_names.size())
        n.class_name = class_names[n.class_id];
      else if (n.class_id > 0)
        n.class_name = "class " + std::to_string(n.class_id);
    }
    if (!scores.empty()) n.score = scores[id - 1];
    n.polygon = outer_ring(instances, id, s);
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace nucleisam::infer
