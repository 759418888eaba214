// Pixel Dice/IoU, AJI, AJI+, PQ and object F1 on hand-made maps whose answers are worked out
// below, plus the edge cases: empty prediction, empty ground truth, both empty, one giant object.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "metrics_test_shapes.h"
#include "nucleisam/errors.h"
#include "nucleisam/metrics/instance_metrics.h"

using namespace nucleisam;
using namespace nucleisam::metrics;
using testing_shapes::fill_rect;

namespace {

// 4x8 image. GT 1 = rows 0-1 x cols 0-3 (8 px), GT 2 = rows 0-1 x cols 4-7 (8 px).
// Pred 1 = rows 0-1 x cols 0-5 (12 px): meets GT 1 in 8 px (IoU 8/12), GT 2 in 4 px (IoU 4/16).
// Pred 2 = rows 2-3 x cols 0-1 (4 px): overlaps nothing.
InstanceOverlap hand_case() {
  LabelMap gt(4, 8), pred(4, 8);
  fill_rect(gt, 1, 0, 0, 2, 4);
  fill_rect(gt, 2, 0, 4, 2, 4);
  fill_rect(pred, 1, 0, 0, 2, 6);
  fill_rect(pred, 2, 2, 0, 2, 2);
  return instance_overlap(gt, pred);
}

// 10x10 image, one object covering everything on one side, the four 5x5 quadrants on the other.
InstanceOverlap giant_vs_quadrants(bool giant_is_gt) {
  LabelMap giant(10, 10, 1, 1), quads(10, 10);
  fill_rect(quads, 1, 0, 0, 5, 5);
  fill_rect(quads, 2, 0, 5, 5, 5);
  fill_rect(quads, 3, 5, 0, 5, 5);
  fill_rect(quads, 4, 5, 5, 5, 5);
  return giant_is_gt ? instance_overlap(giant, quads) : instance_overlap(quads, giant);
}

}  // namespace

TEST(PixelMetrics, ForegroundDiceAndIoU) {
  // Foregrounds: GT 16 px, pred 16 px, shared 12 px.
  PixelCounts c = foreground_counts(hand_case());
  EXPECT_EQ(c.tp, 12);
  EXPECT_EQ(c.fp, 4);
  EXPECT_EQ(c.fn, 4);
  EXPECT_DOUBLE_EQ(c.dice(), 24.0 / 32.0);
  EXPECT_DOUBLE_EQ(c.iou(), 12.0 / 20.0);
}

TEST(Aji, HandCase) {
  // GT 1 -> pred 1 (8 / 12); GT 2 -> pred 1 as well (4 / 16, pred 1 reused); pred 2 unused (+4).
  // AJI = (8 + 4) / (12 + 16 + 4) = 12 / 32.
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index(hand_case()), 12.0 / 32.0);
}

TEST(AjiPlus, HandCase) {
  // One-to-one: pred 1 goes to GT 1 (8 / 12); GT 2 (8 px) and pred 2 (4 px) are unpaired.
  // AJI+ = 8 / (12 + 8 + 4) = 8 / 24.
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index_plus(hand_case()), 8.0 / 24.0);
}

TEST(Aji, GiantPredictionIsOverPenalisedButAjiPlusIsNot) {
  // Four GT quadrants (25 px) all pick the giant prediction (IoU 25/100): AJI sums 4 x 25 over
  // 4 x 100 = 0.25. AJI+ pairs the giant with one quadrant: 25 / (100 + 3 x 25) = 1/7.
  InstanceOverlap o = giant_vs_quadrants(false);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index(o), 100.0 / 400.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index_plus(o), 25.0 / 175.0);
}

TEST(Aji, GiantGroundTruth) {
  // The giant GT picks the first quadrant (all tie at 0.25; lowest id like argmax):
  // 25 / (100 + 3 x 25 unused) for both AJI and AJI+.
  InstanceOverlap o = giant_vs_quadrants(true);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index(o), 25.0 / 175.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index_plus(o), 25.0 / 175.0);
}

