// Dataset aggregation: per-image means that skip undefined images, mPQ+ from counts pooled over
// images (CoNIC), pooled object F1, and the checks on classes.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics_test_shapes.h"
#include "nucleisam/errors.h"
#include "nucleisam/metrics/evaluation.h"

using namespace nucleisam;
using namespace nucleisam::metrics;
using testing_shapes::fill_rect;

TEST(Evaluation, ClassAgnosticMeansSkipUndefinedImages) {
  // Image a: perfect (every metric 1). Image b: both empty (undefined, skipped).
  // Image c: one GT, no prediction (every metric 0). Means over a and c: 0.5.
  LabelMap gt(4, 4), empty(4, 4);
  fill_rect(gt, 1, 0, 0, 2, 2);
  Evaluation ev;
  ev.add_image("a", {&gt}, {&gt});
  ev.add_image("b", {&empty}, {&empty});
  ev.add_image("c", {&gt}, {&empty});
  EvaluationSummary s = ev.summary();
  EXPECT_EQ(s.images, 3u);
  for (const MeanOverImages* m : {&s.dice, &s.iou, &s.aji, &s.aji_plus, &s.dq, &s.sq, &s.pq}) {
    EXPECT_DOUBLE_EQ(m->mean, 0.5);
    EXPECT_EQ(m->counted, 2u);
  }
  // Pooled detection: TP 1 (a), FN 1 (c) -> F1 = 1 / 1.5.
  EXPECT_EQ(s.detection.tp, 1);
  EXPECT_EQ(s.detection.fn, 1);
  EXPECT_DOUBLE_EQ(s.detection.f1(), 2.0 / 3.0);
  // Counts 1 0 1 vs 1 0 0: mean 2/3, SS_tot = 2/3, residual 1 -> R^2 = -0.5.
  EXPECT_DOUBLE_EQ(s.count_r2, -0.5);
  // AP: 2 GT, one exact detection -> recall reaches 0.5: 51 of 101 points at precision 1.
  EXPECT_NEAR(s.map.map, 51.0 / 101.0, 1e-12);
  EXPECT_TRUE(s.classes.empty());
  EXPECT_TRUE(std::isnan(s.mpq_plus));
}

