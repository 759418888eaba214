// The paper's interactive-refinement protocol as a benchmark (method 2): clicks simulated from
// ground truth. Step by step, each nucleus class gets one more point, on the ground-truth nucleus
// of that class the current result is least confident about (not yet clicked); the crops holding
// the new points are re-run with all points so far (CategorySamSegmenter::refine), and the result
// is evaluated after 0, 1, 2, 4, 8, 16 points per class (per-class object F1 and the rest of
// metrics::EvaluationSummary).
#pragma once

#include <vector>

#include "nucleisam/data/dataset.h"
#include "nucleisam/metrics/evaluation.h"
#include "nucleisam/predict/category_sam_segmenter.h"

namespace nucleisam::predict {

struct ClickBenchmarkOptions {
  std::vector<int> steps{0, 1, 2, 4, 8, 16};  // points per class at which to evaluate (ascending)
};

struct ClickStep {
  int points_per_class = 0;
  metrics::EvaluationSummary summary;
};

// Confidence of the current result in ground-truth nucleus `gt_id` of class `gt_class`: the score
// of the predicted instance overlapping it most when that instance has the same class and
// IoU >= 0.5, else 0 (missed or misclassified nuclei come first).
double gt_confidence(const LabelMap& gt, int32_t gt_id, int gt_class, const infer::Segmentation& pred);

// Where a click on ground-truth nucleus `gt_id` lands: its pixel nearest to its centroid
// (x, y in pixels, at the pixel centre).
std::pair<float, float> click_point(const LabelMap& gt, int32_t gt_id);

// Samples must be classed (Sample::classes); throws DataError otherwise.
std::vector<ClickStep> click_benchmark(CategorySamSegmenter& segmenter, const std::vector<data::Sample>& samples,
                                       const ClickBenchmarkOptions& options = {});

}  // namespace nucleisam::predict