TEST(Pq, HandCase) {
  // Only GT 1 / pred 1 has IoU > 0.5 (2/3): TP 1, FP 1, FN 1.
  PanopticCounts c = panoptic_counts(hand_case());
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.fn, 1);
  EXPECT_DOUBLE_EQ(c.dq(), 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(c.sq(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.pq(), 1.0 / 3.0);
}

TEST(Pq, MatchIsStrictlyAboveThreshold) {
  // GT 4 px, pred 2 px inside it: IoU exactly 0.5, which does not match at 0.5.
  LabelMap gt(2, 2, 1, 1), pred(2, 2);
  fill_rect(pred, 1, 0, 0, 1, 2);
  PanopticCounts c = panoptic_counts(instance_overlap(gt, pred), 0.5);
  EXPECT_EQ(c.tp, 0);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.fn, 1);
  EXPECT_DOUBLE_EQ(c.pq(), 0.0);
  EXPECT_EQ(panoptic_counts(instance_overlap(gt, pred), 0.4).tp, 1);
}

TEST(Pq, BelowHalfUsesOptimalOneToOnePairing) {
  // Giant GT vs 4 quadrants at match IoU 0.2: one pair (IoU 0.25), FP 3.
  // DQ = 1 / (1 + 1.5) = 0.4, SQ = 0.25, PQ = 0.1. At 0.5 nothing matches.
  InstanceOverlap o = giant_vs_quadrants(true);
  PanopticCounts low = panoptic_counts(o, 0.2);
  EXPECT_EQ(low.tp, 1);
  EXPECT_EQ(low.fp, 3);
  EXPECT_EQ(low.fn, 0);
  EXPECT_DOUBLE_EQ(low.dq(), 0.4);
  EXPECT_DOUBLE_EQ(low.sq(), 0.25);
  EXPECT_DOUBLE_EQ(low.pq(), 0.1);
  PanopticCounts half = panoptic_counts(o, 0.5);
  EXPECT_EQ(half.tp, 0);
  EXPECT_DOUBLE_EQ(half.pq(), 0.0);
  EXPECT_THROW(panoptic_counts(o, -0.1), DataError);
  EXPECT_THROW(panoptic_counts(o, 1.0), DataError);
}

TEST(ObjectF1, HandCaseAndThreshold) {
  // Greedy by IoU: (GT 1, pred 1) 2/3 first; (GT 2, pred 1) 1/4 then blocked. TP 1, FP 1, FN 1.
  InstanceOverlap o = hand_case();
  DetectionCounts at_half = object_detection_counts(o, 0.5);
  EXPECT_EQ(at_half.tp, 1);
  EXPECT_EQ(at_half.fp, 1);
  EXPECT_EQ(at_half.fn, 1);
  EXPECT_DOUBLE_EQ(at_half.f1(), 0.5);
  EXPECT_DOUBLE_EQ(at_half.precision(), 0.5);
  EXPECT_DOUBLE_EQ(at_half.recall(), 0.5);
  EXPECT_EQ(object_detection_counts(o, 0.2).tp, 1);
  EXPECT_EQ(object_detection_counts(o, 0.7).tp, 0);
  EXPECT_DOUBLE_EQ(object_detection_counts(o, 0.7).f1(), 0.0);
  // Threshold >= is inclusive: exactly 2/3 matches at 2/3.
  EXPECT_EQ(object_detection_counts(o, 8.0 / 12.0).tp, 1);
}

TEST(ObjectF1, GiantGroundTruthAtLowThreshold) {
  // One GT matched by one quadrant (IoU 0.25 >= 0.2): TP 1, FP 3, FN 0 -> F1 = 1 / 2.5.
  DetectionCounts c = object_detection_counts(giant_vs_quadrants(true), 0.2);
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.fp, 3);
  EXPECT_DOUBLE_EQ(c.f1(), 0.4);
}

