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

// The outline of the largest 4-connected part of `id`, holes filled, as a ring that is simple by
// construction (QuPath and GEOS reject self-intersecting or self-touching rings; tracing through
// pixel centres with findContours gives one whenever a part narrows to a single pixel or two
// pixels touch only at a corner).
//
// 1. Keep the largest 4-connected part and fill its holes (background 4-connected to nothing
//    outside). Every background pixel next to the part is then outside, so no 2x2 block holds two
//    part pixels that touch only at a corner: each pixel corner is visited at most once by the
//    boundary, which is therefore one simple closed curve along pixel edges.
// 2. Walk that curve (part on the right, one outgoing edge per corner) and take the midpoint of
//    each unit edge. Consecutive midpoints are joined along the edge's line or by a half-diagonal
//    cutting a corner inside one pixel square; such cuts never cross, so the midpoint ring stays
//    simple, has positive area even for one pixel, and loses the staircase of the pixel edges.
// 3. Drop midpoints collinear with their neighbours (exact: coordinates are multiples of 1/2).
std::vector<ContourPoint> outer_ring(const LabelMap& m, int32_t id, const InstanceStats& s) {
  // Crop with a one-pixel empty margin so the outside is one connected background.
  const int w = s.max_x - s.min_x + 1, h = s.max_y - s.min_y + 1;
  cv::Mat1b mask(h + 2, w + 2, uchar(0));
  for (int y = 0; y < h; ++y) {
    const int32_t* row = m.row(s.min_y + y) + s.min_x;
    for (int x = 0; x < w; ++x)
      if (row[x] == id) mask(y + 1, x + 1) = 255;
  }
  const int origin_x = s.min_x - 1, origin_y = s.min_y - 1;

  cv::Mat1i parts;
  cv::Mat stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, parts, stats, centroids, 4, CV_32S);
  int best = 1;  // labels follow raster order, so ties keep the first part
  for (int i = 2; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) > stats.at<int>(best, cv::CC_STAT_AREA)) best = i;
  // 0 = outside, 255 = the part; everything else (other parts, holes) becomes the part when it is
  // not reachable from the outside through 4-connected non-part pixels.
  cv::Mat1b region(mask.size(), uchar(128));
  region.setTo(255, parts == best);
  cv::floodFill(region, cv::Point(0, 0), 0, nullptr, 0, 0, 4);
  region.setTo(255, region == 128);

  // Directed pixel edges with the part on the right (image coordinates, y down); corner (x, y)
  // has index y * cw + x. One outgoing edge per corner (step 1).
  const int cw = region.cols + 1;
  std::vector<int> next(static_cast<size_t>(cw) * (region.rows + 1), -1);
  auto inside = [&](int x, int y) {
    return x >= 0 && y >= 0 && x < region.cols && y < region.rows && region(y, x) == 255;
  };
  int start = -1;
  for (int y = 0; y < region.rows; ++y)
    for (int x = 0; x < region.cols; ++x) {
      if (!inside(x, y)) continue;
      if (!inside(x, y - 1)) next[y * cw + x] = y * cw + x + 1;                      // top: rightwards
      if (!inside(x + 1, y)) next[y * cw + x + 1] = (y + 1) * cw + x + 1;            // right: down
      if (!inside(x, y + 1)) next[(y + 1) * cw + x + 1] = (y + 1) * cw + x;          // bottom: left
      if (!inside(x - 1, y)) next[(y + 1) * cw + x] = y * cw + x;                    // left: up
      if (start < 0) start = y * cw + x;  // top-left corner of the first pixel: on the boundary
    }
  if (start < 0) return {};

  // Midpoints in doubled coordinates (integers).
  std::vector<std::pair<int, int>> mid;
  for (int c = start;;) {
    const int d = next[c];
    mid.push_back({(c % cw) + (d % cw), (c / cw) + (d / cw)});
    c = d;
    if (c == start) break;
  }
  std::vector<ContourPoint> ring;
  const size_t k = mid.size();
  for (size_t i = 0; i < k; ++i) {
    const auto& a = mid[(i + k - 1) % k];
    const auto& b = mid[i];
    const auto& c = mid[(i + 1) % k];
    const long cross = static_cast<long>(b.first - a.first) * (c.second - b.second) -
                       static_cast<long>(b.second - a.second) * (c.first - b.first);
    if (cross == 0) continue;  // on a straight run (the walk never turns back on itself)
    ring.push_back({static_cast<float>(origin_x) + 0.5f * static_cast<float>(b.first),
                    static_cast<float>(origin_y) + 0.5f * static_cast<float>(b.second)});
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
        n.class_name = unnamed_class_name(n.class_id);
    }
    if (!scores.empty()) n.score = scores[id - 1];
    n.polygon = outer_ring(instances, id, s);
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace nucleisam::infer