TEST(Evaluation, MultiClassPqPlusPoolsCountsOverImages) {
  // Image 1: GT A (class 1) predicted exactly as class 1; GT B (class 2) predicted exactly but
  //          as class 1. Image 2: GT C (class 2) predicted exactly as class 2.
  // Class 1: TP 1, FP 1 (the misclassified B), FN 0, IoU sum 1 -> DQ 2/3, SQ 1 -> PQ 2/3.
  // Class 2: TP 1 (image 2), FN 1 (B in image 1) -> PQ 2/3. Class 3 never occurs -> 0 (CoNIC).
  // mPQ+ = (2/3 + 2/3 + 0) / 3 = 4/9.
  LabelMap g1(4, 4), g2(4, 4);
  fill_rect(g1, 1, 0, 0, 2, 2);
  fill_rect(g1, 2, 2, 2, 2, 2);
  fill_rect(g2, 1, 1, 1, 2, 2);
  std::vector<int> g1_cls{1, 2}, p1_cls{1, 1}, g2_cls{2}, p2_cls{2};
  EvaluationOptions options;
  options.num_classes = 3;
  Evaluation ev(options);
  const ImageEvaluation& e1 = ev.add_image("one", {&g1, &g1_cls}, {&g1, &p1_cls});
  EXPECT_EQ(e1.class_pq[0].tp, 1);
  EXPECT_EQ(e1.class_pq[0].fp, 1);
  EXPECT_EQ(e1.class_pq[1].fn, 1);
  EXPECT_EQ(e1.gt_counts, (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(e1.pred_counts, (std::vector<int64_t>{2, 0, 0}));
  EXPECT_DOUBLE_EQ(e1.pq.pq(), 1.0);  // class-agnostic PQ ignores classes
  ev.add_image("two", {&g2, &g2_cls}, {&g2, &p2_cls});
  EvaluationSummary s = ev.summary();
  ASSERT_EQ(s.classes.size(), 3u);
  EXPECT_DOUBLE_EQ(s.classes[0].pq_plus, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.classes[1].pq_plus, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.classes[2].pq_plus, 0.0);
  EXPECT_DOUBLE_EQ(s.mpq_plus, 4.0 / 9.0);
  // Object F1 per class from the same pooled counts: 2/3 and 2/3; class 3 undefined, not averaged.
  EXPECT_DOUBLE_EQ(s.classes[0].detection.f1(), 2.0 / 3.0);
  EXPECT_TRUE(std::isnan(s.classes[2].detection.f1()));
  EXPECT_DOUBLE_EQ(s.mean_f1, 2.0 / 3.0);
  // Pixel IoU per class: class 1 GT 4 px, pred 8 px, shared 4 -> 0.5; class 2 GT 8, pred 4 -> 0.5.
  EXPECT_DOUBLE_EQ(s.classes[0].pixel_iou, 0.5);
  EXPECT_DOUBLE_EQ(s.classes[1].pixel_iou, 0.5);
  EXPECT_DOUBLE_EQ(s.miou, 0.5);
  // Class counts per image: class 1 truth 1 0 vs 2 0 -> mean .5, SS_tot .5, residual 1 -> -1.
  EXPECT_DOUBLE_EQ(s.classes[0].count_r2, -1.0);
  // AP class 1: pooled [TP, FP] (equal scores keep instance order), 1 GT -> precision 1 to
  // recall 1 -> AP 1. Class 2: 2 GT, one exact detection -> 51/101. Class 3 absent.
  EXPECT_NEAR(s.classes[0].ap, 1.0, 1e-12);
  EXPECT_NEAR(s.classes[1].ap, 51.0 / 101.0, 1e-12);
  EXPECT_TRUE(std::isnan(s.classes[2].ap));
  EXPECT_NEAR(s.class_map, (1.0 + 51.0 / 101.0) / 2.0, 1e-12);
}

TEST(Evaluation, ClassChecks) {
  LabelMap m(2, 2, 1, 1);
  std::vector<int> ok{1}, too_big{3}, none;
  EvaluationOptions options;
  options.num_classes = 2;
  Evaluation ev(options);
  EXPECT_THROW(ev.add_image("x", {&m, &too_big}, {&m, &ok}), DataError);
  EXPECT_THROW(ev.add_image("x", {&m, &ok}, {&m}), DataError);
  EXPECT_THROW(ev.add_image("x", {&m, &none}, {&m, &ok}), DataError);
}

// PanNuke's mPQ / bPQ (PanNuke-metrics run.py): per image, a class counts only when the truth has
// it, an image only when its truth is not empty; groups (tissues) are averaged, then the groups.
TEST(Evaluation, PanNukeAveragesSkipAbsentClassesAndAverageGroups) {
  EvaluationOptions options;
  options.num_classes = 2;
  // A (x): truth a1 (1), a2 (2); predicted a1 as 1, a2 as 1. Class 1: TP 1 FP 1 -> 2/3; class 2:
  //   FN 1 -> 0; mPQ 1/3. Binary: both exact -> 1.
  // B (x): truth b1 (2); predicted b1 as 2 and a stray nucleus of class 1. Class 1 is not in the
  //   truth: skipped, its false positive costs nothing; class 2 -> 1; mPQ 1. Binary: TP 1 FP 1 -> 2/3.
  // C (y): empty truth, one predicted nucleus: skipped by both.
  // D (y): truth d1 (1), nothing predicted: mPQ 0, bPQ 0.
  LabelMap two(4, 8), one(4, 8), stray(4, 8), empty(4, 8);
  fill_rect(two, 1, 0, 0, 2, 2);
  fill_rect(two, 2, 2, 4, 2, 2);
  fill_rect(one, 1, 0, 0, 2, 2);
  stray = one;
  fill_rect(stray, 2, 2, 4, 2, 2);
  const std::vector<int> a_gt{1, 2}, a_pred{1, 1}, b_gt{2}, b_pred{2, 1}, c_pred{1}, d_gt{1}, none;
  auto run = [&](bool groups) {
    Evaluation ev(options);
    ev.add_image("A", {&two, &a_gt}, {&two, &a_pred}, groups ? "x" : "");
    ev.add_image("B", {&one, &b_gt}, {&stray, &b_pred}, groups ? "x" : "");
    ev.add_image("C", {&empty, &none}, {&one, &c_pred}, groups ? "y" : "");
    ev.add_image("D", {&one, &d_gt}, {&empty, &none}, groups ? "y" : "");
    return ev.summary();
  };
  const EvaluationSummary g = run(true);
  EXPECT_NEAR(g.pannuke_mpq.mean, ((1.0 / 3 + 1.0) / 2 + 0.0) / 2, 1e-12);
  EXPECT_EQ(g.pannuke_mpq.images, 3u);
  EXPECT_EQ(g.pannuke_mpq.groups, 2u);
  EXPECT_NEAR(g.pannuke_bpq.mean, ((1.0 + 2.0 / 3) / 2 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(g.classes[0].pannuke_pq.mean, (2.0 / 3 + 0.0) / 2, 1e-12);  // A and D
  EXPECT_EQ(g.classes[0].pannuke_pq.counted, 2u);
  EXPECT_NEAR(g.classes[1].pannuke_pq.mean, (0.0 + 1.0) / 2, 1e-12);  // A and B
  const EvaluationSummary u = run(false);                             // one group: the mean over images
  EXPECT_NEAR(u.pannuke_mpq.mean, (1.0 / 3 + 1.0 + 0.0) / 3, 1e-12);
  EXPECT_NEAR(u.pannuke_bpq.mean, (1.0 + 2.0 / 3 + 0.0) / 3, 1e-12);
  EXPECT_EQ(u.pannuke_bpq.groups, 1u);
  // CoNIC's mPQ+ pools instead: every class-1 false positive counts there (A's a2, B's stray, C's).
  EXPECT_EQ(u.classes[0].pq.fp, 3);
}
