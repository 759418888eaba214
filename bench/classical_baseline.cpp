// Accuracy and speed of the training-free classical baseline (--model classical) on annotated
// splits. Usage: bench_classical_baseline [split folder ...] (default: MoNuSeg train and test,
// CoNSeP-256 test under ../shared/data). Metrics are per-image means (MoNuSeg practice): pixel
// Dice, AJI, AJI+, binary PQ, object F1 at IoU 0.5. Results go to docs/BENCHMARKS.md
// ("Classical baseline").
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/classical_segmenter.h"
#include "nucleisam/infer/tiling.h"
#include "nucleisam/log.h"
#include "nucleisam/metrics/instance_metrics.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

struct Mean {
  double sum = 0;
  int n = 0;
  void add(double v) {
    if (!std::isnan(v)) sum += v, ++n;
  }
  double value() const { return n ? sum / n : NAN; }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> splits;
  int tile = 0, overlap = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tile" && i + 1 < argc) {
      std::string v = argv[++i];
      tile = std::atoi(v.c_str());
      if (auto comma = v.find(','); comma != std::string::npos) overlap = std::atoi(v.c_str() + comma + 1);
    } else {
      splits.push_back(a);
    }
  }
  if (splits.empty())
    splits = {"../shared/data/monuseg/train", "../shared/data/monuseg/test", "../shared/data/consep256/test"};
  log::set_level(log::Level::warn);
  ClassicalSegmenter segmenter;
  if (tile > 0) std::printf("tiles of %d px, overlap %d px, stitched\n", tile, overlap);
  std::printf("%-34s %6s %7s %7s %7s %7s %7s %9s %9s\n", "split", "images", "Dice", "AJI", "AJI+", "PQ",
              "F1@0.5", "pred/gt", "s/image");
  for (const auto& split : splits) {
    try {
      auto ds = data::open_dataset(split);
      Mean dice, aji, aji_plus, pq, f1;
      long long predicted = 0, annotated = 0;
      double seconds = 0;
      for (size_t i = 0; i < ds->size(); ++i) {
        data::Sample s = ds->get(i);
        auto t0 = std::chrono::steady_clock::now();
        LabelMap pred = segment_in_tiles(segmenter, s.image, s.name, tile, overlap).instances;
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        auto o = metrics::instance_overlap(s.instances, pred);
        dice.add(metrics::foreground_counts(o).dice());
        aji.add(metrics::aggregated_jaccard_index(o));
        aji_plus.add(metrics::aggregated_jaccard_index_plus(o));
        pq.add(metrics::panoptic_counts(o).pq());
        f1.add(metrics::object_detection_counts(o).f1());
        predicted += static_cast<long long>(o.pred_count());
        annotated += static_cast<long long>(o.gt_count());
      }
      std::printf("%-34s %6zu %7.4f %7.4f %7.4f %7.4f %7.4f %4lld/%-4lld %9.3f\n", split.c_str(), ds->size(),
                  dice.value(), aji.value(), aji_plus.value(), pq.value(), f1.value(), predicted, annotated,
                  ds->size() ? seconds / ds->size() : 0.0);
    } catch (const Error& e) {
      std::printf("%-34s skipped: %s\n", split.c_str(), e.what());
    }
  }
  return 0;
}
