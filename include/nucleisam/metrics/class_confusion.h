// Pixel confusion between semantic class maps (0 = background, 1..C = classes), accumulated over a
// dataset, and the per-class IoU / Dice and mIoU derived from it.
#pragma once

#include <cstdint>
#include <vector>

#include "nucleisam/metrics/overlap.h"
#include "nucleisam/raster.h"

namespace nucleisam::metrics {

class ClassConfusion {
 public:
  explicit ClassConfusion(int num_classes);

  // Class maps given directly (same size, values 0..C; DataError otherwise).
  void add(const LabelMap& gt_classes, const LabelMap& pred_classes);
  // Class maps implied by instance maps and per-instance classes (by dense index of `o`), derived
  // from the overlap without another pixel pass. Class 0 instances count as background.
  void add(const InstanceOverlap& o, const std::vector<int>& gt_class, const std::vector<int>& pred_class);

  int num_classes() const { return num_classes_; }
  int64_t count(int gt, int pred) const {
    return counts_[static_cast<size_t>(gt) * (num_classes_ + 1) + pred];
  }
  // Pooled over everything added. NaN when the class is in neither map.
  double iou(int c) const;
  double dice(int c) const;
  // Means over the foreground classes 1..C whose value is defined (background left out).
  double mean_iou() const;
  double mean_dice() const;

 private:
  int64_t& at(int gt, int pred) { return counts_[static_cast<size_t>(gt) * (num_classes_ + 1) + pred]; }
  void check_class(int c, const char* which) const;
  int num_classes_;
  std::vector<int64_t> counts_;  // (C + 1) x (C + 1), row = ground truth
};

}  // namespace nucleisam::metrics
