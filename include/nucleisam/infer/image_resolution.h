// Images scanned at another resolution than the method was made for (a 20x tile, 0.5 um/px, given
// to a model trained at 40x, 0.25 um/px): the image is resampled to the method's resolution,
// segmented there, and the instances are brought back to the image's own pixel grid, so every
// output (polygons, CSV, label TIFF, overlay) is in the coordinates of the file the user gave.
// Whole slides choose a pyramid level instead (infer/slide_run.h).
#pragma once

#include <cstdint>

#include <string>
#include <utility>

#include "nucleisam/infer/segmenter.h"
#include "nucleisam/resample.h"  // resample_image, resample_labels

namespace nucleisam::infer {

struct ImageScale {
  double factor = 1;  // processing pixels per image pixel (image mpp / method mpp); 1: as it is
  int width = 0, height = 0;  // the processing grid
};

// The processing grid of a width x height image at `image_mpp` for a method at `method_mpp`.
// factor = image_mpp / method_mpp, snapped (snap_scale_factor: 0.2527 um/px against 0.25 is factor 1,
// 0.5 against 0.25 exactly 2).
// Either resolution <= 0 (unknown) gives factor 1. The grid is round(width * factor) x
// round(height * factor), at least 1 x 1. Throws OptionError when the grid would exceed
// limits::kMaxImagePixels.
ImageScale plan_image_scale(int width, int height, double image_mpp, double method_mpp);

// `s` brought to a width x height grid: instances resampled (resample_labels), instances too small
// to keep a pixel dropped, classes and scores following their instances.
Segmentation resample_segmentation(const Segmentation& s, int width, int height);

// Processing grids larger than this are segmented in tiles when no tile size is given, so that the
// method's working memory follows the tile, not the image (a trained model holds about 50 bytes
// per pixel of what it segments at once: 1.9 GB for 36 megapixels, 21 GB for 400).
constexpr int64_t kWholeImagePixels = int64_t{4096} * 4096;

// The tile width and height for a width x height grid: each side cut into the fewest equal tiles
// of at most 4096 pixels that overlap by `overlap` (a side of at most 4096 is one tile), so that
// the tiles cover little more than the image.
std::pair<int, int> automatic_tile_size(int width, int height, int overlap);

// Segments `image` (at `image_mpp`; <= 0: taken to be at the method's resolution) at the
// segmenter's resolution, in windows of tile_size with `overlap` (processing pixels; tile_size 0:
// whole, or in automatic_tile_size tiles when the grid is over kWholeImagePixels), and returns
// instances on the image's own grid.
Segmentation segment_at_resolution(Segmenter& segmenter, const Image& image, const std::string& source,
                                   double image_mpp, int tile_size, int overlap);

}  // namespace nucleisam::infer
