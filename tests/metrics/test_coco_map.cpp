// COCO mask AP: thresholds and recall points as pycocotools builds them, a single image worked by
// hand, pooling of detections across images, per-category AP, and the max-detections limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "metrics_test_shapes.h"
#include "nucleisam/errors.h"
#include "nucleisam/metrics/coco_map.h"

using namespace nucleisam;
using namespace nucleisam::metrics;
using testing_shapes::fill_rect;

namespace {

// 4x12 image. GT 1 = 2x2 at (0,0); GT 2 = 2x4 at (0,4) (8 px).
// Pred 1 = GT 1 exactly (IoU 1), score 0.9. Pred 2 = 2x2 at (2,10), overlaps nothing, score 0.8.
// Pred 3 = 5 px inside GT 2 (IoU 5/8 = 0.625), score 0.7.
InstanceOverlap one_image() {
  LabelMap gt(4, 12), pred(4, 12);
  fill_rect(gt, 1, 0, 0, 2, 2);
  fill_rect(gt, 2, 0, 4, 2, 4);
  fill_rect(pred, 1, 0, 0, 2, 2);
  fill_rect(pred, 2, 2, 10, 2, 2);
  fill_rect(pred, 3, 0, 4, 1, 4);
  pred.at(1, 4) = 3;
  return instance_overlap(gt, pred);
}

const std::vector<double> kScores{0.9, 0.8, 0.7};

}  // namespace

TEST(CocoAp, ThresholdsAndRecallPoints) {
  const auto& t = CocoAveragePrecision::iou_thresholds();
  EXPECT_DOUBLE_EQ(t[0], 0.5);
  EXPECT_NEAR(t[5], 0.75, 1e-15);
  EXPECT_EQ(t[9], 0.95);
  const auto& r = CocoAveragePrecision::recall_points();
  EXPECT_EQ(r[0], 0.0);
  EXPECT_EQ(r[50], 0.5);
  EXPECT_EQ(r[100], 1.0);
}

TEST(CocoAp, SingleImageByHand) {
  // Score order: TP (IoU 1), FP, TP (IoU 0.625). Two GT.
  // t in {0.50, 0.55, 0.60}: recall [.5 .5 1], precision [1 .5 2/3] -> envelope [1 2/3 2/3]:
  //   51 recall points <= 0.5 read 1, 50 points above read 2/3.
  // t >= 0.65: the third is an FP too: recall [.5 .5 .5]: 51 points read 1, the rest 0.
  // AP = (3 (51 + 100/3) + 7 x 51) / 1010 = 610 / 1010.
  CocoAveragePrecision ap(1);
  InstanceOverlap o = one_image();
  ap.add_image(o, {1, 1}, {1, 1, 1}, kScores);
  auto r = ap.result();
  EXPECT_NEAR(r.ap[0], 610.0 / 1010.0, 1e-12);
  EXPECT_NEAR(r.ap50[0], (51.0 + 100.0 / 3.0) / 101.0, 1e-12);
  EXPECT_NEAR(r.ap75[0], 51.0 / 101.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.map, r.ap[0]);
  EXPECT_NEAR(r.precision[0][0][50], 1.0, 1e-12);
  EXPECT_NEAR(r.precision[0][0][51], 2.0 / 3.0, 1e-12);
  EXPECT_EQ(r.precision[0][9][51], 0.0);
}

TEST(CocoAp, ScoresDecideTheOrder) {
  // Giving the FP the top score: order FP, TP, TP. Precision [0 1/2 2/3] -> envelope all 2/3 for
  // t <= 0.60; for t >= 0.65 order FP, TP, FP: precision [0 .5 1/3] -> envelope [.5 .5 1/3],
  // recall reaches .5 only: 51 points read 0.5.
  CocoAveragePrecision ap(1);
  ap.add_image(one_image(), {1, 1}, {1, 1, 1}, {0.5, 0.9, 0.4});
  auto r = ap.result();
  EXPECT_NEAR(r.ap50[0], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.ap75[0], 0.5 * 51.0 / 101.0, 1e-12);
}

TEST(CocoAp, MaxDetectionsKeepsTheHighestScores) {
  // Only the top detection (TP at every threshold): recall .5 -> 51 points of precision 1.
  CocoAveragePrecision ap(1, 1);
  ap.add_image(one_image(), {1, 1}, {1, 1, 1}, kScores);
  EXPECT_NEAR(ap.result().ap[0], 51.0 / 101.0, 1e-12);
  EXPECT_EQ(ap.max_detections(), 1);
}

