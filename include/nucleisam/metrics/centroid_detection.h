// Detection and classification by centroid distance, as HoVer-Net's compute_stats.py
// (run_nuclei_type_stat) scores CoNSeP, PanNuke and Lizard: the detection quality F_d, the type
// accuracy of the detected nuclei and the per-type F_c. These are the numbers HoVer-Net, CellViT and
// most nucleus classifiers publish; the IoU-matched object F1 of instance_metrics.h is a stricter,
// different measure. Exact definitions and departures: docs/metrics.md.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "nucleisam/metrics/overlap.h"

namespace nucleisam::metrics {

// HoVer-Net's pairing radius, in pixels (its CoNSeP / PanNuke setting at 40x, 0.25 um/px).
constexpr double kHoverNetPairingRadius = 12.0;

struct CentroidPairing {
  std::vector<std::pair<int, int>> pairs;       // (gt, pred) indices, ascending gt
  std::vector<int> unpaired_gt, unpaired_pred;  // ascending
};

// HoVer-Net's pair_coordinates: the one-to-one assignment of minimum total Euclidean distance over
// all ground-truth x predicted centroids (min(n_gt, n_pred) pairs, scipy's linear_sum_assignment on
// the full distance matrix), after which pairs farther apart than `radius` are dropped. The
// assignment is global, so a far-off nucleus can take a near one's partner: that is the reference's
// rule, kept so that the scores equal its. Among assignments of equal total distance the one chosen
// may differ from scipy's.
CentroidPairing pair_centroids(const std::vector<InstanceOverlap::Point>& gt,
                               const std::vector<InstanceOverlap::Point>& pred, double radius);

// Class-agnostic detection counts, pooled over images by summing.
struct CentroidDetectionCounts {
  int64_t paired = 0, unpaired_pred = 0, unpaired_gt = 0;
  // When classes are evaluated: paired nuclei whose truth has a class (> 0), and those of them whose
  // predicted class agrees. A ground-truth nucleus of class 0 has no known type: it counts for
  // detection only (HoVer-Net's `exhaustive=False` rule for type -1).
  int64_t typed_pairs = 0, same_class = 0;
  double f1() const;             // F_d = 2 paired / (2 paired + unpaired_pred + unpaired_gt)
  double precision() const;      // paired / (paired + unpaired_pred)
  double recall() const;         // paired / (paired + unpaired_gt)
  double type_accuracy() const;  // same_class / typed_pairs
  CentroidDetectionCounts& operator+=(const CentroidDetectionCounts& o);
};

// One class t, pooled over images by summing.
struct CentroidClassCounts {
  int64_t paired_both = 0;       // paired, truth and prediction both t
  int64_t paired_pred_only = 0;  // paired, predicted t, truth another class (not 0: unknown type)
  int64_t paired_gt_only = 0;    // paired, truth t, predicted another class (or unclassified)
  int64_t unpaired_pred = 0;     // predicted t, no partner
  int64_t unpaired_gt = 0;       // truth t, no partner
  // F_c = 2 both / (2 both + 2 pred_only + 2 gt_only + unpaired_pred + unpaired_gt): HoVer-Net's
  // weights (2, 2, 1, 1). NaN when the class occurs on neither side.
  double f1() const;
  CentroidClassCounts& operator+=(const CentroidClassCounts& o);
};

struct CentroidDetection {
  CentroidDetectionCounts all;
  std::vector<CentroidClassCounts> classes;  // by class - 1; empty when class-agnostic
};

// One image. gt_class / pred_class hold each instance's class by dense index (0 = unclassified);
// pass empty vectors and num_classes 0 for a class-agnostic evaluation.
CentroidDetection centroid_detection(const InstanceOverlap& o, double radius,
                                     const std::vector<int>& gt_class, const std::vector<int>& pred_class,
                                     int num_classes);

}  // namespace nucleisam::metrics
