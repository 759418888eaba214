// Instance-level metrics of one image, computed from an InstanceOverlap: pixel Dice/IoU of the
// foreground, AJI (Kumar et al. 2017), AJI+ (Graham et al. 2019), panoptic quality (Kirillov et
// al. 2019, HoVer-Net's get_fast_pq) and object-level F1 (unique matching by highest IoU).
// Exact definitions, matching rules and empty-image conventions: docs/metrics.md.
// Undefined values (0/0, e.g. Dice with both maps empty) are NaN.
#pragma once

#include <cstdint>

#include "nucleisam/metrics/overlap.h"

namespace nucleisam::metrics {

// Binary foreground agreement (label > 0) derived from the overlap: no extra pixel pass.
struct PixelCounts {
  int64_t tp = 0, fp = 0, fn = 0;
  double dice() const;  // 2TP / (2TP + FP + FN); NaN when both foregrounds are empty
  double iou() const;   // TP / (TP + FP + FN);   NaN when both foregrounds are empty
  PixelCounts& operator+=(const PixelCounts& o);
};
PixelCounts foreground_counts(const InstanceOverlap& o);

// AJI as distributed by MoNuSeg: each ground-truth instance is paired with the prediction of
// highest IoU (a prediction may serve several), pairs without overlap are dropped, unpaired
// instances of both sides add their area to the union. 0 when exactly one side is empty, NaN
// when both are.
double aggregated_jaccard_index(const InstanceOverlap& o);
// AJI+: the same sums over a maximum-total-IoU one-to-one pairing.
double aggregated_jaccard_index_plus(const InstanceOverlap& o);

// Matching counts for panoptic quality. Pairs match when IoU > match_iou (strictly). For
// match_iou >= 0.5 such pairs are unique by construction; below 0.5 the maximum-total-IoU
// one-to-one pairing is computed first and then thresholded, as HoVer-Net does.
struct PanopticCounts {
  int64_t tp = 0, fp = 0, fn = 0;
  double iou_sum = 0;  // summed IoU of the matched pairs
  double dq() const;   // TP / (TP + FP/2 + FN/2); NaN when TP + FP + FN == 0
  double sq() const;   // iou_sum / TP; 0 when TP == 0 but FP + FN > 0; NaN when all are 0
  double pq() const;   // dq * sq
  bool empty() const { return tp + fp + fn == 0; }
  PanopticCounts& operator+=(const PanopticCounts& o);
};
PanopticCounts panoptic_counts(const InstanceOverlap& o, double match_iou = 0.5);

// Object-level detection counts: unique matching by highest IoU first (greedy), a pair counts
// when its IoU >= min_iou and > 0. F1 = TP / (TP + (FP + FN) / 2); NaN when TP + FP + FN == 0.
struct DetectionCounts {
  int64_t tp = 0, fp = 0, fn = 0;
  double f1() const;
  double precision() const;  // NaN without predictions
  double recall() const;     // NaN without ground truth
  DetectionCounts& operator+=(const DetectionCounts& o);
};
DetectionCounts object_detection_counts(const InstanceOverlap& o, double min_iou = 0.5);

}  // namespace nucleisam::metrics
