// Pixel Dice/IoU, AJI, AJI+, PQ and object F1 of one image (see instance_metrics.h and
// docs/metrics.md for the definitions and where they follow the reference code).
#include "nucleisam/metrics/instance_metrics.h"

#include <cmath>
#include <limits>

#include "nucleisam/errors.h"
#include "nucleisam/metrics/matching.h"

namespace nucleisam::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double num, double den) { return den == 0 ? kNaN : num / den; }

// HoVer-Net divides by (union + 1e-6) when it picks pairs for AJI and AJI+. Using the same score
// keeps its choice between pairs of exactly equal IoU (the larger union wins), so our pairing is
// the reference pairing, not just one of equal IoU.
double pairing_score(const InstanceOverlap& o, const InstanceOverlap::Cell& c) {
  return static_cast<double>(c.intersection) / (static_cast<double>(o.union_of(c)) + 1.0e-6);
}

// Sum of areas of the instances not marked used.
double unused_area(const std::vector<int64_t>& areas, const std::vector<char>& used) {
  double s = 0;
  for (size_t k = 0; k < areas.size(); ++k)
    if (!used[k]) s += static_cast<double>(areas[k]);
  return s;
}

}  // namespace

double PixelCounts::dice() const { return ratio(2.0 * tp, 2.0 * tp + fp + fn); }
double PixelCounts::iou() const { return ratio(static_cast<double>(tp), static_cast<double>(tp + fp + fn)); }
PixelCounts& PixelCounts::operator+=(const PixelCounts& o) {
  tp += o.tp;
  fp += o.fp;
  fn += o.fn;
  return *this;
}

PixelCounts foreground_counts(const InstanceOverlap& o) {
  int64_t inter = 0, gt = 0, pred = 0;
  for (const auto& c : o.cells) inter += c.intersection;
  for (int64_t a : o.gt_areas) gt += a;
  for (int64_t a : o.pred_areas) pred += a;
  return {inter, pred - inter, gt - inter};
}

double aggregated_jaccard_index(const InstanceOverlap& o) {
  if (o.gt_count() == 0 && o.pred_count() == 0) return kNaN;
  double inter = 0, uni = 0;
  std::vector<char> gt_used(o.gt_count(), 0), pred_used(o.pred_count(), 0);
  for (size_t g = 0; g < o.gt_count(); ++g) {
    const InstanceOverlap::Cell* best = nullptr;
    double best_score = 0;
    // Cells are in ascending pred order and only a strictly better score replaces the best, so
    // ties go to the lowest prediction id, like numpy's argmax.
    for (size_t k = o.row_begin[g]; k < o.row_begin[g + 1]; ++k) {
      double s = pairing_score(o, o.cells[k]);
      if (s > best_score) {
        best_score = s;
        best = &o.cells[k];
      }
    }
    if (!best) continue;
    // A prediction paired with several ground-truth instances counts in each pair's union: this
    // is the over-penalisation AJI is known for, kept on purpose to match the reference.
    inter += static_cast<double>(best->intersection);
    uni += static_cast<double>(o.union_of(*best));
    gt_used[g] = 1;
    pred_used[best->pred] = 1;
  }
  uni += unused_area(o.gt_areas, gt_used) + unused_area(o.pred_areas, pred_used);
  return inter / uni;
}

double aggregated_jaccard_index_plus(const InstanceOverlap& o) {
  if (o.gt_count() == 0 && o.pred_count() == 0) return kNaN;
  std::vector<WeightedPair> edges;
  edges.reserve(o.cells.size());
  for (const auto& c : o.cells) edges.push_back({c.gt, c.pred, pairing_score(o, c)});
  double inter = 0, uni = 0;
  std::vector<char> gt_used(o.gt_count(), 0), pred_used(o.pred_count(), 0);
  // Cells are found again by (gt, pred) to read the integer counts of each matched pair.
  for (const auto& m : max_weight_matching(o.gt_count(), o.pred_count(), edges)) {
    for (size_t k = o.row_begin[m.gt]; k < o.row_begin[m.gt + 1]; ++k) {
      const auto& c = o.cells[k];
      if (c.pred != m.pred) continue;
      inter += static_cast<double>(c.intersection);
      uni += static_cast<double>(o.union_of(c));
    }
    gt_used[m.gt] = 1;
    pred_used[m.pred] = 1;
  }
  uni += unused_area(o.gt_areas, gt_used) + unused_area(o.pred_areas, pred_used);
  return inter / uni;
}

double PanopticCounts::dq() const { return ratio(static_cast<double>(tp), tp + 0.5 * fp + 0.5 * fn); }
double PanopticCounts::sq() const {
  if (empty()) return kNaN;
  return tp == 0 ? 0.0 : iou_sum / static_cast<double>(tp);
}
double PanopticCounts::pq() const { return empty() ? kNaN : dq() * sq(); }
PanopticCounts& PanopticCounts::operator+=(const PanopticCounts& o) {
  tp += o.tp;
  fp += o.fp;
  fn += o.fn;
  iou_sum += o.iou_sum;
  return *this;
}

PanopticCounts panoptic_counts(const InstanceOverlap& o, double match_iou) {
  if (!(match_iou >= 0.0) || match_iou >= 1.0)
    throw DataError("PQ match IoU must lie in [0, 1), got " + std::to_string(match_iou));
  PanopticCounts r;
  if (match_iou >= 0.5) {
    // IoU > 0.5 with two different partners would need more than the instance's own area.
    for (const auto& c : o.cells) {
      const double iou = o.iou(c);
      if (iou > match_iou) {
        ++r.tp;
        r.iou_sum += iou;
      }
    }
  } else {
    std::vector<WeightedPair> edges;
    edges.reserve(o.cells.size());
    for (const auto& c : o.cells) edges.push_back({c.gt, c.pred, o.iou(c)});
    for (const auto& m : max_weight_matching(o.gt_count(), o.pred_count(), edges))
      if (m.weight > match_iou) {
        ++r.tp;
        r.iou_sum += m.weight;
      }
  }
  r.fp = static_cast<int64_t>(o.pred_count()) - r.tp;
  r.fn = static_cast<int64_t>(o.gt_count()) - r.tp;
  return r;
}

double DetectionCounts::f1() const { return ratio(static_cast<double>(tp), tp + 0.5 * (fp + fn)); }
double DetectionCounts::precision() const {
  return ratio(static_cast<double>(tp), static_cast<double>(tp + fp));
}
double DetectionCounts::recall() const {
  return ratio(static_cast<double>(tp), static_cast<double>(tp + fn));
}
DetectionCounts& DetectionCounts::operator+=(const DetectionCounts& o) {
  tp += o.tp;
  fp += o.fp;
  fn += o.fn;
  return *this;
}

DetectionCounts object_detection_counts(const InstanceOverlap& o, double min_iou) {
  if (!(min_iou >= 0.0) || min_iou > 1.0)
    throw DataError("object F1 match IoU must lie in [0, 1], got " + std::to_string(min_iou));
  std::vector<WeightedPair> edges;
  edges.reserve(o.cells.size());
  for (const auto& c : o.cells) edges.push_back({c.gt, c.pred, o.iou(c)});
  // Cells all have IoU > 0, so a threshold of 0 still requires overlap.
  DetectionCounts r;
  r.tp = static_cast<int64_t>(greedy_matching(edges, min_iou).size());
  r.fp = static_cast<int64_t>(o.pred_count()) - r.tp;
  r.fn = static_cast<int64_t>(o.gt_count()) - r.tp;
  return r;
}

}  // namespace nucleisam::metrics
