// One-to-one matching: hand cases where greedy and optimal differ, and the Hungarian solution
// against exhaustive search on random small graphs.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "nucleisam/metrics/matching.h"

using namespace nucleisam::metrics;

namespace {

double total(const std::vector<WeightedPair>& m) {
  double s = 0;
  for (const auto& p : m) s += p.weight;
  return s;
}

// Best total weight over every one-to-one matching (exhaustive: small graphs only).
double brute_force_best(int n_gt, int n_pred, const std::vector<double>& w) {
  double best = 0;
  std::vector<char> used(n_pred, 0);
  std::function<void(int, double)> go = [&](int g, double acc) {
    if (g == n_gt) {
      best = std::max(best, acc);
      return;
    }
    go(g + 1, acc);  // g unmatched
    for (int p = 0; p < n_pred; ++p)
      if (!used[p] && w[g * n_pred + p] > 0) {
        used[p] = 1;
        go(g + 1, acc + w[g * n_pred + p]);
        used[p] = 0;
      }
  };
  go(0, 0);
  return best;
}

}  // namespace

TEST(Matching, OptimalBeatsGreedyWhereTheyDiffer) {
  // A-X 0.6, A-Y 0.5, B-X 0.5: greedy takes A-X (0.6); optimal takes A-Y + B-X (1.0).
  std::vector<WeightedPair> edges{{0, 0, 0.6}, {0, 1, 0.5}, {1, 0, 0.5}};
  auto greedy = greedy_matching(edges, 0.0);
  ASSERT_EQ(greedy.size(), 1u);
  EXPECT_EQ(greedy[0].gt, 0);
  EXPECT_EQ(greedy[0].pred, 0);
  auto best = max_weight_matching(2, 2, edges);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].gt, 0);
  EXPECT_EQ(best[0].pred, 1);
  EXPECT_EQ(best[1].gt, 1);
  EXPECT_EQ(best[1].pred, 0);
  EXPECT_DOUBLE_EQ(total(best), 1.0);
}

TEST(Matching, GreedyThresholdAndTieOrder) {
  std::vector<WeightedPair> edges{{1, 0, 0.7}, {0, 0, 0.7}, {2, 1, 0.4}};
  auto m = greedy_matching(edges, 0.5);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].gt, 0);                              // equal weights: lower gt first
  EXPECT_EQ(greedy_matching(edges, 0.4).size(), 2u);  // >= threshold
  EXPECT_TRUE(greedy_matching({}, 0.5).empty());
}

TEST(Matching, IgnoresNonPositiveEdgesAndEmptyGraphs) {
  EXPECT_TRUE(max_weight_matching(0, 0, {}).empty());
  EXPECT_TRUE(max_weight_matching(3, 2, {{0, 0, 0.0}, {1, 1, -1.0}}).empty());
  auto m = max_weight_matching(5, 5, {{4, 3, 0.2}});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].gt, 4);
  EXPECT_EQ(m[0].pred, 3);
}

TEST(Matching, HungarianEqualsExhaustiveSearchOnRandomGraphs) {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<double> weight(0.01, 1.0);
  for (int trial = 0; trial < 400; ++trial) {
    const int n_gt = 1 + static_cast<int>(rng() % 6), n_pred = 1 + static_cast<int>(rng() % 6);
    std::vector<double> w(n_gt * n_pred, 0.0);
    std::vector<WeightedPair> edges;
    for (int g = 0; g < n_gt; ++g)
      for (int p = 0; p < n_pred; ++p)
        if (rng() % 100 < 45) {
          w[g * n_pred + p] = weight(rng);
          edges.push_back({g, p, w[g * n_pred + p]});
        }
    auto m = max_weight_matching(n_gt, n_pred, edges);
    // One-to-one and made of real edges.
    std::vector<char> gt_seen(n_gt, 0), pred_seen(n_pred, 0);
    for (const auto& p : m) {
      ASSERT_FALSE(gt_seen[p.gt]);
      ASSERT_FALSE(pred_seen[p.pred]);
      gt_seen[p.gt] = pred_seen[p.pred] = 1;
      ASSERT_DOUBLE_EQ(p.weight, w[p.gt * n_pred + p.pred]);
    }
    EXPECT_NEAR(total(m), brute_force_best(n_gt, n_pred, w), 1e-12) << "trial " << trial;
  }
}
