// Postprocessing shared by every segmentation method: per-pixel maps -> instance label maps.
// The classical baseline uses instances_from_foreground today; the network heads (eU-Net3+
// foreground, unet4nuclei-style three-class outputs) reuse the same functions later.
#pragma once

#include "nucleisam/raster.h"

namespace nucleisam::infer {

// A single-channel float map (probabilities in [0, 1], or any score where higher = more nucleus).
using ProbabilityMap = Raster<float>;

struct ForegroundSplitOptions {
  float threshold = 0.5f;    // foreground = probability > threshold
  int min_area = 30;         // instances smaller than this (pixels) are removed, after splitting
  // Background pockets enclosed by foreground and at most this large (pixels) become foreground:
  // pale (vesicular) nucleus centres. Larger pockets stay background: a ring of touching nuclei
  // around a gland lumen must not become one giant object. 0 disables.
  int max_hole_area = 100;
  // Watershed on the distance transform of the foreground. Each local maximum of the distance
  // (a nucleus centre) grows a basin; two basins are kept apart only if the lower peak rises at
  // least split_depth pixels above the saddle where they meet ("dynamics" / h-maxima rule), so a
  // neck narrower than the nuclei splits them while ridge noise on one elongated nucleus does
  // not. 0 disables splitting (plain connected components).
  float split_depth = 2.0f;
};

// Threshold, optional hole filling, 8-connected components, distance-transform watershed split,
// small-object removal. Ids are 1..N in raster order of each instance's first pixel.
LabelMap instances_from_foreground(const ProbabilityMap& foreground, const ForegroundSplitOptions& options = {});

struct ThreeClassOptions {
  // A pixel is a seed (interior) when interior >= boundary * boundary_boost and interior >=
  // background, where background = 1 - interior - boundary (the argmax rule of unet4nuclei with
  // its boundary boost factor).
  float boundary_boost = 1.0f;
  int min_interior_area = 10;  // seed components smaller than this are dropped (before growing)
  // Seeds grow into the foreground (interior + boundary wins over background) by at most this
  // many 8-connected dilation steps; each pixel goes to the seed that reaches it first.
  int max_growth = 2;
  int min_area = 0;  // final instances smaller than this are removed
};

// The unet4nuclei rule: label interior components, drop small ones, grow them back over the
// boundary ring they were trained to leave out. interior and boundary must have the same size.
LabelMap instances_from_three_class(const ProbabilityMap& interior, const ProbabilityMap& boundary,
                                    const ThreeClassOptions& options = {});

// Marker-controlled watershed on `elevation` (lower = flooded first), restricted to `mask` != 0.
// Markers (> 0) keep their ids; every mask pixel connected to a marker gets the id of the marker
// that floods it first (8-connectivity; ties by flooding order). Mask pixels no marker reaches stay 0.
LabelMap watershed_from_markers(const ProbabilityMap& elevation, const LabelMap& markers, const Mask& mask);

// Removes instances smaller than min_area and renumbers the rest 1..N in raster order.
LabelMap remove_small_instances(const LabelMap& instances, int min_area);

}  // namespace nucleisam::infer
