// Speed of the metrics on real dense tiles: MoNuSeg training labels (1000x1000, ~300-1900 nuclei)
// scored against perturbed copies of themselves (identity with shuffled ids, shifted by 3x2 px,
// eroded by one pixel). Prints per-stage times and the resulting metric means.
//   bench_metrics_speed [folder of label maps, default ../shared/data/monuseg/train/instance_labels]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "nucleisam/image_io.h"
#include "nucleisam/metrics/evaluation.h"

using namespace nucleisam;
using namespace nucleisam::io;
using namespace nucleisam::metrics;
namespace fs = std::filesystem;

namespace {

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

LabelMap shuffled_ids(const LabelMap& m, std::mt19937& rng) {
  int32_t max_id = *std::max_element(m.data.begin(), m.data.end());
  std::vector<int32_t> perm(max_id + 1);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin() + 1, perm.end(), rng);
  LabelMap out = m;
  for (auto& v : out.data) v = perm[v];
  return out;
}

LabelMap shifted(const LabelMap& m, int dy, int dx) {
  LabelMap out(m.height, m.width);
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x) {
      int sy = y - dy, sx = x - dx;
      if (sy >= 0 && sx >= 0 && sy < m.height && sx < m.width) out.at(y, x) = m.at(sy, sx);
    }
  return out;
}

// A pixel survives when its 4 neighbours carry the same label.
LabelMap eroded(const LabelMap& m) {
  LabelMap out(m.height, m.width);
  for (int y = 1; y + 1 < m.height; ++y)
    for (int x = 1; x + 1 < m.width; ++x) {
      int32_t v = m.at(y, x);
      if (v && m.at(y - 1, x) == v && m.at(y + 1, x) == v && m.at(y, x - 1) == v && m.at(y, x + 1) == v)
        out.at(y, x) = v;
    }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "../shared/data/monuseg/train/instance_labels";
  if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "bench_metrics_speed: %s: no such folder\n", dir.c_str());
    return 1;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<LabelMap> gts;
  size_t nuclei = 0;
  for (const auto& f : files) {
    gts.push_back(read_label_map(f.string()));
    std::vector<int32_t> ids = gts.back().data;
    std::sort(ids.begin(), ids.end());
    nuclei += std::unique(ids.begin(), ids.end()) - ids.begin() - 1;
  }
  std::printf("%zu tiles, %zu nuclei (%.0f per tile), %dx%d\n", gts.size(), nuclei,
              static_cast<double>(nuclei) / gts.size(), gts[0].width, gts[0].height);

  std::mt19937 rng(1);
  struct Variant {
    const char* name;
    std::function<LabelMap(const LabelMap&)> make;
  };
  std::vector<Variant> variants = {
      {"identity (ids shuffled)", [&](const LabelMap& m) { return shuffled_ids(m, rng); }},
      {"shifted 3,2 px", [](const LabelMap& m) { return shifted(m, 3, 2); }},
      {"eroded 1 px", [](const LabelMap& m) { return eroded(m); }}};

  std::printf("\n%-24s %9s %9s %9s %9s %9s %9s %9s %9s | %6s %6s %6s %6s %6s %6s\n", "prediction", "overlap",
              "AJI", "AJI+", "PQ", "F1", "F_d", "COCO AP", "all/img", "Dice", "AJI", "AJI+", "PQ", "mAP",
              "F_d");
  for (const auto& v : variants) {
    std::vector<LabelMap> preds;
    for (const auto& g : gts) preds.push_back(v.make(g));
    double t_overlap = 0, t_aji = 0, t_ajip = 0, t_pq = 0, t_f1 = 0, t_fd = 0, t_ap = 0;
    CocoAveragePrecision ap(1);
    for (size_t i = 0; i < gts.size(); ++i) {
      InstanceOverlap o;
      t_overlap += seconds_of([&] { o = instance_overlap(gts[i], preds[i]); });
      volatile double sink = 0;
      t_aji += seconds_of([&] { sink = aggregated_jaccard_index(o); });
      t_ajip += seconds_of([&] { sink = aggregated_jaccard_index_plus(o); });
      t_pq += seconds_of([&] { sink = panoptic_counts(o).pq(); });
      t_f1 += seconds_of([&] { sink = object_detection_counts(o).f1(); });
      t_fd += seconds_of([&] { sink = centroid_detection(o, kHoverNetPairingRadius, {}, {}, 0).all.f1(); });
      t_ap += seconds_of([&] {
        ap.add_image(o, std::vector<int>(o.gt_count(), 1), std::vector<int>(o.pred_count(), 1),
                     std::vector<double>(o.pred_count(), 1.0));
      });
      (void)sink;
    }
    t_ap += seconds_of([&] { ap.result(); });
    Evaluation ev;
    const double t_all = seconds_of([&] {
      for (size_t i = 0; i < gts.size(); ++i) ev.add_image(std::to_string(i), {&gts[i]}, {&preds[i]});
      ev.summary();
    });
    const auto s = ev.summary();
    const double n = static_cast<double>(gts.size());
    std::printf(
        "%-24s %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms | %6.4f %6.4f %6.4f %6.4f "
        "%6.4f "
        "%6.4f\n",
        v.name, 1e3 * t_overlap / n, 1e3 * t_aji / n, 1e3 * t_ajip / n, 1e3 * t_pq / n, 1e3 * t_f1 / n,
        1e3 * t_fd / n, 1e3 * t_ap / n, 1e3 * t_all / n, s.dice.mean, s.aji.mean, s.aji_plus.mean, s.pq.mean,
        s.map.map, s.centroid.f1());
  }
  std::printf(
      "\nTimes are per tile (mean over tiles); 'all/img' is Evaluation::add_image with every metric.\n");
  return 0;
}
