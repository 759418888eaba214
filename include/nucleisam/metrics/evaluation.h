// Dataset-level evaluation: every metric of this module for each image, and their aggregation over
// images the way the field reports them (per-image means for Dice/AJI/PQ, pooled counts for
// mPQ+ and object F1, pooled detections for COCO mAP, per-class R^2 over images). The `eval`
// command and the benchmarks use this; docs/metrics.md states each definition.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "nucleisam/metrics/centroid_detection.h"
#include "nucleisam/metrics/class_confusion.h"
#include "nucleisam/metrics/coco_map.h"
#include "nucleisam/metrics/count_r2.h"
#include "nucleisam/metrics/instance_metrics.h"
#include "nucleisam/raster.h"

namespace nucleisam::metrics {

struct EvaluationOptions {
  int num_classes = 0;        // 0: class-agnostic only; C: classes 1..C are evaluated too
  double pq_match_iou = 0.5;  // PQ / mPQ+: pairs match when IoU > this
  double f1_match_iou = 0.5;  // object F1: pairs match when IoU >= this
  int max_detections = 0;     // COCO AP: per image and category; 0 = no limit
  double pair_radius = kHoverNetPairingRadius;  // F_d / F_c: centroids paired within this (pixels)
};

// One side of an image. classes/scores are per instance by label (index label - 1, as in
// data::Sample); null or empty classes mean "unclassified", null or empty scores mean 1 for all.
struct InstanceSet {
  const LabelMap* instances = nullptr;
  const std::vector<int>* classes = nullptr;
  const std::vector<double>* scores = nullptr;
};

struct ImageEvaluation {
  std::string name;
  std::string group;  // e.g. the tissue type (PanNuke); "" when not given
  size_t gt_instances = 0, pred_instances = 0;
  PixelCounts pixels;
  double aji = 0, aji_plus = 0;
  PanopticCounts pq;          // class-agnostic ("binary") PQ terms
  DetectionCounts detection;  // class-agnostic object F1 terms
  CentroidDetection centroid;  // HoVer-Net's F_d terms (and F_c per class when classed)
  // By class - 1; empty when the evaluation is class-agnostic.
  std::vector<PanopticCounts> class_pq;
  std::vector<DetectionCounts> class_detection;
  std::vector<int64_t> gt_counts, pred_counts;
};

// A mean over images of a per-image value, skipping images where it is undefined (NaN).
struct MeanOverImages {
  double mean = std::numeric_limits<double>::quiet_NaN();
  size_t counted = 0;
};

// PanNuke's way of averaging a per-image score (TissueImageAnalytics/PanNuke-metrics): images
// whose score is undefined are skipped, each group's (tissue's) images are averaged, then the
// groups; without groups this is the mean over images.
struct GroupedMean {
  double mean = std::numeric_limits<double>::quiet_NaN();
  size_t images = 0, groups = 0;  // counted (defined) images and groups
};

struct ClassSummary {
  PanopticCounts pq;          // summed over images
  double pq_plus = 0;         // CoNIC's per-class PQ from the sums (0 when the class never occurs)
  DetectionCounts detection;  // summed over images
  CentroidClassCounts centroid;  // summed over images: HoVer-Net's F_c
  double ap = 0, ap50 = 0, ap75 = 0;
  double pixel_iou = 0, pixel_dice = 0;  // pooled over all pixels
  double count_r2 = 0;
  // PanNuke's per-class PQ: mean over the images whose ground truth has the class (not grouped).
  MeanOverImages pannuke_pq;
};

struct EvaluationSummary {
  size_t images = 0;
  int max_detections = 0;
  MeanOverImages dice, iou, aji, aji_plus, dq, sq, pq;
  PixelCounts pixels;                // pooled over images
  DetectionCounts detection;         // pooled over images
  CentroidDetectionCounts centroid;  // pooled over images: F_d, and type accuracy when classed
  CocoAveragePrecision::Result map;  // class-agnostic: one category holding every instance
  double count_r2 = 0;               // R^2 of per-image instance counts
  GroupedMean pannuke_bpq;           // PanNuke bPQ: binary PQ of images with ground truth
  // Classes (empty / NaN when class-agnostic).
  std::vector<ClassSummary> classes;
  double mpq_plus = std::numeric_limits<double>::quiet_NaN();
  double mean_f1 = std::numeric_limits<double>::quiet_NaN();  // over classes with a defined F1
  double class_map = std::numeric_limits<double>::quiet_NaN(), class_map50 = class_map,
         class_map75 = class_map;
  double miou = std::numeric_limits<double>::quiet_NaN();
  double mean_count_r2 = std::numeric_limits<double>::quiet_NaN();
  GroupedMean pannuke_mpq;  // PanNuke mPQ: per image the mean PQ of the classes its truth has
};

// The mean of HoVer-Net's per-class F_c over the classes where it is defined; NaN when none is.
double mean_f1_c(const EvaluationSummary& s);

class Evaluation {
 public:
  explicit Evaluation(EvaluationOptions options = {});
  // Evaluates one image and keeps what the summary needs; the reference returned is valid until the
  // next add_image. Throws DataError (sizes differ, class
  // out of range, classes missing while classes are evaluated); the caller adds the file names.
  // `group` (e.g. a tissue type) only matters for the PanNuke averages.
  const ImageEvaluation& add_image(const std::string& name, const InstanceSet& gt, const InstanceSet& pred,
                                   const std::string& group = "");
  const std::vector<ImageEvaluation>& images() const { return images_; }
  const EvaluationOptions& options() const { return options_; }
  EvaluationSummary summary() const;

 private:
  EvaluationOptions options_;
  std::vector<ImageEvaluation> images_;
  CocoAveragePrecision binary_ap_;
  CountR2 total_counts_;
  // Only when classes are evaluated.
  std::optional<CocoAveragePrecision> class_ap_;
  std::optional<ClassConfusion> confusion_;
  std::optional<CountR2> class_counts_;
};

}  // namespace nucleisam::metrics
