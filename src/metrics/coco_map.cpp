// COCO mask AP accumulated over images (see coco_map.h). Follows pycocotools' evaluateImg and
// accumulate step by step so that results agree to the last bit where inputs are the same.
#include "nucleisam/metrics/coco_map.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// numpy.linspace(start, stop, n): i * ((stop - start) / (n - 1)) + start, last element = stop.
// Computed with the same floating-point operations, so a threshold compares equal to COCO's.
template <size_t N>
std::array<double, N> linspace(double start, double stop) {
  std::array<double, N> v{};
  const double step = (stop - start) / static_cast<double>(N - 1);
  for (size_t i = 0; i < N; ++i) v[i] = static_cast<double>(i) * step + start;
  v[N - 1] = stop;
  return v;
}

}  // namespace

const std::array<double, CocoAveragePrecision::kIouThresholds>& CocoAveragePrecision::iou_thresholds() {
  static const auto v = linspace<kIouThresholds>(0.5, 0.95);
  return v;
}
const std::array<double, CocoAveragePrecision::kRecallPoints>& CocoAveragePrecision::recall_points() {
  static const auto v = linspace<kRecallPoints>(0.0, 1.0);
  return v;
}

CocoAveragePrecision::CocoAveragePrecision(int num_categories, int max_detections)
    : num_categories_(num_categories),
      max_detections_(max_detections),
      detections_(num_categories > 0 ? num_categories : 0),
      gt_counts_(num_categories > 0 ? num_categories : 0, 0) {
  if (num_categories < 1) throw DataError("COCO AP needs at least one category");
  if (max_detections < 0) throw DataError("maximum detections per image must be >= 0 (0: no limit)");
}

void CocoAveragePrecision::add_image(const InstanceOverlap& o, const std::vector<int>& gt_category,
                                     const std::vector<int>& pred_category,
                                     const std::vector<double>& pred_score) {
  if (gt_category.size() != o.gt_count() || pred_category.size() != o.pred_count() ||
      pred_score.size() != o.pred_count())
    throw DataError("COCO AP: categories/scores do not match the number of instances");
  for (int c : gt_category)
    if (c < 0 || c > num_categories_)
      throw DataError("ground-truth category " + std::to_string(c) + " outside 0.." +
                      std::to_string(num_categories_));
  for (int c : pred_category)
    if (c < 0 || c > num_categories_)
      throw DataError("predicted category " + std::to_string(c) + " outside 0.." +
                      std::to_string(num_categories_));
  for (double s : pred_score)
    if (!std::isfinite(s)) throw DataError("a prediction score is not a finite number");

  // Overlapping ground truth of each prediction, ascending gt index (COCO's gt order).
  std::vector<std::vector<std::pair<int, double>>> partners(o.pred_count());
  for (const auto& c : o.cells) partners[c.pred].push_back({c.gt, o.iou(c)});

  const auto& thresholds = iou_thresholds();
  std::vector<char> gt_matched(o.gt_count(), 0);
  for (int cat = 1; cat <= num_categories_; ++cat) {
    int64_t n_gt = 0;
    for (int c : gt_category) n_gt += c == cat;
    std::vector<int> dets;
    for (size_t p = 0; p < o.pred_count(); ++p)
      if (pred_category[p] == cat) dets.push_back(static_cast<int>(p));
    if (n_gt == 0 && dets.empty()) continue;
    // Highest score first; equal scores keep instance order (COCO's mergesort is stable).
    std::stable_sort(dets.begin(), dets.end(), [&](int a, int b) { return pred_score[a] > pred_score[b]; });
    if (max_detections_ > 0 && dets.size() > static_cast<size_t>(max_detections_))
      dets.resize(max_detections_);
    gt_counts_[cat - 1] += n_gt;

    std::vector<Detection> found(dets.size());
    for (size_t d = 0; d < dets.size(); ++d) found[d] = {pred_score[dets[d]], 0};
    for (int t = 0; t < kIouThresholds; ++t) {
      std::fill(gt_matched.begin(), gt_matched.end(), 0);
      for (size_t d = 0; d < dets.size(); ++d) {
        // The free ground truth of highest IoU >= t; among equal IoUs the later one wins, as in
        // COCO's loop that only skips strictly smaller values.
        double best_iou = std::min(thresholds[t], 1.0 - 1e-10);
        int best = -1;
        for (const auto& [g, iou] : partners[dets[d]]) {
          if (gt_category[g] != cat || gt_matched[g]) continue;
          if (iou < best_iou) continue;
          best_iou = iou;
          best = g;
        }
        if (best < 0) continue;
        gt_matched[best] = 1;
        found[d].matched |= static_cast<uint16_t>(1u << t);
      }
    }
    auto& all = detections_[cat - 1];
    all.insert(all.end(), found.begin(), found.end());
  }
}

CocoAveragePrecision::Result CocoAveragePrecision::result() const {
  Result r;
  r.ap.assign(num_categories_, kNaN);
  r.ap50.assign(num_categories_, kNaN);
  r.ap75.assign(num_categories_, kNaN);
  r.precision.resize(num_categories_);
  const auto& recalls = recall_points();
  double sum = 0, sum50 = 0, sum75 = 0;
  int present = 0;
  for (int k = 0; k < num_categories_; ++k) {
    const int64_t n_gt = gt_counts_[k];
    if (n_gt == 0) continue;
    std::vector<Detection> dets = detections_[k];
    std::stable_sort(dets.begin(), dets.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    const size_t nd = dets.size();
    auto& prec = r.precision[k];
    prec.resize(kIouThresholds);
    std::vector<double> rc(nd), pr(nd);
    for (int t = 0; t < kIouThresholds; ++t) {
      double tp = 0, fp = 0;
      for (size_t i = 0; i < nd; ++i) {
        if (dets[i].matched & (1u << t))
          tp += 1;
        else
          fp += 1;
        rc[i] = tp / static_cast<double>(n_gt);
        // pycocotools adds np.spacing(1) to the denominator; kept for bit-equal precision.
        pr[i] = tp / (fp + tp + std::numeric_limits<double>::epsilon());
      }
      for (size_t i = nd; i-- > 1;)
        if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
      auto& q = prec[t];
      q.fill(0.0);
      for (int ri = 0; ri < kRecallPoints; ++ri) {
        const size_t at =
            static_cast<size_t>(std::lower_bound(rc.begin(), rc.end(), recalls[ri]) - rc.begin());
        if (at >= nd) break;  // recall never reached: precision 0 from here on
        q[ri] = pr[at];
      }
    }
    auto mean_at = [&](int t) {
      return std::accumulate(prec[t].begin(), prec[t].end(), 0.0) / kRecallPoints;
    };
    double all = 0;
    for (int t = 0; t < kIouThresholds; ++t) all += std::accumulate(prec[t].begin(), prec[t].end(), 0.0);
    r.ap[k] = all / (kIouThresholds * kRecallPoints);
    r.ap50[k] = mean_at(0);
    r.ap75[k] = mean_at(5);
    sum += r.ap[k];
    sum50 += r.ap50[k];
    sum75 += r.ap75[k];
    ++present;
  }
  r.map = present ? sum / present : kNaN;
  r.map50 = present ? sum50 / present : kNaN;
  r.map75 = present ? sum75 / present : kNaN;
  return r;
}

}  // namespace nucleisam::metrics
