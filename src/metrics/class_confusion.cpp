// Per-class pixel confusion, IoU, Dice and mIoU (see class_confusion.h).
#include "nucleisam/metrics/class_confusion.h"

#include <cmath>
#include <limits>
#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::metrics {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

ClassConfusion::ClassConfusion(int num_classes) : num_classes_(num_classes) {
  if (num_classes < 1) throw DataError("class confusion needs at least one class");
  counts_.assign(static_cast<size_t>(num_classes + 1) * (num_classes + 1), 0);
}

void ClassConfusion::check_class(int c, const char* which) const {
  if (c < 0 || c > num_classes_)
    throw DataError(std::string(which) + " class " + std::to_string(c) + " outside 0.." +
                    std::to_string(num_classes_));
}

void ClassConfusion::add(const LabelMap& gt, const LabelMap& pred) {
  if (gt.channels != 1 || pred.channels != 1 || !gt.same_size(pred))
    throw DataError("class maps must be single-channel and of the same size");
  for (size_t i = 0; i < gt.data.size(); ++i) {
    check_class(gt.data[i], "ground-truth");
    check_class(pred.data[i], "predicted");
    ++at(gt.data[i], pred.data[i]);
  }
}

void ClassConfusion::add(const InstanceOverlap& o, const std::vector<int>& gt_class,
                         const std::vector<int>& pred_class) {
  if (gt_class.size() != o.gt_count() || pred_class.size() != o.pred_count())
    throw DataError("class confusion: classes do not match the number of instances");
  for (int c : gt_class) check_class(c, "ground-truth");
  for (int c : pred_class) check_class(c, "predicted");
  const int n = num_classes_ + 1;
  std::vector<int64_t> local(static_cast<size_t>(n) * n, 0);
  // Foreground x foreground from the intersections; each class's remaining area then lies on the
  // other map's background (or on an instance of class 0, which is background too).
  for (const auto& c : o.cells) {
    const int a = gt_class[c.gt], b = pred_class[c.pred];
    if (a > 0 && b > 0) local[static_cast<size_t>(a) * n + b] += c.intersection;
  }
  std::vector<int64_t> gt_area(n, 0), pred_area(n, 0);
  for (size_t g = 0; g < o.gt_count(); ++g) gt_area[gt_class[g]] += o.gt_areas[g];
  for (size_t p = 0; p < o.pred_count(); ++p) pred_area[pred_class[p]] += o.pred_areas[p];
  int64_t assigned = 0;
  for (int a = 1; a < n; ++a) {
    int64_t row = 0;
    for (int b = 1; b < n; ++b) row += local[static_cast<size_t>(a) * n + b];
    local[static_cast<size_t>(a) * n] = gt_area[a] - row;
    assigned += gt_area[a];
  }
  for (int b = 1; b < n; ++b) {
    int64_t col = 0;
    for (int a = 1; a < n; ++a) col += local[static_cast<size_t>(a) * n + b];
    local[b] = pred_area[b] - col;
    assigned += local[b];
  }
  local[0] = o.pixels - assigned;
  for (size_t k = 0; k < local.size(); ++k) counts_[k] += local[k];
}

double ClassConfusion::iou(int c) const {
  check_class(c, "requested");
  int64_t row = 0, col = 0;
  for (int k = 0; k <= num_classes_; ++k) {
    row += count(c, k);
    col += count(k, c);
  }
  const int64_t uni = row + col - count(c, c);
  return uni == 0 ? kNaN : static_cast<double>(count(c, c)) / static_cast<double>(uni);
}

double ClassConfusion::dice(int c) const {
  check_class(c, "requested");
  int64_t row = 0, col = 0;
  for (int k = 0; k <= num_classes_; ++k) {
    row += count(c, k);
    col += count(k, c);
  }
  return row + col == 0 ? kNaN : 2.0 * static_cast<double>(count(c, c)) / static_cast<double>(row + col);
}

double ClassConfusion::mean_iou() const {
  double sum = 0;
  int n = 0;
  for (int c = 1; c <= num_classes_; ++c)
    if (double v = iou(c); !std::isnan(v)) {
      sum += v;
      ++n;
    }
  return n ? sum / n : kNaN;
}

double ClassConfusion::mean_dice() const {
  double sum = 0;
  int n = 0;
  for (int c = 1; c <= num_classes_; ++c)
    if (double v = dice(c); !std::isnan(v)) {
      sum += v;
      ++n;
    }
  return n ? sum / n : kNaN;
}

}  // namespace nucleisam::metrics
