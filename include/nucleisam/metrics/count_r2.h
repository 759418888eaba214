// Coefficient of determination of nucleus counts (CoNIC's regression task): per class, R^2 of the
// predicted against the true per-image counts, then the mean over classes.
#pragma once

#include <cstdint>
#include <vector>

namespace nucleisam::metrics {

// R^2 = 1 - sum (y - y_hat)^2 / sum (y - mean(y))^2, as sklearn.metrics.r2_score: when all true
// values are equal it is 1 for a perfect prediction and 0 otherwise; NaN for fewer than 2 values.
// Throws DataError when the lengths differ.
double r2_score(const std::vector<double>& truth, const std::vector<double>& predicted);

class CountR2 {
 public:
  explicit CountR2(int num_classes);
  // Counts by class - 1 for one image.
  void add_image(const std::vector<int64_t>& gt_counts, const std::vector<int64_t>& pred_counts);
  double r2(int c) const;   // class c in 1..C
  double mean_r2() const;   // mean over classes (NaN if any class is NaN, as numpy's mean)
  int num_classes() const { return num_classes_; }

 private:
  int num_classes_;
  std::vector<std::vector<double>> gt_, pred_;  // by class - 1, one value per image
};

}  // namespace nucleisam::metrics
