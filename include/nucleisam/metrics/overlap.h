// Pairwise overlap between a ground-truth and a predicted instance map, built in one pass over the
// pixels. Every metric in this module (pixel Dice/IoU, AJI, PQ, object F1, COCO mAP) derives its
// numbers from this structure, so a 1000x1000 tile is scanned once however many metrics are asked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::metrics {

struct InstanceOverlap {
  // Labels present in each map, ascending, background (0) excluded. The position of a label in
  // this list is its dense index, used everywhere below. Ascending order matters: reference
  // implementations break ties by the first (lowest) instance id.
  std::vector<int32_t> gt_labels, pred_labels;
  std::vector<int64_t> gt_areas, pred_areas;  // pixels per instance, by dense index
  // Centroid of every instance by dense index: the mean column (x) and row (y) of its pixels, pixel
  // centres at integer coordinates (cv2.moments' m10/m00 and m01/m00, HoVer-Net's inst_centroid).
  struct Point {
    double x, y;
  };
  std::vector<Point> gt_centroids, pred_centroids;

  // Non-empty intersections only, sorted by (gt, pred). The cells of ground-truth instance g are
  // cells[row_begin[g] .. row_begin[g + 1]).
  struct Cell {
    int gt;
    int pred;
    int64_t intersection;
  };
  std::vector<Cell> cells;
  std::vector<size_t> row_begin;
  int64_t pixels = 0;  // image size (needed for the background cell of pixel confusion)

  size_t gt_count() const { return gt_labels.size(); }
  size_t pred_count() const { return pred_labels.size(); }
  int64_t union_of(const Cell& c) const { return gt_areas[c.gt] + pred_areas[c.pred] - c.intersection; }
  double iou(const Cell& c) const { return static_cast<double>(c.intersection) / union_of(c); }

  // The overlap between the kept ground-truth and the kept predicted instances only (keep flags by
  // dense index). IoU between two instances does not depend on the others, so per-class metrics
  // are the class-agnostic ones applied to this restriction.
  InstanceOverlap restricted(const std::vector<bool>& keep_gt, const std::vector<bool>& keep_pred) const;
};

// Builds the overlap of two instance maps of the same size (channels == 1; 0 = background; any
// positive labels, gaps allowed). Throws DataError when sizes or channel counts differ or a label
// is negative.
InstanceOverlap instance_overlap(const LabelMap& gt, const LabelMap& pred);

// Per-instance values given by label (values[label - 1], the data::Sample convention) turned into
// values by dense index. Throws DataError naming `what` when a label has no entry.
std::vector<int> by_dense_index(const std::vector<int32_t>& labels, const std::vector<int>& by_label,
                                const char* what);
std::vector<double> by_dense_index(const std::vector<int32_t>& labels, const std::vector<double>& by_label,
                                   const char* what);

}  // namespace nucleisam::metrics
