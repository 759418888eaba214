// One-to-one matching between ground-truth and predicted instances on the sparse overlap graph.
// Pairs with no overlap never count for any metric here, so only overlapping pairs are edges.
#pragma once

#include <cstddef>
#include <vector>

namespace nucleisam::metrics {

struct WeightedPair {
  int gt;
  int pred;
  double weight;
};

// A one-to-one matching maximising the total weight (the optimum scipy's linear_sum_assignment
// finds on the dense matrix of -weights, as HoVer-Net's AJI+ and PQ at thresholds < 0.5 use).
// Only edges with weight > 0 are used, so the problem splits into the connected components of the
// overlap graph, each solved exactly with the Hungarian method. Among equally good matchings the
// one returned may differ from scipy's; the total weight is the same. Result sorted by gt.
std::vector<WeightedPair> max_weight_matching(size_t gt_count, size_t pred_count,
                                              const std::vector<WeightedPair>& edges);

// Unique matching by highest weight first: pairs sorted by descending weight (ties: lower gt, then
// lower pred index) are accepted when neither side is taken yet and weight >= min_weight.
// Result sorted by gt.
std::vector<WeightedPair> greedy_matching(const std::vector<WeightedPair>& edges, double min_weight);

}  // namespace nucleisam::metrics
