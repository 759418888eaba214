// R^2 of per-image nucleus counts with sklearn's r2_score conventions (see count_r2.h).
#include "nucleisam/metrics/count_r2.h"

#include <limits>
#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::metrics {

double r2_score(const std::vector<double>& truth, const std::vector<double>& predicted) {
  if (truth.size() != predicted.size())
    throw DataError("R^2: " + std::to_string(truth.size()) + " true values but " +
                    std::to_string(predicted.size()) + " predicted");
  if (truth.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  double mean = 0;
  for (double v : truth) mean += v;
  mean /= static_cast<double>(truth.size());
  double residual = 0, total = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    residual += (truth[i] - predicted[i]) * (truth[i] - predicted[i]);
    total += (truth[i] - mean) * (truth[i] - mean);
  }
  // sklearn (force_finite=True): a constant truth gives 1 for a perfect prediction, else 0.
  if (total == 0) return residual == 0 ? 1.0 : 0.0;
  return 1.0 - residual / total;
}

CountR2::CountR2(int num_classes) : num_classes_(num_classes), gt_(num_classes), pred_(num_classes) {
  if (num_classes < 1) throw DataError("count R^2 needs at least one class");
}

void CountR2::add_image(const std::vector<int64_t>& gt_counts, const std::vector<int64_t>& pred_counts) {
  if (gt_counts.size() != static_cast<size_t>(num_classes_) ||
      pred_counts.size() != static_cast<size_t>(num_classes_))
    throw DataError("count R^2: expected " + std::to_string(num_classes_) + " class counts per image");
  for (int c = 0; c < num_classes_; ++c) {
    gt_[c].push_back(static_cast<double>(gt_counts[c]));
    pred_[c].push_back(static_cast<double>(pred_counts[c]));
  }
}

double CountR2::r2(int c) const {
  if (c < 1 || c > num_classes_) throw DataError("count R^2: class " + std::to_string(c) + " out of range");
  return r2_score(gt_[c - 1], pred_[c - 1]);
}

double CountR2::mean_r2() const {
  double sum = 0;
  for (int c = 1; c <= num_classes_; ++c) sum += r2(c);
  return sum / num_classes_;
}

}  // namespace nucleisam::metrics