TEST(CocoAp, DetectionsArePooledAcrossImages) {
  // Image A: one GT, one exact prediction scored 0.9. Image B: one GT, an FP scored 0.95 and an
  // exact prediction scored 0.5. Pooled order FP, TP, TP over 2 GT: recall [0 .5 1], precision
  // [0 .5 2/3] -> envelope 2/3 everywhere: AP = 2/3 at every threshold (per-image AP would differ).
  LabelMap gt(2, 6), a(2, 6), b(2, 6);
  fill_rect(gt, 1, 0, 0, 2, 2);
  fill_rect(a, 1, 0, 0, 2, 2);
  fill_rect(b, 1, 0, 4, 2, 2);
  fill_rect(b, 2, 0, 0, 2, 2);
  CocoAveragePrecision ap(1);
  ap.add_image(instance_overlap(gt, a), {1}, {1}, {0.9});
  ap.add_image(instance_overlap(gt, b), {1}, {1, 1}, {0.95, 0.5});
  EXPECT_NEAR(ap.result().ap[0], 2.0 / 3.0, 1e-12);
}

TEST(CocoAp, PerCategoryAndAbsentCategories) {
  // Category 1: GT 1 with the exact pred 1 -> AP 1. Category 2: GT 2 with pred 3 (IoU .625) ->
  // 3 of 10 thresholds -> AP 0.3. Pred 2 is unclassified (0) and takes no part. Category 3 has
  // no ground truth: NaN and left out of the mean.
  CocoAveragePrecision ap(3);
  ap.add_image(one_image(), {1, 2}, {1, 0, 2}, kScores);
  auto r = ap.result();
  EXPECT_NEAR(r.ap[0], 1.0, 1e-12);
  EXPECT_NEAR(r.ap[1], 0.3, 1e-12);
  EXPECT_TRUE(std::isnan(r.ap[2]));
  EXPECT_NEAR(r.map, 0.65, 1e-12);
  EXPECT_NEAR(r.map50, 1.0, 1e-12);
  EXPECT_NEAR(r.map75, 0.5, 1e-12);
}

TEST(CocoAp, EmptyCases) {
  CocoAveragePrecision none(1);
  EXPECT_TRUE(std::isnan(none.result().map));  // nothing added
  InstanceOverlap empty_gt = instance_overlap(LabelMap(3, 3), LabelMap(3, 3, 1, 1));
  none.add_image(empty_gt, {}, {1}, {1.0});
  EXPECT_TRUE(std::isnan(none.result().map));  // detections but no GT: undefined, like COCO's -1
  CocoAveragePrecision missed(1);
  missed.add_image(instance_overlap(LabelMap(3, 3, 1, 1), LabelMap(3, 3)), {1}, {}, {});
  EXPECT_EQ(missed.result().map, 0.0);  // GT but no detections
}

TEST(CocoAp, BadInput) {
  EXPECT_THROW(CocoAveragePrecision(0), DataError);
  EXPECT_THROW(CocoAveragePrecision(1, -1), DataError);
  CocoAveragePrecision ap(2);
  InstanceOverlap o = one_image();
  EXPECT_THROW(ap.add_image(o, {1, 3}, {1, 1, 1}, kScores), DataError);
  EXPECT_THROW(ap.add_image(o, {1, 1}, {1, 1}, kScores), DataError);
  EXPECT_THROW(ap.add_image(o, {1, 1}, {1, 1, 1}, {0.1, NAN, 0.2}), DataError);
}

namespace {

// pycocotools' evaluateImg + accumulate written literally on dense IoU matrices, for parity with
// the sparse implementation on random images.
struct LiteralCoco {
  struct ImageEval {
    std::vector<double> scores;            // kept detections, score order
    std::vector<std::array<bool, 10>> tp;  // per detection, per threshold
    int n_gt = 0;
  };
  std::vector<std::vector<ImageEval>> per_category;  // [category][image]
  int max_det;

  LiteralCoco(int categories, int max_det) : per_category(categories), max_det(max_det) {}

  void add(const LabelMap& gt, const LabelMap& pred, const std::vector<int>& gt_cat,
           const std::vector<int>& pred_cat, const std::vector<double>& score) {
    const auto& thr = CocoAveragePrecision::iou_thresholds();
    for (size_t k = 0; k < per_category.size(); ++k) {
      const int cat = static_cast<int>(k) + 1;
      std::vector<int> g_ids, d_ids;  // labels (1-based)
      for (size_t i = 0; i < gt_cat.size(); ++i)
        if (gt_cat[i] == cat) g_ids.push_back(static_cast<int>(i) + 1);
      for (size_t i = 0; i < pred_cat.size(); ++i)
        if (pred_cat[i] == cat) d_ids.push_back(static_cast<int>(i) + 1);
      if (g_ids.empty() && d_ids.empty()) continue;
      std::stable_sort(d_ids.begin(), d_ids.end(), [&](int a, int b) { return score[a - 1] > score[b - 1]; });
      if (max_det > 0 && static_cast<int>(d_ids.size()) > max_det) d_ids.resize(max_det);
      ImageEval e;
      e.n_gt = static_cast<int>(g_ids.size());
      for (size_t t = 0; t < 10; ++t) {
        std::vector<bool> gt_used(g_ids.size(), false);
        for (size_t d = 0; d < d_ids.size(); ++d) {
          if (t == 0) {
            e.scores.push_back(score[d_ids[d] - 1]);
            e.tp.push_back({});
          }
          double best = std::min(thr[t], 1 - 1e-10);
          int m = -1;
          for (size_t g = 0; g < g_ids.size(); ++g) {
            if (gt_used[g]) continue;
            double inter = 0, uni = 0;
            for (size_t i = 0; i < gt.data.size(); ++i) {
              bool a = gt.data[i] == g_ids[g], b = pred.data[i] == d_ids[d];
              inter += a && b;
              uni += a || b;
            }
            double iou = inter / uni;
            if (iou < best) continue;
            best = iou;
            m = static_cast<int>(g);
          }
          if (m >= 0) {
            gt_used[m] = true;
            e.tp[d][t] = true;
          }
        }
      }
      per_category[k].push_back(e);
    }
  }

