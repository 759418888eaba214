// COCO mask AP: thresholds and recall points as pycocotools builds them, a single image worked by
// hand, pooling of detections across images, per-category AP, and the max-detections limit.
#include <gtest/gtest.h>

#include <cmath>

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
