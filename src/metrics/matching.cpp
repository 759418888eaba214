// Maximum-weight and greedy one-to-one matching on sparse bipartite graphs (see matching.h).
#include "nucleisam/metrics/matching.h"

#include <algorithm>
#include <numeric>

#include "dense_assignment.h"

namespace nucleisam::metrics {
namespace {

// Union-find over gt nodes [0, n_gt) and pred nodes [n_gt, n_gt + n_pred).
struct Components {
  std::vector<size_t> parent;
  explicit Components(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), size_t{0}); }
  size_t root(size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void join(size_t a, size_t b) { parent[root(a)] = root(b); }
};

}  // namespace

std::vector<WeightedPair> max_weight_matching(size_t gt_count, size_t pred_count,
                                              const std::vector<WeightedPair>& edges) {
  Components comp(gt_count + pred_count);
  std::vector<const WeightedPair*> usable;
  for (const auto& e : edges)
    if (e.weight > 0) {
      usable.push_back(&e);
      comp.join(static_cast<size_t>(e.gt), gt_count + static_cast<size_t>(e.pred));
    }

  // Group edges by component; local indices keep each dense matrix as small as the component.
  std::vector<int> group_of_root(gt_count + pred_count, -1);
  std::vector<std::vector<const WeightedPair*>> groups;
  for (const auto* e : usable) {
    size_t r = comp.root(static_cast<size_t>(e->gt));
    if (group_of_root[r] < 0) {
      group_of_root[r] = static_cast<int>(groups.size());
      groups.emplace_back();
    }
    groups[group_of_root[r]].push_back(e);
  }

  std::vector<WeightedPair> result;
  std::vector<int> local_gt(gt_count, -1), local_pred(pred_count, -1);
  for (const auto& group : groups) {
    std::vector<int> gts, preds;
    for (const auto* e : group) {
      if (local_gt[e->gt] < 0) {
        local_gt[e->gt] = static_cast<int>(gts.size());
        gts.push_back(e->gt);
      }
      if (local_pred[e->pred] < 0) {
        local_pred[e->pred] = static_cast<int>(preds.size());
        preds.push_back(e->pred);
      }
    }
    if (group.size() == 1) {  // the common case: an isolated overlapping pair
      result.push_back(*group[0]);
    } else {
      // Rows are the smaller side. Missing edges cost 0: matching them adds nothing, and they
      // are dropped below, exactly as a zero-IoU pair of the dense matrix would be.
      const bool gt_rows = gts.size() <= preds.size();
      const int rows = static_cast<int>(gt_rows ? gts.size() : preds.size());
      const int cols = static_cast<int>(gt_rows ? preds.size() : gts.size());
      std::vector<double> cost(static_cast<size_t>(rows) * cols, 0.0);
      std::vector<const WeightedPair*> edge_at(cost.size(), nullptr);
      for (const auto* e : group) {
        const int g = local_gt[e->gt], p = local_pred[e->pred];
        const size_t at = gt_rows ? static_cast<size_t>(g) * cols + p : static_cast<size_t>(p) * cols + g;
        cost[at] = -e->weight;
        edge_at[at] = e;
      }
      std::vector<int> col_of_row = detail::assign_rows(
          rows, cols, [&](int r, int c) { return cost[static_cast<size_t>(r) * cols + c]; });
      for (int r = 0; r < rows; ++r) {
        const WeightedPair* e = edge_at[static_cast<size_t>(r) * cols + col_of_row[r]];
        if (e) result.push_back(*e);
      }
    }
    for (int g : gts) local_gt[g] = -1;
    for (int p : preds) local_pred[p] = -1;
  }
  std::sort(result.begin(), result.end(),
            [](const WeightedPair& a, const WeightedPair& b) { return a.gt < b.gt; });
  return result;
}

std::vector<WeightedPair> greedy_matching(const std::vector<WeightedPair>& edges, double min_weight) {
  std::vector<WeightedPair> sorted;
  int max_gt = -1, max_pred = -1;
  for (const auto& e : edges)
    if (e.weight >= min_weight) {
      sorted.push_back(e);
      max_gt = std::max(max_gt, e.gt);
      max_pred = std::max(max_pred, e.pred);
    }
  std::sort(sorted.begin(), sorted.end(), [](const WeightedPair& a, const WeightedPair& b) {
    if (a.weight != b.weight) return a.weight > b.weight;
    return a.gt != b.gt ? a.gt < b.gt : a.pred < b.pred;
  });
  std::vector<char> gt_taken(max_gt + 1, 0), pred_taken(max_pred + 1, 0);
  std::vector<WeightedPair> result;
  for (const auto& e : sorted) {
    if (gt_taken[e.gt] || pred_taken[e.pred]) continue;
    gt_taken[e.gt] = pred_taken[e.pred] = 1;
    result.push_back(e);
  }
  std::sort(result.begin(), result.end(),
            [](const WeightedPair& a, const WeightedPair& b) { return a.gt < b.gt; });
  return result;
}

}  // namespace nucleisam::metrics
