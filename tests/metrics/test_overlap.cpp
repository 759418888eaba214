// InstanceOverlap: areas and intersections counted by hand, arbitrary label values, restriction to
// a subset of instances, and bad input.
#include <gtest/gtest.h>

#include <random>

#include "metrics_test_shapes.h"
#include "nucleisam/errors.h"
#include "nucleisam/metrics/overlap.h"

using namespace nucleisam;
using namespace nucleisam::metrics;
using testing_shapes::fill_rect;

namespace {

// Ground truth: 7 = 2x4 at (0,0), 3 = 2x4 at (0,4). Prediction: 5 = 2x6 at (0,0), 9 = 2x2 at (2,0).
void two_by_two(LabelMap& gt, LabelMap& pred) {
  gt = LabelMap(4, 8);
  pred = LabelMap(4, 8);
  fill_rect(gt, 7, 0, 0, 2, 4);
  fill_rect(gt, 3, 0, 4, 2, 4);
  fill_rect(pred, 5, 0, 0, 2, 6);
  fill_rect(pred, 9, 2, 0, 2, 2);
}

}  // namespace

TEST(InstanceOverlap, CountsAreasAndIntersectionsByDenseIndex) {
  LabelMap gt, pred;
  two_by_two(gt, pred);
  InstanceOverlap o = instance_overlap(gt, pred);
  EXPECT_EQ(o.gt_labels, (std::vector<int32_t>{3, 7}));  // ascending: 3 is dense 0
  EXPECT_EQ(o.pred_labels, (std::vector<int32_t>{5, 9}));
  EXPECT_EQ(o.gt_areas, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(o.pred_areas, (std::vector<int64_t>{12, 4}));
  EXPECT_EQ(o.pixels, 32);
  ASSERT_EQ(o.cells.size(), 2u);
  // label 3 (cols 4-7) meets label 5 (cols 0-5) in cols 4-5 of 2 rows: 4 pixels.
  EXPECT_EQ(o.cells[0].gt, 0);
  EXPECT_EQ(o.cells[0].pred, 0);
  EXPECT_EQ(o.cells[0].intersection, 4);
  EXPECT_EQ(o.union_of(o.cells[0]), 16);
  EXPECT_DOUBLE_EQ(o.iou(o.cells[0]), 0.25);
  EXPECT_EQ(o.cells[1].gt, 1);
  EXPECT_EQ(o.cells[1].intersection, 8);
  EXPECT_DOUBLE_EQ(o.iou(o.cells[1]), 8.0 / 12.0);
  EXPECT_EQ(o.row_begin, (std::vector<size_t>{0, 1, 2}));
}

TEST(InstanceOverlap, HugeLabelsGiveTheSameOverlapAsSmallOnes) {
  // Labels above the lookup-table limit take the sorted-list path; the result must not change.
  std::mt19937 rng(7);
  LabelMap gt(40, 50), pred(40, 50), gt_big(40, 50), pred_big(40, 50);
  for (size_t i = 0; i < gt.data.size(); ++i) {
    gt.data[i] = static_cast<int32_t>(rng() % 6);
    pred.data[i] = static_cast<int32_t>(rng() % 5);
    gt_big.data[i] = gt.data[i] ? 2000000000 - gt.data[i] * 1000 : 0;  // reverses the order
    pred_big.data[i] = pred.data[i] ? 100000000 + pred.data[i] : 0;
  }
  InstanceOverlap a = instance_overlap(gt, pred), b = instance_overlap(gt_big, pred_big);
  EXPECT_EQ(b.pred_labels, (std::vector<int32_t>{100000001, 100000002, 100000003, 100000004}));
  ASSERT_EQ(a.gt_count(), 5u);
  ASSERT_EQ(b.gt_count(), 5u);
  // gt label k maps to 2e9 - 1000k: dense index 4 - (k - 1) in the big map.
  for (size_t k = 0; k < 5; ++k) EXPECT_EQ(a.gt_areas[k], b.gt_areas[4 - k]);
  EXPECT_EQ(a.pred_areas, b.pred_areas);
  ASSERT_EQ(a.cells.size(), b.cells.size());
  int64_t total_a = 0, total_b = 0;
  for (const auto& c : a.cells) total_a += c.intersection;
  for (const auto& c : b.cells) total_b += c.intersection;
  EXPECT_EQ(total_a, total_b);
  // The overlap of every pair equals a direct count.
  for (const auto& c : a.cells) {
    int64_t direct = 0;
    for (size_t i = 0; i < gt.data.size(); ++i)
      direct += gt.data[i] == a.gt_labels[c.gt] && pred.data[i] == a.pred_labels[c.pred];
    EXPECT_EQ(c.intersection, direct);
  }
}

TEST(InstanceOverlap, RestrictedKeepsOnlySelectedInstances) {
  LabelMap gt, pred;
  two_by_two(gt, pred);
  InstanceOverlap o = instance_overlap(gt, pred);
  InstanceOverlap r = o.restricted({false, true}, {true, false});  // gt 7, pred 5
  EXPECT_EQ(r.gt_labels, (std::vector<int32_t>{7}));
  EXPECT_EQ(r.pred_labels, (std::vector<int32_t>{5}));
  ASSERT_EQ(r.cells.size(), 1u);
  EXPECT_EQ(r.cells[0].intersection, 8);
  EXPECT_EQ(r.row_begin, (std::vector<size_t>{0, 1}));
  InstanceOverlap none = o.restricted({false, false}, {false, true});
  EXPECT_EQ(none.gt_count(), 0u);
  EXPECT_EQ(none.pred_count(), 1u);
  EXPECT_TRUE(none.cells.empty());
  EXPECT_THROW(o.restricted({true}, {true, true}), DataError);
}

TEST(InstanceOverlap, BothEmptyHasNoInstances) {
  InstanceOverlap o = instance_overlap(LabelMap(3, 3), LabelMap(3, 3));
  EXPECT_EQ(o.gt_count(), 0u);
  EXPECT_EQ(o.pred_count(), 0u);
  EXPECT_TRUE(o.cells.empty());
  EXPECT_EQ(o.row_begin, (std::vector<size_t>{0}));
}

TEST(InstanceOverlap, BadInputThrowsDataError) {
  EXPECT_THROW(instance_overlap(LabelMap(3, 4), LabelMap(4, 3)), DataError);
  EXPECT_THROW(instance_overlap(LabelMap(3, 4, 2), LabelMap(3, 4, 2)), DataError);
  LabelMap neg(2, 2);
  neg.at(1, 1) = -4;
  try {
    instance_overlap(LabelMap(2, 2), neg);
    FAIL() << "negative label accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("negative label (-4)"), std::string::npos) << e.what();
  }
}

TEST(InstanceOverlap, ByDenseIndexReordersAndChecksLength) {
  std::vector<int> classes{4, 1, 2};  // labels 1, 2, 3
  EXPECT_EQ(by_dense_index({1, 3}, classes, "classes"), (std::vector<int>{4, 2}));
  EXPECT_THROW(by_dense_index({1, 4}, classes, "classes"), DataError);
}
