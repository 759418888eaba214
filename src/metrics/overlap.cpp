// One pass over two instance maps -> areas and sparse intersection counts (see overlap.h).
#include "nucleisam/metrics/overlap.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "nucleisam/errors.h"

namespace nucleisam::metrics {
namespace {

// Labels above this go through a sorted list instead of a direct lookup table (a table for
// int32 labels up to 2^31 would cost 8 GiB).
constexpr int32_t kLookupTableLimit = 1 << 24;

struct DenseMap {
  std::vector<int32_t> labels;  // ascending, no 0
  std::vector<int32_t> index;   // per pixel: dense index + 1, 0 for background
};

DenseMap densify(const LabelMap& map, const char* which) {
  DenseMap d;
  int32_t max_label = 0;
  for (int32_t v : map.data) {
    if (v < 0)
      throw DataError(std::string(which) + " instance map has a negative label (" + std::to_string(v) + ")");
    max_label = std::max(max_label, v);
  }
  d.index.resize(map.data.size());
  if (max_label <= kLookupTableLimit) {
    std::vector<int32_t> table(static_cast<size_t>(max_label) + 1, 0);
    for (int32_t v : map.data) table[v] = 1;
    int32_t next = 0;
    for (int32_t v = 1; v <= max_label; ++v)
      if (table[v]) {
        d.labels.push_back(v);
        table[v] = ++next;
      }
    table[0] = 0;
    for (size_t i = 0; i < map.data.size(); ++i) d.index[i] = table[map.data[i]];
    return d;
  }
  d.labels = map.data;
  std::sort(d.labels.begin(), d.labels.end());
  d.labels.erase(std::unique(d.labels.begin(), d.labels.end()), d.labels.end());
  if (!d.labels.empty() && d.labels.front() == 0) d.labels.erase(d.labels.begin());
  // Instances are spatially coherent: remember the last label to skip most binary searches.
  int32_t last_label = 0, last_index = 0;
  for (size_t i = 0; i < map.data.size(); ++i) {
    int32_t v = map.data[i];
    if (v != last_label) {
      last_label = v;
      last_index = v == 0 ? 0
                          : static_cast<int32_t>(std::lower_bound(d.labels.begin(), d.labels.end(), v) -
                                                 d.labels.begin()) +
                                1;
    }
    d.index[i] = last_index;
  }
  return d;
}

std::string size_text(const LabelMap& m) {
  return std::to_string(m.width) + "x" + std::to_string(m.height) +
         (m.channels != 1 ? "x" + std::to_string(m.channels) : std::string());
}

}  // namespace

InstanceOverlap instance_overlap(const LabelMap& gt, const LabelMap& pred) {
  if (gt.channels != 1 || pred.channels != 1 || !gt.same_size(pred))
    throw DataError("ground truth is " + size_text(gt) + " but prediction is " + size_text(pred) +
                    " (instance maps must be single-channel and of the same size)");
  DenseMap g = densify(gt, "ground-truth");
  DenseMap p = densify(pred, "predicted");

  InstanceOverlap o;
  o.gt_labels = std::move(g.labels);
  o.pred_labels = std::move(p.labels);
  o.gt_areas.assign(o.gt_labels.size(), 0);
  o.pred_areas.assign(o.pred_labels.size(), 0);
  o.pixels = static_cast<int64_t>(gt.data.size());

  std::vector<int64_t> gt_x(o.gt_labels.size(), 0), gt_y(gt_x), pred_x(o.pred_labels.size(), 0),
      pred_y(pred_x);

  // Intersections keyed by gt * n_pred + pred. Pixels of one pair come in runs along rows, so a
  // run is flushed into the hash map once instead of per pixel.
  const uint64_t n_pred = o.pred_labels.size();
  std::unordered_map<uint64_t, int64_t> pairs;
  pairs.reserve(o.gt_labels.size() * 2 + 16);
  uint64_t run_key = 0;
  int64_t run_length = 0;
  const size_t width = static_cast<size_t>(gt.width);
  for (size_t i = 0, x = 0, y = 0; i < g.index.size(); ++i, ++x) {
    if (x == width) x = 0, ++y;
    const int32_t a = g.index[i], b = p.index[i];
    if (a) {
      ++o.gt_areas[a - 1];
      gt_x[a - 1] += static_cast<int64_t>(x);
      gt_y[a - 1] += static_cast<int64_t>(y);
    }
    if (b) {
      ++o.pred_areas[b - 1];
      pred_x[b - 1] += static_cast<int64_t>(x);
      pred_y[b - 1] += static_cast<int64_t>(y);
    }
    if (a && b) {
      const uint64_t key = static_cast<uint64_t>(a - 1) * n_pred + static_cast<uint64_t>(b - 1);
      if (run_length && key == run_key) {
        ++run_length;
      } else {
        if (run_length) pairs[run_key] += run_length;
        run_key = key;
        run_length = 1;
      }
    }
  }
  if (run_length) pairs[run_key] += run_length;
  auto centroids = [](const std::vector<int64_t>& area, const std::vector<int64_t>& sx,
                      const std::vector<int64_t>& sy) {
    std::vector<InstanceOverlap::Point> c(area.size());
    for (size_t k = 0; k < c.size(); ++k)
      c[k] = {static_cast<double>(sx[k]) / static_cast<double>(area[k]),
              static_cast<double>(sy[k]) / static_cast<double>(area[k])};
    return c;
  };
  o.gt_centroids = centroids(o.gt_areas, gt_x, gt_y);
  o.pred_centroids = centroids(o.pred_areas, pred_x, pred_y);

  o.cells.reserve(pairs.size());
  for (const auto& [key, count] : pairs)
    o.cells.push_back({static_cast<int>(key / n_pred), static_cast<int>(key % n_pred), count});
  std::sort(o.cells.begin(), o.cells.end(),
            [](const InstanceOverlap::Cell& x, const InstanceOverlap::Cell& y) {
              return x.gt != y.gt ? x.gt < y.gt : x.pred < y.pred;
            });
  o.row_begin.assign(o.gt_labels.size() + 1, 0);
  for (const auto& c : o.cells) ++o.row_begin[c.gt + 1];
  for (size_t k = 0; k < o.gt_labels.size(); ++k) o.row_begin[k + 1] += o.row_begin[k];
  return o;
}

InstanceOverlap InstanceOverlap::restricted(const std::vector<bool>& keep_gt,
                                            const std::vector<bool>& keep_pred) const {
  if (keep_gt.size() != gt_count() || keep_pred.size() != pred_count())
    throw DataError("instance selection does not match the overlap's instance counts");
  std::vector<int> new_gt(gt_count(), -1), new_pred(pred_count(), -1);
  InstanceOverlap r;
  r.pixels = pixels;
  for (size_t k = 0; k < gt_count(); ++k)
    if (keep_gt[k]) {
      new_gt[k] = static_cast<int>(r.gt_labels.size());
      r.gt_labels.push_back(gt_labels[k]);
      r.gt_areas.push_back(gt_areas[k]);
      r.gt_centroids.push_back(gt_centroids[k]);
    }
  for (size_t k = 0; k < pred_count(); ++k)
    if (keep_pred[k]) {
      new_pred[k] = static_cast<int>(r.pred_labels.size());
      r.pred_labels.push_back(pred_labels[k]);
      r.pred_areas.push_back(pred_areas[k]);
      r.pred_centroids.push_back(pred_centroids[k]);
    }
  r.row_begin.assign(r.gt_labels.size() + 1, 0);
  for (const auto& c : cells)
    if (new_gt[c.gt] >= 0 && new_pred[c.pred] >= 0) {
      r.cells.push_back({new_gt[c.gt], new_pred[c.pred], c.intersection});
      ++r.row_begin[new_gt[c.gt] + 1];
    }
  for (size_t k = 0; k < r.gt_labels.size(); ++k) r.row_begin[k + 1] += r.row_begin[k];
  return r;
}

namespace {
template <typename T>
std::vector<T> reorder(const std::vector<int32_t>& labels, const std::vector<T>& by_label, const char* what) {
  std::vector<T> out(labels.size());
  for (size_t k = 0; k < labels.size(); ++k) {
    const size_t slot = static_cast<size_t>(labels[k]) - 1;
    if (slot >= by_label.size())
      throw DataError(std::string(what) + " has " + std::to_string(by_label.size()) +
                      " entries but the instance map has label " + std::to_string(labels[k]));
    out[k] = by_label[slot];
  }
  return out;
}
}  // namespace

std::vector<int> by_dense_index(const std::vector<int32_t>& labels, const std::vector<int>& by_label,
                                const char* what) {
  return reorder(labels, by_label, what);
}
std::vector<double> by_dense_index(const std::vector<int32_t>& labels, const std::vector<double>& by_label,
                                   const char* what) {
  return reorder(labels, by_label, what);
}

}  // namespace nucleisam::metrics
