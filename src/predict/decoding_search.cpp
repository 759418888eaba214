// Decoding comparison on annotated images (see decoding_search.h).
#include "nucleisam/predict/decoding_search.h"

#include <cmath>
#include <limits>

#include <cmath>

#include "nucleisam/errors.h"

namespace nucleisam::predict {
using namespace nucleisam::infer;

std::vector<DecodingCandidate> validation_candidates(const models::HeadLayout& heads) {
  std::vector<DecodingCandidate> c;
  c.push_back({"three_class", DecodingOptions{}});
  if (heads.distance)
    for (float level : {0.4f, 0.55f}) {
      DecodingOptions d;
      d.method = "distance";
      d.marker_threshold = level;
      c.push_back({"distance_" + std::to_string(static_cast<int>(std::lround(level * 100))), d});
    }
  return c;
}

std::vector<DecodingCandidate> tuning_grid(const models::HeadLayout& heads) {
  std::vector<DecodingCandidate> c;
  for (float boost : {0.5f, 1.0f, 2.0f})
    for (int growth : {1, 2, 3})
      for (int min_interior : {5, 15}) {
        DecodingOptions d;
        d.three_class.boundary_boost = boost;
        d.three_class.max_growth = growth;
        d.three_class.min_interior_area = min_interior;
        c.push_back({"three_class boost " + std::to_string(boost).substr(0, 3) + " growth " +
                         std::to_string(growth) + " min_interior " + std::to_string(min_interior),
                     d});
      }
  if (heads.distance)
    for (float fg : {0.4f, 0.5f, 0.6f})
      for (float marker : {0.3f, 0.4f, 0.5f, 0.6f, 0.7f})
        for (int min_marker : {3, 10}) {
          DecodingOptions d;
          d.method = "distance";
          d.foreground_threshold = fg;
          d.marker_threshold = marker;
          d.min_marker_area = min_marker;
          c.push_back({"distance foreground " + std::to_string(fg).substr(0, 3) + " marker " +
                           std::to_string(marker).substr(0, 3) + " min_marker " + std::to_string(min_marker),
                       d});
        }
  return c;
}

const std::vector<std::string>& decoding_metric_names() {
  static const std::vector<std::string> names{"aji", "pq", "f1_d", "mpq_plus", "f1_c"};
  return names;
}

double decoding_metric_value(const metrics::EvaluationSummary& s, const std::string& metric) {
  if (metric == "aji") return s.aji.mean;
  if (metric == "pq") return s.pq.mean;
  if (metric == "f1_d") return s.centroid.f1();
  if (metric == "mpq_plus") return s.mpq_plus;
  if (metric == "f1_c") return metrics::mean_f1_c(s);
  std::string known;
  for (const auto& n : decoding_metric_names()) known += (known.empty() ? "" : ", ") + n;
  throw OptionError("unknown decoding metric '" + metric + "' (one of " + known + ")");
}

DecodingComparison compare_decodings(ModelSegmenter& segmenter, const std::vector<data::Sample>& samples,
                                     const std::vector<DecodingCandidate>& candidates,
                                     const std::string& metric) {
  const models::ModelCard& card = segmenter.card();
  decoding_metric_value(metrics::EvaluationSummary{}, metric);  // an unknown name fails before any work
  if ((metric == "mpq_plus" || metric == "f1_c") && card.heads.num_classes == 0)
    throw OptionError("decoding metric '" + metric + "' needs a model with nucleus types; " + card.name +
                      " has none");
  metrics::EvaluationOptions eo;
  eo.num_classes = card.heads.num_classes;
  std::vector<metrics::Evaluation> evals(candidates.size(), metrics::Evaluation(eo));
  for (const data::Sample& s : samples) {
    HeadMaps maps = segmenter.predict(s.image);
    for (size_t k = 0; k < candidates.size(); ++k) {
      Segmentation seg = assemble_segmentation(maps, decode_instances(maps, candidates[k].options), card.class_names);
      std::vector<double> scores(seg.scores.begin(), seg.scores.end());
      const bool classes = eo.num_classes > 0;
      evals[k].add_image(s.name, {&s.instances, classes ? &s.classes : nullptr, nullptr},
                         {&seg.instances, classes ? &seg.classes : nullptr, &scores});
    }
  }
  DecodingComparison out;
  for (size_t k = 0; k < candidates.size(); ++k) out.summaries.push_back(evals[k].summary());
  out.best = best_by_metric(out.summaries, metric);
  return out;
}

size_t best_by_metric(const std::vector<metrics::EvaluationSummary>& summaries, const std::string& metric) {
  size_t best = 0;
  double best_value = std::numeric_limits<double>::quiet_NaN();
  for (size_t k = 0; k < summaries.size(); ++k) {
    const double v = decoding_metric_value(summaries[k], metric);
    if (!std::isnan(v) && (std::isnan(best_value) || v > best_value)) {
      best = k;
      best_value = v;
    }
  }
  return best;
}

}  // namespace nucleisam::predict
