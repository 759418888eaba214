// Resampling rasters to another pixel size: images (area averaging when shrinking, bilinear when
// enlarging) and label maps (nearest pixel centre, so ids are never blended). Used to bring images
// and training data at another resolution to a model's (infer/image_resolution.h,
// train/dataset_split.h). Standard library only.
#pragma once

#include "nucleisam/raster.h"

namespace nucleisam {

// A scale factor (target pixels per source pixel, e.g. source mpp / target mpp) snapped to a whole
// number, or to the inverse of one, when within 3% of it: 0.2527 / 0.25 -> 1, 0.49 / 0.25 -> 2,
// 0.13 / 0.25 = 0.52 stays. Factors <= 0 give 1.
double snap_scale_factor(double factor);

// `image` (any channel count) at width x height. Per axis: where the axis shrinks, each target
// pixel is the mean of the source pixels its footprint covers, fractional ones in proportion (as
// OpenCV's INTER_AREA); where it grows, bilinear interpolation between pixel centres, edges
// replicated (as INTER_LINEAR). Rounded to the nearest integer. Same size: a copy. An empty image
// or target size is a DataError.
Image resample_image(const Image& image, int width, int height);

// `labels` at width x height: each target pixel takes the source pixel nearest its centre (source
// x = floor((x + 0.5) * source_width / width)).
LabelMap resample_labels(const LabelMap& labels, int width, int height);

}  // namespace nucleisam
