// The reference stains of nucleisam::reference_stains(): Macenko's estimate (nucleisam/stain.h) of
// every image of the given dataset splits, then per split and over all of them the median of each
// colour component (renormalised to unit length) and of each stain's 99th-percentile amount, with
// the 5th-95th percentile range of the amounts (training_amount_range). The shipped constants
// (reference_stains, reference_amount_range) are the "all" lines for the shipped models' training sets:
//
//   bench_stain_reference ../shared/data/monuseg/train ../shared/data/consep256/train
//
// --keep-dyes estimates with every tissue pixel (StainEstimateOptions::skip_dyes off, the estimate
// before 2026-11-30); --per-image CSV writes each image's amounts, tissue and dye pixels.
//
// Splits count equally in "all": every split's images are weighted so that each split sums to the
// same weight (training_amount_range, weighted_quantile).
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

void summarise(const std::string& name, const std::vector<StainVectors>& stains, const std::vector<double>& weights) {
  StainVectors median;
  auto column = [&](auto get) {
    std::vector<std::pair<double, double>> v;
    for (size_t i = 0; i < stains.size(); ++i) v.emplace_back(get(stains[i]), weights[i]);
    return v;
  };
  for (int k = 0; k < 2; ++k) {
    for (int c = 0; c < 3; ++c)
      median.colour[k][c] = weighted_quantile(column([&](const StainVectors& s) { return s.colour[k][c]; }), 0.5);
    double norm = 0;
    for (double x : median.colour[k]) norm += x * x;
    for (double& x : median.colour[k]) x /= std::sqrt(norm);
    median.max_amount[k] = weighted_quantile(column([&](const StainVectors& s) { return s.max_amount[k]; }), 0.5);
  }
  const StainAmountRange plain = training_amount_range(stains, weights, 1.0), range = training_amount_range(stains, weights);
  std::cout << name << " (" << stains.size() << " images): median " << describe(median) << '\n';
  std::printf("  5-95%%: haematoxylin %.2f-%.2f, eosin %.2f-%.2f; widened by 1.1: %.2f-%.2f, %.2f-%.2f\n", plain.low[0],
              plain.high[0], plain.low[1], plain.high[1], range.low[0], range.high[0], range.low[1], range.high[1]);
  std::printf("  {{{%.4f, %.4f, %.4f}, {%.4f, %.4f, %.4f}}, {%.4f, %.4f}}\n", median.colour[0][0], median.colour[0][1],
              median.colour[0][2], median.colour[1][0], median.colour[1][1], median.colour[1][2], median.max_amount[0],
              median.max_amount[1]);
}

}  // namespace

int main(int argc, char** argv) {
  StainEstimateOptions options;
  std::vector<std::string> splits;
  std::FILE* per_image = nullptr;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--keep-dyes")
      options.skip_dyes = false;
    else if (arg == "--per-image" && a + 1 < argc) {
      per_image = std::fopen(argv[++a], "w");
      if (!per_image) {
        std::cerr << "bench_stain_reference: " << argv[a] << ": cannot open for writing\n";
        return 1;
      }
      std::fprintf(per_image, "split,image,ok,haematoxylin,eosin,tissue_pixels,dye_pixels\n");
    } else
      splits.push_back(arg);
  }
  if (splits.empty()) {
    std::cerr << "usage: bench_stain_reference [--keep-dyes] [--per-image CSV] SPLIT...\n";
    return 2;
  }
  try {
    std::vector<StainVectors> all;
    std::vector<double> all_weights;
    for (const std::string& path : splits) {
      const std::shared_ptr<const data::Dataset> dataset = data::open_dataset(path);
      std::vector<StainVectors> split;
      int skipped = 0;
      for (size_t i = 0; i < dataset->size(); ++i) {
        const data::Sample s = dataset->get(i);
        const StainEstimate e = estimate_stains({&s.image}, options);
        if (per_image)
          std::fprintf(per_image, "%s,%s,%d,%.4f,%.4f,%lld,%lld\n", path.c_str(), dataset->name(i).c_str(),
                       e.ok ? 1 : 0, e.stains.max_amount[0], e.stains.max_amount[1],
                       static_cast<long long>(e.tissue_pixels), static_cast<long long>(e.dye_pixels));
        if (e.ok) split.push_back(e.stains);
        else ++skipped;
      }
      if (skipped) std::cout << path << ": " << skipped << " images without an estimate\n";
      if (split.empty()) continue;
      summarise(path, split, std::vector<double>(split.size(), 1.0));
      for (const auto& s : split) {
        all.push_back(s);
        all_weights.push_back(1.0 / static_cast<double>(split.size()));
      }
    }
    if (!all.empty()) summarise("all", all, all_weights);
    if (per_image) std::fclose(per_image);
  } catch (const std::exception& e) {
    std::cerr << "bench_stain_reference: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
