// Simulated-click refinement benchmark (see click_benchmark.h).
#include "nucleisam/predict/click_benchmark.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "nucleisam/errors.h"

namespace nucleisam::predict {

double gt_confidence(const LabelMap& gt, int32_t gt_id, int gt_class, const infer::Segmentation& pred) {
  std::map<int32_t, int64_t> overlap;
  int64_t area = 0;
  for (size_t i = 0; i < gt.data.size(); ++i)
    if (gt.data[i] == gt_id) {
      ++area;
      if (pred.instances.data[i] > 0) ++overlap[pred.instances.data[i]];
    }
  if (overlap.empty()) return 0.0;
  const auto best = std::max_element(overlap.begin(), overlap.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  const int32_t p = best->first;
  int64_t pred_area = 0;
  for (int32_t v : pred.instances.data) pred_area += v == p;
  const double iou = double(best->second) / double(area + pred_area - best->second);
  const int pred_class = pred.classes.empty() ? 1 : pred.classes[p - 1];
  if (iou < 0.5 || pred_class != gt_class) return 0.0;
  return pred.scores.empty() ? 1.0 : pred.scores[p - 1];
}

std::pair<float, float> click_point(const LabelMap& gt, int32_t gt_id) {
  double sx = 0, sy = 0;
  int64_t n = 0;
  for (int y = 0; y < gt.height; ++y)
    for (int x = 0; x < gt.width; ++x)
      if (gt.at(y, x) == gt_id) sx += x, sy += y, ++n;
  if (n == 0) throw DataError("click_point: no nucleus " + std::to_string(gt_id));
  const double cx = sx / double(n), cy = sy / double(n);
  double best = std::numeric_limits<double>::infinity();
  std::pair<float, float> out{0.0f, 0.0f};
  for (int y = 0; y < gt.height; ++y)
    for (int x = 0; x < gt.width; ++x)
      if (gt.at(y, x) == gt_id) {
        const double d = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        if (d < best) best = d, out = {float(x), float(y)};
      }
  return out;
}

std::vector<ClickStep> click_benchmark(CategorySamSegmenter& segmenter, const std::vector<data::Sample>& samples,
                                       const ClickBenchmarkOptions& options) {
  const int num_classes = segmenter.card().heads.num_classes;
  if (num_classes <= 0) throw OptionError("click benchmark: the model has no nucleus classes");
  if (options.steps.empty() || !std::is_sorted(options.steps.begin(), options.steps.end()) || options.steps[0] < 0)
    throw OptionError("click benchmark: steps must be ascending point counts >= 0");
  metrics::EvaluationOptions eo;
  eo.num_classes = num_classes;
  std::vector<metrics::Evaluation> evals(options.steps.size(), metrics::Evaluation(eo));
  for (const data::Sample& s : samples) {
    if (!s.classed) throw DataError(s.name + ": the click benchmark needs nucleus classes");
    TiledSegmentation tiled = segmenter.run(s.image);
    std::set<int32_t> clicked;
    int done = 0;
    for (size_t k = 0; k < options.steps.size(); ++k) {
      for (; done < options.steps[k]; ++done) {
        const infer::Segmentation current = segmenter.stitch(tiled);
        std::vector<PointPrompt> points;
        for (int c = 1; c <= num_classes; ++c) {
          int32_t pick = 0;
          double lowest = std::numeric_limits<double>::infinity();
          for (size_t i = 0; i < s.classes.size(); ++i) {
            const int32_t id = static_cast<int32_t>(i + 1);
            if (s.classes[i] != c || clicked.count(id)) continue;
            const double conf = gt_confidence(s.instances, id, c, current);
            if (conf < lowest) lowest = conf, pick = id;
          }
          if (pick == 0) continue;  // every nucleus of this class has its click
          clicked.insert(pick);
          const auto [x, y] = click_point(s.instances, pick);
          points.push_back({x, y, c});
        }
        if (points.empty()) break;
        tiled = segmenter.refine(s.image, tiled, points);
      }
      const infer::Segmentation seg = segmenter.stitch(tiled);
      std::vector<double> scores(seg.scores.begin(), seg.scores.end());
      evals[k].add_image(s.name, {&s.instances, &s.classes, nullptr}, {&seg.instances, &seg.classes, &scores});
    }
  }
  std::vector<ClickStep> out;
  for (size_t k = 0; k < options.steps.size(); ++k) out.push_back({options.steps[k], evals[k].summary()});
  return out;
}

}  // namespace nucleisam::predict