TEST(EdgeCases, BothEmptyIsUndefined) {
  InstanceOverlap o = instance_overlap(LabelMap(5, 5), LabelMap(5, 5));
  EXPECT_TRUE(std::isnan(foreground_counts(o).dice()));
  EXPECT_TRUE(std::isnan(foreground_counts(o).iou()));
  EXPECT_TRUE(std::isnan(aggregated_jaccard_index(o)));
  EXPECT_TRUE(std::isnan(aggregated_jaccard_index_plus(o)));
  PanopticCounts pq = panoptic_counts(o);
  EXPECT_TRUE(pq.empty());
  EXPECT_TRUE(std::isnan(pq.dq()));
  EXPECT_TRUE(std::isnan(pq.sq()));
  EXPECT_TRUE(std::isnan(pq.pq()));
  EXPECT_TRUE(std::isnan(object_detection_counts(o).f1()));
}

TEST(EdgeCases, EmptyPredictionScoresZero) {
  LabelMap gt(6, 6), empty(6, 6);
  fill_rect(gt, 1, 0, 0, 3, 3);
  fill_rect(gt, 2, 3, 3, 3, 3);
  InstanceOverlap o = instance_overlap(gt, empty);
  EXPECT_DOUBLE_EQ(foreground_counts(o).dice(), 0.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index(o), 0.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index_plus(o), 0.0);
  PanopticCounts pq = panoptic_counts(o);
  EXPECT_EQ(pq.fn, 2);
  EXPECT_DOUBLE_EQ(pq.dq(), 0.0);
  EXPECT_DOUBLE_EQ(pq.sq(), 0.0);
  EXPECT_DOUBLE_EQ(pq.pq(), 0.0);
  DetectionCounts d = object_detection_counts(o);
  EXPECT_EQ(d.fn, 2);
  EXPECT_DOUBLE_EQ(d.f1(), 0.0);
  EXPECT_TRUE(std::isnan(d.precision()));
  EXPECT_DOUBLE_EQ(d.recall(), 0.0);
}

TEST(EdgeCases, EmptyGroundTruthScoresZero) {
  LabelMap empty(6, 6), pred(6, 6);
  fill_rect(pred, 4, 1, 1, 2, 2);
  InstanceOverlap o = instance_overlap(empty, pred);
  EXPECT_DOUBLE_EQ(foreground_counts(o).dice(), 0.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index(o), 0.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index_plus(o), 0.0);
  EXPECT_EQ(panoptic_counts(o).fp, 1);
  EXPECT_DOUBLE_EQ(panoptic_counts(o).pq(), 0.0);
  EXPECT_DOUBLE_EQ(object_detection_counts(o).f1(), 0.0);
}

TEST(EdgeCases, PerfectPredictionScoresOneWhateverTheLabels) {
  LabelMap gt(6, 6), pred(6, 6);
  fill_rect(gt, 1, 0, 0, 3, 3);
  fill_rect(gt, 2, 3, 3, 3, 3);
  fill_rect(pred, 40, 0, 0, 3, 3);
  fill_rect(pred, 17, 3, 3, 3, 3);
  InstanceOverlap o = instance_overlap(gt, pred);
  EXPECT_DOUBLE_EQ(foreground_counts(o).dice(), 1.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index(o), 1.0);
  EXPECT_DOUBLE_EQ(aggregated_jaccard_index_plus(o), 1.0);
  EXPECT_DOUBLE_EQ(panoptic_counts(o).pq(), 1.0);
  EXPECT_DOUBLE_EQ(object_detection_counts(o).f1(), 1.0);
}

namespace {

// The reference algorithms written the slow, literal way: dense GT x prediction matrices of
// intersections and unions counted mask by mask (HoVer-Net's get_fast_aji / get_fast_pq layout).
struct DenseReference {
  std::vector<int32_t> gt_ids, pred_ids;
  std::vector<std::vector<double>> inter, uni;
  std::vector<double> gt_area, pred_area;

