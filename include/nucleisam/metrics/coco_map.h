// COCO-style mean average precision for instance masks, accumulated over images the way
// pycocotools' COCOeval (iouType "segm", area range "all") does: per category and IoU threshold,
// detections of all images are pooled, sorted by score, and precision is read at 101 recall points
// from its monotone envelope. Definitions and differences: docs/metrics.md.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "nucleisam/metrics/overlap.h"

namespace nucleisam::metrics {

class CocoAveragePrecision {
 public:
  static constexpr int kIouThresholds = 10;  // 0.50:0.05:0.95
  static constexpr int kRecallPoints = 101;  // 0:0.01:1
  static const std::array<double, kIouThresholds>& iou_thresholds();
  static const std::array<double, kRecallPoints>& recall_points();

  // Categories are 1..num_categories (use 1 with every instance in category 1 for class-agnostic
  // AP). max_detections: per image and category, highest scores kept; 0 keeps all. COCO's default
  // of 100 truncates dense nucleus tiles, so callers should say which limit they used.
  explicit CocoAveragePrecision(int num_categories, int max_detections = 0);

  // One image. gt_category / pred_category / pred_score are by dense index of `o` (see
  // by_dense_index). Instances of category 0 (unclassified) take no part. Throws DataError for a
  // category outside 0..num_categories or a size mismatch.
  void add_image(const InstanceOverlap& o, const std::vector<int>& gt_category,
                 const std::vector<int>& pred_category, const std::vector<double>& pred_score);

  struct Result {
    // Per category (index c - 1): AP averaged over the 10 thresholds, AP at 0.5 and at 0.75;
    // NaN for a category without ground truth (COCO marks it -1 and leaves it out of the mean).
    std::vector<double> ap, ap50, ap75;
    // Means over the categories that have ground truth; NaN when none has.
    double map = 0, map50 = 0, map75 = 0;
    // precision[c][t][r]: interpolated precision (empty for absent categories).
    std::vector<std::vector<std::array<double, kRecallPoints>>> precision;
  };
  Result result() const;

  int max_detections() const { return max_detections_; }

 private:
  struct Detection {
    double score;
    uint16_t matched;  // bit t set: a true positive at threshold t
  };
  int num_categories_;
  int max_detections_;
  std::vector<std::vector<Detection>> detections_;  // by category - 1, in image order
  std::vector<int64_t> gt_counts_;                  // by category - 1
};

}  // namespace nucleisam::metrics