  double ap(size_t k) const {
    std::vector<std::pair<double, std::array<bool, 10>>> all;
    int n_gt = 0;
    for (const auto& e : per_category[k]) {
      n_gt += e.n_gt;
      for (size_t d = 0; d < e.scores.size(); ++d) all.push_back({e.scores[d], e.tp[d]});
    }
    if (n_gt == 0) return NAN;
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    const auto& rec = CocoAveragePrecision::recall_points();
    double sum = 0;
    for (int t = 0; t < 10; ++t) {
      std::vector<double> rc, pr;
      double tp = 0, fp = 0;
      for (const auto& d : all) {
        (d.second[t] ? tp : fp) += 1;
        rc.push_back(tp / n_gt);
        pr.push_back(tp / (tp + fp + 2.220446049250313e-16));
      }
      for (size_t i = pr.size(); i-- > 1;) pr[i - 1] = std::max(pr[i - 1], pr[i]);
      for (double r : rec) {
        size_t i = 0;
        while (i < rc.size() && rc[i] < r) ++i;
        if (i < rc.size()) sum += pr[i];
      }
    }
    return sum / 1010.0;
  }
};

}  // namespace

TEST(CocoAp, EqualsTheLiteralAlgorithmOnRandomImages) {
  std::mt19937 rng(31);
  int informative = 0;  // categories whose AP is neither 0 nor 1 (so the comparison can fail)
  for (int max_det : {0, 3}) {
    CocoAveragePrecision fast(2, max_det);
    LiteralCoco literal(2, max_det);
    for (int image = 0; image < 6; ++image) {
      LabelMap gt(20, 20), pred(20, 20);
      // Predictions are jittered copies of some GT rectangles plus strays, so IoUs spread over
      // the thresholds and AP lands strictly between 0 and 1.
      const int n_gt = 1 + static_cast<int>(rng() % 6);
      int n_pred = 0;
      for (int k = 1; k <= n_gt; ++k) {
        const int y = static_cast<int>(rng() % 14) + 1, x = static_cast<int>(rng() % 14) + 1;
        const int h = 2 + static_cast<int>(rng() % 4), w = 2 + static_cast<int>(rng() % 4);
        fill_rect(gt, k, y, x, h, w);
        if (rng() % 5 == 0) continue;
        const int dy = static_cast<int>(rng() % 3) - 1, dx = static_cast<int>(rng() % 3) - 1;
        fill_rect(pred, ++n_pred, y + dy, x + dx, std::max(1, h - static_cast<int>(rng() % 2)), w);
      }
      for (int extra = static_cast<int>(rng() % 3); extra > 0; --extra)
        fill_rect(pred, ++n_pred, rng() % 15, rng() % 15, 2 + rng() % 5, 2 + rng() % 5);
      // Later rectangles may hide earlier ones completely: keep only labels still present.
      auto present = [](const LabelMap& m, int n) {
        std::vector<int> cat(n, 0);
        for (int32_t v : m.data)
          if (v) cat[v - 1] = 1;
        return cat;
      };
      std::vector<int> gt_cat = present(gt, n_gt), pred_cat = present(pred, n_pred);
      std::vector<double> score(n_pred);
      for (auto& c : gt_cat)
        if (c) c = 1 + static_cast<int>(rng() % 2);
      for (int k = 0; k < n_pred; ++k) {
        if (pred_cat[k]) pred_cat[k] = 1 + static_cast<int>(rng() % 2);
        score[k] = static_cast<double>(rng() % 4) / 4.0;  // ties on purpose
      }
      literal.add(gt, pred, gt_cat, pred_cat, score);
      InstanceOverlap o = instance_overlap(gt, pred);
      fast.add_image(o, by_dense_index(o.gt_labels, gt_cat, "gt"),
                     by_dense_index(o.pred_labels, pred_cat, "pred"),
                     by_dense_index(o.pred_labels, score, "score"));
    }
    auto r = fast.result();
    for (size_t k = 0; k < 2; ++k) {
      const double expected = literal.ap(k);
      informative += expected > 0 && expected < 1;
      if (std::isnan(expected))
        EXPECT_TRUE(std::isnan(r.ap[k]));
      else
        EXPECT_NEAR(r.ap[k], expected, 1e-12) << "category " << k + 1 << " max_det " << max_det;
    }
  }
  EXPECT_GE(informative, 2);
}
