// The reference stains of nucleisam::reference_stains(): Macenko's estimate (nucleisam/stain.h) of
// every image of the given dataset splits, then per split and over all of them the median of each
// colour component (renormalised to unit length) and of each stain's 99th-percentile amount, with
// the quartiles to show the spread between images. The shipped constants are the "all" line for the
// shipped models' training sets:
//
//   bench_stain_reference ../shared/data/monuseg/train ../shared/data/consep256/train
//
// Splits count equally in "all" (the median over the per-split medians would favour none either;
// here every split's images are weighted so that each split sums to the same weight).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "nucleisam/data/readers.h"
#include "nucleisam/stain.h"

using namespace nucleisam;

namespace {

struct Weighted {
  double value, weight;
};

// The weighted q-quantile (0-1): the smallest value whose cumulative weight reaches q of the total.
double quantile(std::vector<Weighted> v, double q) {
  std::sort(v.begin(), v.end(), [](const Weighted& a, const Weighted& b) { return a.value < b.value; });
  double total = 0;
  for (const auto& x : v) total += x.weight;
  double sum = 0;
  for (const auto& x : v) {
    sum += x.weight;
    if (sum >= q * total) return x.value;
  }
  return v.back().value;
}

void summarise(const std::string& name, const std::vector<StainVectors>& stains, const std::vector<double>& weights) {
  StainVectors median;
  std::string spread;
  auto column = [&](auto get) {
    std::vector<Weighted> v;
    for (size_t i = 0; i < stains.size(); ++i) v.push_back({get(stains[i]), weights[i]});
    return v;
  };
  for (int k = 0; k < 2; ++k) {
    for (int c = 0; c < 3; ++c) median.colour[k][c] = quantile(column([&](const StainVectors& s) { return s.colour[k][c]; }), 0.5);
    double norm = 0;
    for (double x : median.colour[k]) norm += x * x;
    for (double& x : median.colour[k]) x /= std::sqrt(norm);
    const auto amounts = column([&](const StainVectors& s) { return s.max_amount[k]; });
    median.max_amount[k] = quantile(amounts, 0.5);
    char buffer[160];
    std::snprintf(buffer, sizeof buffer, "%s amount quartiles %.2f-%.2f, 5-95%%: %.2f-%.2f", k == 0 ? "H" : "; E",
                  quantile(amounts, 0.25), quantile(amounts, 0.75), quantile(amounts, 0.05), quantile(amounts, 0.95));
    spread += buffer;
  }
  std::cout << name << " (" << stains.size() << " images): " << describe(median) << "  [" << spread << "]\n";
  std::printf("  {{{%.4f, %.4f, %.4f}, {%.4f, %.4f, %.4f}}, {%.4f, %.4f}}\n", median.colour[0][0], median.colour[0][1],
              median.colour[0][2], median.colour[1][0], median.colour[1][1], median.colour[1][2], median.max_amount[0],
              median.max_amount[1]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_stain_reference SPLIT...\n";
    return 2;
  }
  try {
    std::vector<StainVectors> all;
    std::vector<double> all_weights;
    for (int a = 1; a < argc; ++a) {
      const std::shared_ptr<const data::Dataset> dataset = data::open_dataset(argv[a]);
      std::vector<StainVectors> split;
      int skipped = 0;
      for (size_t i = 0; i < dataset->size(); ++i) {
        const data::Sample s = dataset->get(i);
        const StainEstimate e = estimate_stains({&s.image});
        if (e.ok) split.push_back(e.stains);
        else ++skipped;
      }
      if (skipped) std::cout << argv[a] << ": " << skipped << " images without an estimate\n";
      if (split.empty()) continue;
      summarise(argv[a], split, std::vector<double>(split.size(), 1.0));
      for (const auto& s : split) {
        all.push_back(s);
        all_weights.push_back(1.0 / static_cast<double>(split.size()));
      }
    }
    if (!all.empty()) summarise("all", all, all_weights);
  } catch (const std::exception& e) {
    std::cerr << "bench_stain_reference: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
