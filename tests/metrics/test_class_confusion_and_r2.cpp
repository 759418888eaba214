// Per-class pixel IoU / Dice / mIoU (from class maps and from instance overlaps, which must agree)
// and R^2 of counts with sklearn's conventions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "metrics_test_shapes.h"
#include "nucleisam/errors.h"
#include "nucleisam/metrics/class_confusion.h"
#include "nucleisam/metrics/count_r2.h"

using namespace nucleisam;
using namespace nucleisam::metrics;
using testing_shapes::fill_rect;

TEST(ClassConfusion, HandCase) {
  // 2x4 class maps. GT: row 0 = 1 1 2 2, row 1 = 0 0 0 0. Pred: row 0 = 1 2 2 0, row 1 = 0 0 0 1.
  LabelMap gt(2, 4), pred(2, 4);
  gt.at(0, 0) = gt.at(0, 1) = 1;
  gt.at(0, 2) = gt.at(0, 3) = 2;
  pred.at(0, 0) = 1;
  pred.at(0, 1) = pred.at(0, 2) = 2;
  pred.at(1, 3) = 1;
  ClassConfusion c(2);
  c.add(gt, pred);
  // Class 1: shared 1, GT 2, pred 2 -> IoU 1/3, Dice 2/4. Class 2: shared 1, GT 2, pred 2 -> same.
  EXPECT_EQ(c.count(1, 1), 1);
  EXPECT_EQ(c.count(1, 2), 1);
  EXPECT_EQ(c.count(2, 0), 1);
  EXPECT_EQ(c.count(0, 1), 1);
  EXPECT_EQ(c.count(0, 0), 3);
  EXPECT_DOUBLE_EQ(c.iou(1), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.dice(1), 0.5);
  EXPECT_DOUBLE_EQ(c.iou(2), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.mean_iou(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.iou(0), 3.0 / 5.0);  // background: shared 3, union 5
}

TEST(ClassConfusion, AbsentClassIsLeftOutOfTheMean) {
  LabelMap gt(1, 2), pred(1, 2);
  gt.at(0, 0) = pred.at(0, 0) = 1;
  ClassConfusion c(3);
  c.add(gt, pred);
  EXPECT_DOUBLE_EQ(c.iou(1), 1.0);
  EXPECT_TRUE(std::isnan(c.iou(2)));
  EXPECT_TRUE(std::isnan(c.dice(3)));
  EXPECT_DOUBLE_EQ(c.mean_iou(), 1.0);
  EXPECT_DOUBLE_EQ(c.mean_dice(), 1.0);
  EXPECT_TRUE(std::isnan(ClassConfusion(2).mean_iou()));
}

TEST(ClassConfusion, FromOverlapEqualsFromClassMaps) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 20; ++trial) {
    LabelMap gt(30, 30), pred(30, 30);
    for (int k = 1; k <= 12; ++k) {
      fill_rect(gt, k, rng() % 25, rng() % 25, 1 + rng() % 6, 1 + rng() % 6);
      fill_rect(pred, k, rng() % 25, rng() % 25, 1 + rng() % 6, 1 + rng() % 6);
    }
    std::vector<int> gt_cls(12), pred_cls(12);
    for (int k = 0; k < 12; ++k) {
      gt_cls[k] = static_cast<int>(rng() % 4);  // 0 = unclassified counts as background
      pred_cls[k] = static_cast<int>(rng() % 4);
    }
    LabelMap gt_map(30, 30), pred_map(30, 30);
    for (size_t i = 0; i < gt.data.size(); ++i) {
      gt_map.data[i] = gt.data[i] ? gt_cls[gt.data[i] - 1] : 0;
      pred_map.data[i] = pred.data[i] ? pred_cls[pred.data[i] - 1] : 0;
    }
    ClassConfusion direct(3), derived(3);
    direct.add(gt_map, pred_map);
    InstanceOverlap o = instance_overlap(gt, pred);
    derived.add(o, by_dense_index(o.gt_labels, gt_cls, "gt"),
                by_dense_index(o.pred_labels, pred_cls, "pred"));
    for (int a = 0; a <= 3; ++a)
      for (int b = 0; b <= 3; ++b) ASSERT_EQ(direct.count(a, b), derived.count(a, b)) << a << "," << b;
  }
}

TEST(ClassConfusion, BadInput) {
  EXPECT_THROW(ClassConfusion(0), DataError);
  ClassConfusion c(2);
  LabelMap bad(1, 1, 1, 3);
  EXPECT_THROW(c.add(bad, LabelMap(1, 1)), DataError);
  EXPECT_THROW(c.add(LabelMap(1, 2), LabelMap(2, 1)), DataError);
}

TEST(R2, HandValues) {
  // Truth 1 2 3 (mean 2, total sum of squares 2); prediction 1 2 4 (residual 1): R^2 = 0.5.
  EXPECT_DOUBLE_EQ(r2_score({1, 2, 3}, {1, 2, 4}), 0.5);
  // Prediction = mean everywhere: 0. Worse than the mean: negative (0 2 4 vs 3 2 1: 1 - 8/2 = -3).
  EXPECT_DOUBLE_EQ(r2_score({1, 2, 3}, {2, 2, 2}), 0.0);
  EXPECT_DOUBLE_EQ(r2_score({1, 2, 3}, {3, 2, 1}), -3.0);
}

TEST(R2, SklearnConventions) {
  EXPECT_DOUBLE_EQ(r2_score({2, 2}, {2, 2}), 1.0);  // constant truth, perfect
  EXPECT_DOUBLE_EQ(r2_score({2, 2}, {2, 3}), 0.0);  // constant truth, imperfect
  EXPECT_TRUE(std::isnan(r2_score({5}, {5})));      // fewer than two samples
  EXPECT_THROW(r2_score({1, 2}, {1}), DataError);
}

TEST(R2, PerClassThenMean) {
  // Class 1 truth 1 2 3 vs 1 2 4 (0.5); class 2 truth 0 0 2 vs 0 0 2 (1).
  CountR2 r(2);
  r.add_image({1, 0}, {1, 0});
  r.add_image({2, 0}, {2, 0});
  r.add_image({3, 2}, {4, 2});
  EXPECT_DOUBLE_EQ(r.r2(1), 0.5);
  EXPECT_DOUBLE_EQ(r.r2(2), 1.0);
  EXPECT_DOUBLE_EQ(r.mean_r2(), 0.75);
  // Totals 1 2 5 vs 1 2 6: mean 8/3, SS_tot = (25 + 4 + 49) / 9 = 78/9, residual 1.
  EXPECT_THROW(r.add_image({1}, {1, 2}), DataError);
}
