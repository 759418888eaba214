// Instance extraction from per-pixel maps: thresholding, hole filling, distance-transform
// watershed with a depth (dynamics) criterion, seed growing, small-object removal.
#include "nucleisam/infer/postprocess.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <queue>
#include <stdexcept>
#include <string>

#include "nucleisam/errors.h"
#include "nucleisam/relabel.h"

namespace nucleisam::infer {
namespace {

constexpr int kDx[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
constexpr int kDy[8] = {-1, -1, -1, 0, 0, 1, 1, 1};

void check_same_size(const ProbabilityMap& a, const ProbabilityMap& b, const char* what) {
  if (!a.same_size(b) || a.channels != 1 || b.channels != 1)
    throw DataError(std::string(what) + ": maps must be single-channel and the same size (" +
                    std::to_string(a.width) + "x" + std::to_string(a.height) + " vs " + std::to_string(b.width) +
                    "x" + std::to_string(b.height) + ")");
}

// Fills background components that do not touch the border and are at most max_area pixels.
// Background uses 4-connectivity, the dual of the 8-connected foreground.
void fill_small_holes(cv::Mat1b& mask, int max_area) {
  cv::Mat1b background = (mask == 0);
  cv::Mat1i labels;
  cv::Mat stats, centroids;
  int n = cv::connectedComponentsWithStats(background, labels, stats, centroids, 4, CV_32S);
  std::vector<char> fill(static_cast<size_t>(n), 0);
  for (int i = 1; i < n; ++i) {
    int x = stats.at<int>(i, cv::CC_STAT_LEFT), y = stats.at<int>(i, cv::CC_STAT_TOP);
    int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    bool touches_border = x == 0 || y == 0 || x + w == mask.cols || y + h == mask.rows;
    fill[i] = !touches_border && stats.at<int>(i, cv::CC_STAT_AREA) <= max_area;
  }
  for (int y = 0; y < mask.rows; ++y)
    for (int x = 0; x < mask.cols; ++x)
      if (fill[labels(y, x)]) mask(y, x) = 255;
}

struct RegionForest {
  std::vector<int> parent;
  std::vector<float> peak;
  int make(float p) {
    parent.push_back(static_cast<int>(parent.size()));
    peak.push_back(p);
    return parent.back();
  }
  int find(int r) {
    while (parent[r] != r) {
      parent[r] = parent[parent[r]];
      r = parent[r];
    }
    return r;
  }
};

// Flooding from the highest distance down. A pixel with no labelled neighbour starts a region
// (a local maximum). Where regions meet at level d, a region whose peak is less than `depth`
// above d is absorbed by the highest neighbouring region; deeper ones stay separate for good.
LabelMap split_by_distance(const cv::Mat1b& mask, float depth) {
  // Zero margin: a blob cut by the tile edge is measured against that edge, not infinity.
  cv::Mat1b padded;
  cv::copyMakeBorder(mask, padded, 1, 1, 1, 1, cv::BORDER_CONSTANT, 0);
  cv::Mat1f dist_padded;
  cv::distanceTransform(padded, dist_padded, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  cv::Mat1f dist = dist_padded(cv::Rect(1, 1, mask.cols, mask.rows));

  const int w = mask.cols, h = mask.rows;
  std::vector<int> order;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (mask(y, x)) order.push_back(y * w + x);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return dist(a / w, a % w) > dist(b / w, b % w); });

  std::vector<int> region(static_cast<size_t>(w) * h, -1);
  RegionForest forest;
  std::vector<int> roots;
  for (int p : order) {
    const int px = p % w, py = p / w;
    const float level = dist(py, px);
    roots.clear();
    // The pixel joins the region of its highest labelled neighbour (steepest ascent), so basin
    // borders follow the saddle line instead of creeping along the flat rim of a neighbour.
    int uphill = -1;
    float uphill_level = 0;
    for (int k = 0; k < 8; ++k) {
      int nx = px + kDx[k], ny = py + kDy[k];
      if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
      int r = region[ny * w + nx];
      if (r < 0) continue;
      r = forest.find(r);
      if (std::find(roots.begin(), roots.end(), r) == roots.end()) roots.push_back(r);
      if (uphill < 0 || dist(ny, nx) > uphill_level) {
        uphill = r;
        uphill_level = dist(ny, nx);
      }
    }
    if (roots.empty()) {
      region[p] = forest.make(level);
      continue;
    }
    std::sort(roots.begin(), roots.end(), [&](int a, int b) {
      return forest.peak[a] != forest.peak[b] ? forest.peak[a] > forest.peak[b] : a < b;
    });
    const int main = roots[0];
    for (size_t i = 1; i < roots.size(); ++i)
      if (forest.peak[roots[i]] - level < depth) forest.parent[roots[i]] = main;
    region[p] = forest.find(uphill);
  }

  LabelMap out(h, w);
  for (size_t i = 0; i < region.size(); ++i)
    if (region[i] >= 0) out.data[i] = forest.find(region[i]) + 1;
  return out;
}

LabelMap components(const cv::Mat1b& mask) {
  cv::Mat1i labels;
  cv::connectedComponents(mask, labels, 8, CV_32S);
  LabelMap out(mask.rows, mask.cols);
  for (int y = 0; y < mask.rows; ++y) std::copy(labels[y], labels[y] + mask.cols, out.row(y));
  return out;
}

}  // namespace

LabelMap remove_small_instances(const LabelMap& instances, int min_area) {
  LabelMap out = instances;
  for (int32_t& v : out.data) v = std::max(v, 0);  // negative labels are background here
  const std::vector<int32_t> old_ids = relabel_consecutive(out, "", RelabelOrder::first_seen);
  std::vector<int64_t> area(old_ids.size() + 1, 0);
  for (int32_t v : out.data) ++area[v];
  bool dropped = false;
  for (int32_t& v : out.data)
    if (v > 0 && area[v] < min_area) {
      v = 0;
      dropped = true;
    }
  if (dropped) relabel_consecutive(out, "", RelabelOrder::first_seen);
  return out;
}

LabelMap instances_from_foreground(const ProbabilityMap& foreground, const ForegroundSplitOptions& options) {
  if (foreground.channels != 1) throw DataError("foreground map must have one channel");
  if (foreground.empty()) return LabelMap(foreground.height, foreground.width);
  cv::Mat1b mask(foreground.height, foreground.width);
  for (int y = 0; y < foreground.height; ++y) {
    const float* src = foreground.row(y);
    for (int x = 0; x < foreground.width; ++x) mask(y, x) = src[x] > options.threshold ? 255 : 0;
  }
  if (options.max_hole_area > 0) fill_small_holes(mask, options.max_hole_area);
  LabelMap labels = options.split_depth > 0 ? split_by_distance(mask, options.split_depth) : components(mask);
  return remove_small_instances(labels, std::max(options.min_area, 1));
}

LabelMap watershed_from_markers(const ProbabilityMap& elevation, const LabelMap& markers, const Mask& mask) {
  if (!elevation.same_size(markers) || !elevation.same_size(mask) || elevation.channels != 1 || mask.channels != 1)
    throw DataError("watershed: elevation, markers and mask must be single-channel and the same size");
  const int w = elevation.width, h = elevation.height;
  LabelMap out = markers;
  struct Entry {
    float level;
    int64_t order;
    int pixel;
    int32_t label;
    bool operator>(const Entry& o) const { return level != o.level ? level > o.level : order > o.order; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  int64_t order = 0;
  auto push_neighbours = [&](int p, int32_t label) {
    const int px = p % w, py = p / w;
    for (int k = 0; k < 8; ++k) {
      int nx = px + kDx[k], ny = py + kDy[k];
      if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
      int q = ny * w + nx;
      if (out.data[q] == 0 && mask.data[q]) queue.push({elevation.data[q], order++, q, label});
    }
  };
  for (int p = 0; p < w * h; ++p)
    if (out.data[p] > 0) push_neighbours(p, out.data[p]);
  while (!queue.empty()) {
    Entry e = queue.top();
    queue.pop();
    if (out.data[e.pixel] != 0) continue;
    out.data[e.pixel] = e.label;
    push_neighbours(e.pixel, e.label);
  }
  return out;
}

LabelMap instances_from_three_class(const ProbabilityMap& interior, const ProbabilityMap& boundary,
                                    const ThreeClassOptions& options) {
  check_same_size(interior, boundary, "three-class postprocessing");
  const int w = interior.width, h = interior.height;
  cv::Mat1b seeds(h, w, uchar(0));
  Mask foreground(h, w);
  for (size_t i = 0; i < interior.data.size(); ++i) {
    float in = interior.data[i], bd = boundary.data[i] * options.boundary_boost;
    float bg = 1.0f - interior.data[i] - boundary.data[i];
    if (in >= bd && in >= bg) seeds.data[i] = 255;
    if (in >= bg || bd >= bg) foreground.data[i] = 1;
  }
  LabelMap labels = remove_small_instances(components(seeds), std::max(options.min_interior_area, 1));

  // Breadth-first growth, one ring per step, so max_growth bounds the distance in pixels.
  std::vector<int> frontier;
  for (int p = 0; p < w * h; ++p)
    if (labels.data[p] > 0) frontier.push_back(p);
  for (int step = 0; step < options.max_growth && !frontier.empty(); ++step) {
    std::vector<int> next;
    for (int p : frontier) {
      const int px = p % w, py = p / w;
      for (int k = 0; k < 8; ++k) {
        int nx = px + kDx[k], ny = py + kDy[k];
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        int q = ny * w + nx;
        if (labels.data[q] == 0 && foreground.data[q]) {
          labels.data[q] = labels.data[p];
          next.push_back(q);
        }
      }
    }
    frontier.swap(next);
  }
  return options.min_area > 1 ? remove_small_instances(labels, options.min_area) : labels;
}

}  // namespace nucleisam::infer
