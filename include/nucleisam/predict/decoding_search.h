// Choosing a model's instance decoding on annotated images: the network runs once per image, then
// each candidate decoding (infer/model_decoding.h) is evaluated with the library's metrics and the
// best by one metric wins (AJI unless asked otherwise). The trainer's validation compares a few candidates
// every epoch; `nucleisam export --tune-on` searches a grid once training is done (on validation images,
// never test ones).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "nucleisam/data/dataset.h"
#include "nucleisam/infer/model_decoding.h"
#include "nucleisam/metrics/evaluation.h"
#include "nucleisam/predict/model_segmenter.h"

namespace nucleisam::predict {
using infer::DecodingOptions;

struct DecodingCandidate {
  std::string label;
  DecodingOptions options;
};

// The small set the trainer compares each validation: three_class, and distance at two marker levels
// when the model has a distance head.
std::vector<DecodingCandidate> validation_candidates(const models::HeadLayout& heads);
// A grid around the defaults of both methods (a few dozen candidates).
std::vector<DecodingCandidate> tuning_grid(const models::HeadLayout& heads);

// What a decoding is chosen by: "aji" (mean over images), "pq" (binary PQ, mean over images),
// "f1_d" (HoVer-Net's centroid detection F1, pooled) or, for a model with a type head, "mpq_plus"
// (CoNIC) or "f1_c" (mean of HoVer-Net's per-type F_c over the classes where it is defined).
const std::vector<std::string>& decoding_metric_names();
// The value of `metric` in `s` (NaN when undefined there). Throws OptionError for an unknown name.
double decoding_metric_value(const metrics::EvaluationSummary& s, const std::string& metric);

struct DecodingComparison {
  std::vector<metrics::EvaluationSummary> summaries;  // by candidate
  size_t best = 0;                                    // index of the best by the chosen metric
};

// The index of the summary with the highest `metric`: ties go to the earlier one, and one where
// the metric is undefined (NaN) never wins over one where it is defined (0 when it is NaN in all).
size_t best_by_metric(const std::vector<metrics::EvaluationSummary>& summaries, const std::string& metric);

// Runs `segmenter` on every sample once and evaluates every candidate against the sample's
// instances (and classes when the model has a type head). The best candidate is the one with the
// highest `metric` (best_by_metric). A class metric for a model without classes is an OptionError.
DecodingComparison compare_decodings(ModelSegmenter& segmenter, const std::vector<data::Sample>& samples,
                                     const std::vector<DecodingCandidate>& candidates,
                                     const std::string& metric = "aji");

}  // namespace nucleisam::predict