  DenseReference(const LabelMap& gt, const LabelMap& pred) {
    auto ids = [](const LabelMap& m) {
      std::vector<int32_t> v;
      for (int32_t x : m.data)
        if (x && std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
      std::sort(v.begin(), v.end());
      return v;
    };
    gt_ids = ids(gt);
    pred_ids = ids(pred);
    inter.assign(gt_ids.size(), std::vector<double>(pred_ids.size(), 0));
    uni = inter;
    for (int32_t g : gt_ids)
      gt_area.push_back(static_cast<double>(std::count(gt.data.begin(), gt.data.end(), g)));
    for (int32_t p : pred_ids)
      pred_area.push_back(static_cast<double>(std::count(pred.data.begin(), pred.data.end(), p)));
    for (size_t i = 0; i < gt_ids.size(); ++i)
      for (size_t j = 0; j < pred_ids.size(); ++j) {
        double n = 0;
        for (size_t k = 0; k < gt.data.size(); ++k)
          n += gt.data[k] == gt_ids[i] && pred.data[k] == pred_ids[j];
        inter[i][j] = n;
        uni[i][j] = gt_area[i] + pred_area[j] - n;
      }
  }

  double aji() const {
    double I = 0, U = 0;
    std::vector<char> pred_used(pred_ids.size(), 0);
    for (size_t i = 0; i < gt_ids.size(); ++i) {
      int best = -1;
      double best_iou = 0;
      for (size_t j = 0; j < pred_ids.size(); ++j) {
        double iou = inter[i][j] / (uni[i][j] + 1e-6);
        if (iou > best_iou) {
          best_iou = iou;
          best = static_cast<int>(j);
        }
      }
      if (best < 0) {
        U += gt_area[i];
        continue;
      }
      I += inter[i][best];
      U += uni[i][best];
      pred_used[best] = 1;
    }
    for (size_t j = 0; j < pred_ids.size(); ++j)
      if (!pred_used[j]) U += pred_area[j];
    return I / U;
  }

  std::pair<int, double> pq_tp_and_iou_sum() const {
    int tp = 0;
    double sum = 0;
    for (size_t i = 0; i < gt_ids.size(); ++i)
      for (size_t j = 0; j < pred_ids.size(); ++j)
        if (inter[i][j] > 0 && inter[i][j] / uni[i][j] > 0.5) {
          ++tp;
          sum += inter[i][j] / uni[i][j];
        }
    return {tp, sum};
  }
};

}  // namespace

TEST(ReferenceParity, FastMetricsEqualTheLiteralAlgorithmsOnRandomMaps) {
  std::mt19937 rng(2024);
  int matched_trials = 0;  // trials with PQ matches, so the TP / IoU-sum comparison can fail
  for (int trial = 0; trial < 30; ++trial) {
    LabelMap gt(24, 28), pred(24, 28);
    for (int k = 1; k <= 10; ++k) {
      // GT rectangles stay inside 24x28; most get a prediction jittered by up to 1 px, some a
      // stray one instead, so both matched and over/under-segmented pairs occur.
      const int y = static_cast<int>(rng() % 16) + 1, x = static_cast<int>(rng() % 20) + 1;
      const int h = 2 + static_cast<int>(rng() % 6), w = 2 + static_cast<int>(rng() % 6);
      fill_rect(gt, 3 * k, y, x, h, w);
      if (rng() % 4 == 0)
        fill_rect(pred, 100 - k, rng() % 18, rng() % 22, 2 + rng() % 6, 2 + rng() % 6);
      else
        fill_rect(pred, 100 - k, y + static_cast<int>(rng() % 3) - 1, x + static_cast<int>(rng() % 3) - 1, h,
                  w);
    }
    DenseReference ref(gt, pred);
    InstanceOverlap o = instance_overlap(gt, pred);
    ASSERT_EQ(o.gt_labels, ref.gt_ids);
    ASSERT_EQ(o.pred_labels, ref.pred_ids);
    EXPECT_NEAR(aggregated_jaccard_index(o), ref.aji(), 1e-12) << "trial " << trial;
    PanopticCounts pq = panoptic_counts(o);
    auto [tp, sum] = ref.pq_tp_and_iou_sum();
    EXPECT_EQ(pq.tp, tp);
    EXPECT_NEAR(pq.iou_sum, sum, 1e-12);
    EXPECT_EQ(pq.fp, static_cast<int64_t>(ref.pred_ids.size()) - tp);
    EXPECT_EQ(pq.fn, static_cast<int64_t>(ref.gt_ids.size()) - tp);
    matched_trials += tp > 0;
  }
  EXPECT_GE(matched_trials, 20);
}
