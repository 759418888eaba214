// Training-time transforms of a Sample (image + instance map + per-instance classes). Geometric
// ops move labels with pixels (nearest neighbour, so ids stay integers and never blend) and
// renumber instances that vanish; colour ops touch only the image. Every random op takes an
// explicit std::mt19937_64 so a seed reproduces its result exactly; each has a deterministic
// value function underneath that tests can call with known parameters.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "nucleisam/data/dataset.h"

namespace nucleisam::data {

// ---- geometry -----------------------------------------------------------------------------

Sample flip_horizontal(const Sample& s);  // mirror left-right
Sample flip_vertical(const Sample& s);    // mirror top-bottom
// Quarter turns counter-clockwise as seen on screen (k may be negative or >= 4).
Sample rotate90(const Sample& s, int k);

// Maps output pixel centres to input coordinates: src = centre_in + R(-angle) (dst - centre_out) / scale
// (angle in degrees counter-clockwise on screen). The image is sampled bilinearly, labels by
// nearest neighbour; outside the input the image gets `fill` and the labels 0.
struct Warp {
  double angle_degrees = 0;
  double scale = 1;
  double centre_x = 0, centre_y = 0;  // input point that lands on the output centre
  int out_height = 0, out_width = 0;
};
Sample warp(const Sample& s, const Warp& w, uint8_t fill = 255);
// Rotation about the image centre keeping the size.
Sample rotate(const Sample& s, double angle_degrees, uint8_t fill = 255);
// Resize by `factor` (output round(h * factor) x round(w * factor)), centre-aligned pixel grids.
Sample scale(const Sample& s, double factor);

// Window of the input; parts outside are padded (image `fill`, labels 0). Instances that leave the
// window are dropped and the rest renumbered in order.
Sample crop(const Sample& s, int y, int x, int height, int width, uint8_t fill = 255);
// A uniformly placed size x size window (padded when the image is smaller).
Sample random_crop(const Sample& s, int size, std::mt19937_64& rng, uint8_t fill = 255);

// ---- colour -------------------------------------------------------------------------------

struct ColorJitterFactors {
  double brightness = 1;  // multiply
  double contrast = 1;    // blend with the mean grey level
  double saturation = 1;  // blend with the per-pixel grey level
  double hue = 0;         // shift in turns (1 = full circle)
};
// Applies brightness, contrast, saturation, hue in that fixed order, in floating point, rounding once.
Image color_jitter(const Image& image, const ColorJitterFactors& f);

struct ColorJitterRanges {
  double brightness = 0.2;  // factor drawn from [1 - b, 1 + b]
  double contrast = 0.2;
  double saturation = 0.2;
  double hue = 0.04;        // shift drawn from [-h, h]
};
ColorJitterFactors draw_color_jitter(const ColorJitterRanges& r, std::mt19937_64& rng);

// H&E stain jitter in optical-density space (Ruifrok & Johnston colour deconvolution, "HED
// jitter"): OD = -ln((I + 1) / 256); stain concentrations C = OD M^-1 with M the normalised
// haematoxylin, eosin and DAB OD vectors; C'_k = alpha_k C_k + beta_k; back through M.
struct StainFactors {
  double alpha[3] = {1, 1, 1};  // H, E, residual (DAB) scale
  double beta[3] = {0, 0, 0};   // shift, in natural-log OD units
};
Image stain_jitter(const Image& image, const StainFactors& f);

struct StainRanges {
  double alpha = 0.05;  // alpha_k drawn from [1 - a, 1 + a]
  double beta = 0.05;   // beta_k drawn from [-b, b]
  // Other labs' staining: the haematoxylin and eosin alphas are further multiplied by factors
  // drawn independently, log-uniform in [1 / s, s] (s = 2: half to twice the amount). 1: off,
  // and then no extra numbers are drawn (the draws of older recipes are unchanged).
  double amount_scale = 1;
};
StainFactors draw_stain_jitter(const StainRanges& r, std::mt19937_64& rng);

// ---- pipeline -----------------------------------------------------------------------------

struct AugmentConfig {
  int crop_size = 256;                   // 0 keeps the input size (no crop)
  bool flips = true;                     // horizontal and vertical flip, each with p = 0.5
  bool rotate90 = true;                  // k drawn from {0, 1, 2, 3}
  double rotate_probability = 0;         // arbitrary rotation, angle uniform in [-max, max]
  double max_rotation_degrees = 180;
  double scale_probability = 0;          // scale uniform in [min_scale, max_scale]
  double min_scale = 0.8, max_scale = 1.25;
  double color_probability = 0.8;
  ColorJitterRanges color;
  double stain_probability = 0.5;
  StainRanges stain;
  uint8_t fill = 255;                    // image value where a warp or crop leaves the input
};

// The training transform. Order: one warp doing crop + scale + rotation together (only output
// pixels are computed, so a 1000 x 1000 tile costs the same as a 256 patch), flips, quarter
// turns, stain jitter, colour jitter. The random draws happen in a fixed order, so the result is
// a function of (sample, config, rng state) alone.
Sample augment(const Sample& s, const AugmentConfig& config, std::mt19937_64& rng);

}  // namespace nucleisam::data
