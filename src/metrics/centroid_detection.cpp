// Centroid pairing and HoVer-Net's detection / classification scores (see centroid_detection.h).
#include "nucleisam/metrics/centroid_detection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "dense_assignment.h"
#include "nucleisam/errors.h"

namespace nucleisam::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(int64_t num, int64_t den) {
  return den == 0 ? kNaN : static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace

CentroidPairing pair_centroids(const std::vector<InstanceOverlap::Point>& gt,
                               const std::vector<InstanceOverlap::Point>& pred, double radius) {
  if (!(radius >= 0))
    throw DataError("centroid pairing radius must be >= 0 (got " + std::to_string(radius) + ")");
  CentroidPairing result;
  const int n_gt = static_cast<int>(gt.size()), n_pred = static_cast<int>(pred.size());
  std::vector<int> pred_of_gt(gt.size(), -1);
  if (n_gt > 0 && n_pred > 0) {
    auto distance = [&](int g, int p) { return std::hypot(gt[g].x - pred[p].x, gt[g].y - pred[p].y); };
    if (n_gt <= n_pred) {
      pred_of_gt = detail::assign_rows(n_gt, n_pred, distance);
    } else {  // rows must be the smaller side: assign every prediction, as scipy transposes
      const std::vector<int> gt_of_pred =
          detail::assign_rows(n_pred, n_gt, [&](int p, int g) { return distance(g, p); });
      for (int p = 0; p < n_pred; ++p) pred_of_gt[gt_of_pred[p]] = p;
    }
  }
  std::vector<char> pred_paired(pred.size(), 0);
  for (int g = 0; g < n_gt; ++g) {
    const int p = pred_of_gt[g];
    // Kept when the distance is within the radius (inclusive, as the reference's `<= radius`).
    if (p >= 0 && std::hypot(gt[g].x - pred[p].x, gt[g].y - pred[p].y) <= radius) {
      result.pairs.emplace_back(g, p);
      pred_paired[p] = 1;
    } else {
      result.unpaired_gt.push_back(g);
    }
  }
  for (int p = 0; p < n_pred; ++p)
    if (!pred_paired[p]) result.unpaired_pred.push_back(p);
  return result;
}

double CentroidDetectionCounts::f1() const {
  return ratio(2 * paired, 2 * paired + unpaired_pred + unpaired_gt);
}
double CentroidDetectionCounts::precision() const { return ratio(paired, paired + unpaired_pred); }
double CentroidDetectionCounts::recall() const { return ratio(paired, paired + unpaired_gt); }
double CentroidDetectionCounts::type_accuracy() const { return ratio(same_class, typed_pairs); }
CentroidDetectionCounts& CentroidDetectionCounts::operator+=(const CentroidDetectionCounts& o) {
  paired += o.paired;
  unpaired_pred += o.unpaired_pred;
  unpaired_gt += o.unpaired_gt;
  typed_pairs += o.typed_pairs;
  same_class += o.same_class;
  return *this;
}

double CentroidClassCounts::f1() const {
  return ratio(2 * paired_both,
               2 * paired_both + 2 * paired_pred_only + 2 * paired_gt_only + unpaired_pred + unpaired_gt);
}
CentroidClassCounts& CentroidClassCounts::operator+=(const CentroidClassCounts& o) {
  paired_both += o.paired_both;
  paired_pred_only += o.paired_pred_only;
  paired_gt_only += o.paired_gt_only;
  unpaired_pred += o.unpaired_pred;
  unpaired_gt += o.unpaired_gt;
  return *this;
}

CentroidDetection centroid_detection(const InstanceOverlap& o, double radius,
                                     const std::vector<int>& gt_class, const std::vector<int>& pred_class,
                                     int num_classes) {
  if (num_classes > 0 && (gt_class.size() != o.gt_count() || pred_class.size() != o.pred_count()))
    throw DataError("centroid detection: class lists do not match the instance counts");
  for (const auto* list : {&gt_class, &pred_class})
    for (int c : *list)
      if (num_classes > 0 && (c < 0 || c > num_classes))
        throw DataError("centroid detection: class " + std::to_string(c) + " outside 0.." +
                        std::to_string(num_classes));
  const CentroidPairing pairing = pair_centroids(o.gt_centroids, o.pred_centroids, radius);
  CentroidDetection d;
  d.all.paired = static_cast<int64_t>(pairing.pairs.size());
  d.all.unpaired_gt = static_cast<int64_t>(pairing.unpaired_gt.size());
  d.all.unpaired_pred = static_cast<int64_t>(pairing.unpaired_pred.size());
  if (num_classes <= 0) return d;
  d.classes.resize(num_classes);
  auto counts_of = [&](int c) -> CentroidClassCounts* { return c >= 1 ? &d.classes[c - 1] : nullptr; };
  for (const auto& [g, p] : pairing.pairs) {
    const int t = gt_class[g], q = pred_class[p];
    if (t == 0) continue;  // the truth's type is unknown: a detection, nothing about types
    ++d.all.typed_pairs;
    if (t == q) {
      ++d.all.same_class;
      ++d.classes[t - 1].paired_both;
    } else {
      if (auto* k = counts_of(q)) ++k->paired_pred_only;
      ++d.classes[t - 1].paired_gt_only;
    }
  }
  for (int g : pairing.unpaired_gt)
    if (auto* k = counts_of(gt_class[g])) ++k->unpaired_gt;
  for (int p : pairing.unpaired_pred)
    if (auto* k = counts_of(pred_class[p])) ++k->unpaired_pred;
  return d;
}

}  // namespace nucleisam::metrics
