// HoVer-Net's centroid detection scores: centroids counted by hand, the global assignment against
// exhaustive search, the reference's own quirk (a far-off pair can take a near pair's partner),
// the inclusive radius, and F_d / type accuracy / F_c counted by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "metrics_test_shapes.h"
#include "nucleisam/errors.h"
#include "nucleisam/metrics/centroid_detection.h"
#include "nucleisam/metrics/evaluation.h"

using namespace nucleisam;
using namespace nucleisam::metrics;
using testing_shapes::fill_rect;
using Point = InstanceOverlap::Point;

namespace {

double total_distance(const std::vector<Point>& gt, const std::vector<Point>& pred,
                      const std::vector<std::pair<int, int>>& pairs) {
  double s = 0;
  for (const auto& [g, p] : pairs) s += std::hypot(gt[g].x - pred[p].x, gt[g].y - pred[p].y);
  return s;
}

// Smallest total distance over every one-to-one assignment of min(n_gt, n_pred) pairs.
double brute_force_best(const std::vector<Point>& gt, const std::vector<Point>& pred) {
  const bool gt_small = gt.size() <= pred.size();
  const auto& small = gt_small ? gt : pred;
  const auto& large = gt_small ? pred : gt;
  std::vector<int> perm(large.size());
  std::iota(perm.begin(), perm.end(), 0);
  double best = 1e300;
  do {
    double s = 0;
    for (size_t k = 0; k < small.size(); ++k)
      s += std::hypot(small[k].x - large[perm[k]].x, small[k].y - large[perm[k]].y);
    best = std::min(best, s);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

}  // namespace

TEST(CentroidDetection, CentroidsAreMeanPixelPositions) {
  LabelMap gt(4, 8), pred(4, 8);  // 4 rows, 8 columns
  fill_rect(gt, 3, 1, 4, 2, 3);   // rows 1-2, columns 4-6
  gt.at(0, 0) = 7;                // an L: (row, column) (0,0), (1,0), (1,1)
  gt.at(1, 0) = 7;
  gt.at(1, 1) = 7;
  const InstanceOverlap o = instance_overlap(gt, pred);
  ASSERT_EQ(o.gt_centroids.size(), 2u);
  EXPECT_DOUBLE_EQ(o.gt_centroids[0].x, 5.0);  // label 3 first (ascending labels)
  EXPECT_DOUBLE_EQ(o.gt_centroids[0].y, 1.5);
  EXPECT_DOUBLE_EQ(o.gt_centroids[1].x, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(o.gt_centroids[1].y, 2.0 / 3.0);
  EXPECT_TRUE(o.pred_centroids.empty());
  // A restriction keeps each kept instance's centroid.
  const InstanceOverlap r = o.restricted({false, true}, {});
  ASSERT_EQ(r.gt_centroids.size(), 1u);
  EXPECT_DOUBLE_EQ(r.gt_centroids[0].x, 1.0 / 3.0);
}

TEST(CentroidDetection, AssignmentIsTheGlobalMinimumOfTotalDistance) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> coord(0.0, 30.0);
  std::uniform_int_distribution<int> count(0, 6);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<Point> gt(count(rng)), pred(count(rng));
    for (auto& p : gt) p = {coord(rng), coord(rng)};
    for (auto& p : pred) p = {coord(rng), coord(rng)};
    const CentroidPairing m = pair_centroids(gt, pred, 1e9);  // nothing dropped
    ASSERT_EQ(m.pairs.size(), std::min(gt.size(), pred.size()));
    ASSERT_EQ(m.unpaired_gt.size() + m.pairs.size(), gt.size());
    ASSERT_EQ(m.unpaired_pred.size() + m.pairs.size(), pred.size());
    if (!m.pairs.empty()) {
      EXPECT_NEAR(total_distance(gt, pred, m.pairs), brute_force_best(gt, pred), 1e-9);
    }
  }
}

TEST(CentroidDetection, AFarPairCanTakeANearPairsPartnerAsInTheReference) {
  // g0-p0 are 11 apart (within 12), but the assignment of least total distance is g0-p1 (30) +
  // g1-p0 (14) = 44 < g0-p0 (11) + g1-p1 (55) = 66; both its pairs lie beyond 12 and are dropped.
  // scipy.optimize.linear_sum_assignment on this matrix returns the same (HoVer-Net's rule).
  const std::vector<Point> gt{{0, 0}, {25, 0}}, pred{{11, 0}, {-30, 0}};
  const CentroidPairing m = pair_centroids(gt, pred, 12);
  EXPECT_TRUE(m.pairs.empty());
  EXPECT_EQ(m.unpaired_gt, (std::vector<int>{0, 1}));
  EXPECT_EQ(m.unpaired_pred, (std::vector<int>{0, 1}));
}

TEST(CentroidDetection, RadiusIsInclusiveAndMorePredictionsThanTruthWork) {
  const std::vector<Point> gt{{0, 0}};
  const std::vector<Point> pred{{40, 40}, {12, 0}, {0, 30}};
  CentroidPairing m = pair_centroids(gt, pred, 12);
  ASSERT_EQ(m.pairs.size(), 1u);
  EXPECT_EQ(m.pairs[0], std::make_pair(0, 1));
  EXPECT_EQ(m.unpaired_pred, (std::vector<int>{0, 2}));
  m = pair_centroids(gt, pred, 11.999);
  EXPECT_TRUE(m.pairs.empty());
  EXPECT_EQ(m.unpaired_gt, (std::vector<int>{0}));
  EXPECT_EQ(m.unpaired_pred.size(), 3u);
  // Empty sides.
  m = pair_centroids({}, pred, 12);
  EXPECT_EQ(m.unpaired_pred.size(), 3u);
  m = pair_centroids(gt, {}, 12);
  EXPECT_EQ(m.unpaired_gt, (std::vector<int>{0}));
  EXPECT_THROW(pair_centroids(gt, pred, -1), DataError);
}

namespace {

// Five classed nuclei of one pixel each and six predictions (one unclassified):
//   A (class 1) at (10,10) <- a (1) at (12,10)      paired, classes agree
//   B (2) at (50,10)       <- b (1) at (50,13)      paired, predicted 1 for a 2
//   C (1) at (90,10)       <- c (2) at (91,10)      paired, predicted 2 for a 1
//   D (3) at (130,10)      <- d (3) at (130,10)     paired, classes agree
//   E (2) at (200,200)     f (1) at (300,300) and g (0) at (170,10): unpaired
struct TypedScene {
  LabelMap gt{320, 320}, pred{320, 320};
  std::vector<int> gt_class{1, 2, 1, 3, 2}, pred_class{1, 1, 2, 3, 1, 0};
  TypedScene() {
    const int gxy[5][2] = {{10, 10}, {50, 10}, {90, 10}, {130, 10}, {200, 200}};
    const int pxy[6][2] = {{12, 10}, {50, 13}, {91, 10}, {130, 10}, {300, 300}, {170, 10}};
    for (int k = 0; k < 5; ++k) fill_rect(gt, k + 1, gxy[k][1], gxy[k][0], 1, 1);
    for (int k = 0; k < 6; ++k) fill_rect(pred, k + 1, pxy[k][1], pxy[k][0], 1, 1);
  }
};

}  // namespace

TEST(CentroidDetection, DetectionTypeAccuracyAndPerClassF1CountedByHand) {
  TypedScene s;
  const InstanceOverlap o = instance_overlap(s.gt, s.pred);
  const CentroidDetection d = centroid_detection(o, 12, s.gt_class, s.pred_class, 4);
  EXPECT_EQ(d.all.paired, 4);
  EXPECT_EQ(d.all.unpaired_gt, 1);
  EXPECT_EQ(d.all.unpaired_pred, 2);
  EXPECT_DOUBLE_EQ(d.all.f1(), 8.0 / 11.0);
  EXPECT_DOUBLE_EQ(d.all.precision(), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(d.all.recall(), 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(d.all.type_accuracy(), 0.5);
  ASSERT_EQ(d.classes.size(), 4u);
  // Class 1: both 1 (A), predicted-only 1 (B), truth-only 1 (C), unpaired prediction 1 (f):
  // 2 / (2 + 2 + 2 + 1).
  EXPECT_EQ(d.classes[0].paired_both, 1);
  EXPECT_EQ(d.classes[0].paired_pred_only, 1);
  EXPECT_EQ(d.classes[0].paired_gt_only, 1);
  EXPECT_EQ(d.classes[0].unpaired_pred, 1);
  EXPECT_EQ(d.classes[0].unpaired_gt, 0);
  EXPECT_DOUBLE_EQ(d.classes[0].f1(), 2.0 / 7.0);
  // Class 2: predicted-only C, truth-only B, unpaired truth E: 0 / 5.
  EXPECT_DOUBLE_EQ(d.classes[1].f1(), 0.0);
  EXPECT_EQ(d.classes[1].unpaired_gt, 1);
  EXPECT_DOUBLE_EQ(d.classes[2].f1(), 1.0);    // D alone, right
  EXPECT_TRUE(std::isnan(d.classes[3].f1()));  // absent on both sides
  // Class-agnostic: the same detections, no type statistics.
  const CentroidDetection plain = centroid_detection(o, 12, {}, {}, 0);
  EXPECT_EQ(plain.all.paired, 4);
  EXPECT_TRUE(plain.classes.empty());
  EXPECT_TRUE(std::isnan(plain.all.type_accuracy()));
  EXPECT_THROW(centroid_detection(o, 12, {1, 2, 1, 3, 9}, s.pred_class, 4), DataError);
}

TEST(CentroidDetection, TruthWithoutAKnownTypeCountsForDetectionOnly) {
  TypedScene s;
  s.gt_class = {0, 2, 1, 3, 2};  // A's type unknown: a-A stays a detection, not a right type
  const InstanceOverlap o = instance_overlap(s.gt, s.pred);
  const CentroidDetection d = centroid_detection(o, 12, s.gt_class, s.pred_class, 4);
  EXPECT_EQ(d.all.paired, 4);
  EXPECT_EQ(d.all.typed_pairs, 3);
  EXPECT_DOUBLE_EQ(d.all.type_accuracy(), 1.0 / 3.0);
  EXPECT_EQ(d.classes[0].paired_both, 0);
  EXPECT_EQ(d.classes[0].paired_pred_only, 1);  // B only; a on A is not a false class-1
}

TEST(CentroidDetection, EvaluationPoolsCountsOverImages) {
  TypedScene s;
  LabelMap empty(320, 320);
  EvaluationOptions options;
  options.num_classes = 4;
  Evaluation ev(options);
  ev.add_image("scene", {&s.gt, &s.gt_class}, {&s.pred, &s.pred_class});
  std::vector<int> none;
  ev.add_image("missed", {&s.gt, &s.gt_class}, {&empty, &none});  // five more unpaired truths
  const EvaluationSummary sum = ev.summary();
  EXPECT_EQ(ev.images()[1].centroid.all.unpaired_gt, 5);
  EXPECT_EQ(sum.centroid.paired, 4);
  EXPECT_EQ(sum.centroid.unpaired_gt, 6);
  EXPECT_EQ(sum.centroid.unpaired_pred, 2);
  EXPECT_DOUBLE_EQ(sum.centroid.f1(), 8.0 / 16.0);
  // Class 1 gains two unpaired truths (A and C of the second image): 2 / (2 + 2 + 2 + 1 + 2).
  EXPECT_DOUBLE_EQ(sum.classes[0].centroid.f1(), 2.0 / 9.0);
  EXPECT_DOUBLE_EQ(sum.centroid.type_accuracy(), 0.5);
  // A radius of 1 pixel keeps only C-c (1 apart) and D-d (0 apart).
  options.pair_radius = 1;
  Evaluation tight(options);
  tight.add_image("scene", {&s.gt, &s.gt_class}, {&s.pred, &s.pred_class});
  EXPECT_EQ(tight.summary().centroid.paired, 2);
  options.pair_radius = -1;
  EXPECT_THROW(Evaluation{options}, DataError);
}
