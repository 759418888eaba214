// Training-free baseline: hematoxylin by colour deconvolution, Otsu threshold, watershed split.
// It needs no weights, so `nucleisam segment` works out of the box; it is a baseline, not a model.
#pragma once

#include "nucleisam/infer/postprocess.h"
#include "nucleisam/infer/segmenter.h"

namespace nucleisam::infer {

struct ClassicalOptions {
  float smoothing_sigma = 1.0f;  // Gaussian blur of the hematoxylin channel (pixels); 0 = none
  // Otsu's threshold is computed over tissue pixels only (optical density summed over R,G,B above
  // tissue_density); glass would otherwise dominate the histogram.
  float tissue_density = 0.15f;
  // Below this fraction of tissue pixels, or a hematoxylin spread (99th - 1st percentile, OD
  // units) below min_contrast, the tile is treated as blank: zero nuclei and a warning.
  float min_tissue_fraction = 0.005f;
  float min_contrast = 0.05f;
  float threshold_scale = 1.0f;  // multiplies Otsu's threshold (>1: stricter)
  int opening_radius = 1;        // morphological opening of the nucleus mask (pixels); 0 = none
  ForegroundSplitOptions split;  // hole filling, watershed depth, min_area
};

// Ruifrok & Johnston (2001) H&E optical-density vectors, rows normalised, third row their cross
// product; the hematoxylin channel is the first row of the inverse applied to per-pixel OD.
// Returns OD units (roughly 0 for glass, ~0.3..1.5 for nuclei).
Raster<float> hematoxylin_density(const Image& image);

// Otsu's threshold over the values where include != 0 (all values when include is empty).
// Uses a 256-bin histogram between the minimum and maximum of the included values.
float otsu_threshold(const Raster<float>& values, const Mask& include = {});

class ClassicalSegmenter : public Segmenter {
 public:
  explicit ClassicalSegmenter(ClassicalOptions options = {}) : options_(options) {}
  std::string name() const override { return "classical"; }
  Segmentation segment(const Image& image, const std::string& source) override;
  // Its sizes (min_area, opening, hole filling, split depth) were chosen on MoNuSeg, scanned at 40x.
  double microns_per_pixel() const override { return 0.25; }
  const ClassicalOptions& options() const { return options_; }

 private:
  ClassicalOptions options_;
};

}  // namespace nucleisam::infer
