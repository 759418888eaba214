// The stain colours of H&E images, in optical density (OD, Beer-Lambert: OD = -ln(I / I0)):
// estimating an image's haematoxylin and eosin colours and amounts (Macenko et al. 2009, "A method
// for normalizing histology slides for quantitative analysis") and drawing an image again with
// reference ones, so that tissue stained or scanned in another lab looks like what a model learned
// from. Standard library only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam {

// OD of an 8-bit level: -ln((level + 1) / 256), 0 for white, ln 256 = 5.55 for black.
double optical_density(int level);

// The RGB image whose OD is OD' = OD A + shift at every pixel (OD a row vector over R, G, B),
// rounded to the nearest level and clamped to 0-255: three table look-ups, a sum and one
// exponential per value (densities below -0.01 saturate at white).
// `image` must have 3 channels (DataError otherwise).
Image map_optical_density(const Image& image, const double a[3][3], const double shift[3]);

// Two stains of an image: their unit OD colours and how much of each the darkest tissue carries.
struct StainVectors {
  double colour[2][3] = {{0, 0, 0}, {0, 0, 0}};  // haematoxylin (0), eosin (1): unit OD over R, G, B
  double max_amount[2] = {0, 0};                 // percentile (99th) of each stain's amount over tissue
};

struct StainEstimateOptions {
  double tissue_od = 0.15;                // tissue: OD at least this in each of R, G, B
  double angle_percentile = 1;            // stain colours at this percentile of angle and 100 - it
  double amount_percentile = 99;          // StainVectors::max_amount
  int64_t min_tissue_pixels = 2000;       // fewer: no estimate
  int64_t max_pixels = int64_t{4} << 20;  // more pixels in all: every k-th is used (a fixed stride)
  double min_angle_degrees = 5;           // the two colours at least this far apart
  // Tissue pixels no mix of haematoxylin and eosin gives are left out: dark grey or black ones
  // (black ink, carbon pigment: mean OD over 1, R, G and B within 15% of it) and green or cyan
  // ones (green OD under 0.6 of red's: marking dyes, green ink; both stains absorb at least as
  // much green as red). Blue ink looks like haematoxylin and stays.
  bool skip_dyes = true;
};

struct StainEstimate {
  bool ok = false;
  std::string why;  // when !ok: the cause ("too little tissue to estimate its stains (812 pixels, 2000 needed)")
  StainVectors stains;
  int64_t tissue_pixels = 0;  // of the pixels looked at
  int64_t dye_pixels = 0;     // tissue pixels left out as no H&E mix (StainEstimateOptions::skip_dyes)
};

// Macenko's estimate from the tissue pixels of all `images` together (3-channel; DataError
// otherwise): the plane of their OD's two largest variances (covariance eigenvectors, the first
// oriented positive), the directions at the angle_percentile and 100 - angle_percentile of the
// pixels' angles in it as the two stain colours (the one absorbing more red is haematoxylin), and
// each stain's amount per pixel by least squares. Not ok, with the cause, when there is too little
// tissue or the two colours cannot be told apart (a grey image, one stain only).
StainEstimate estimate_stains(const std::vector<const Image*>& images, const StainEstimateOptions& options = {});

// `image` with each pixel's stain amounts (least squares on `source`'s colours) scaled by target
// max_amount / source max_amount and drawn in `target`'s colours; OD that neither stain explains is
// dropped. White stays white. A linear map of OD (map_optical_density).
Image normalize_stains(const Image& image, const StainVectors& source, const StainVectors& target);

// `image` with each stain's amount multiplied by factor[k] in place: OD' = OD + sum_k (factor_k - 1)
// amount_k colour_k (amounts by least squares on `stains`' colours). The colours and whatever
// neither stain explains are kept; factors of 1 give the image back unchanged.
Image scale_stain_amounts(const Image& image, const StainVectors& stains, const double factor[2]);

// The stains of the images the shipped models learned from: the median of the per-image estimates
// over the MoNuSeg and CoNSeP training sets, each set weighing the same (bench/stain_reference.cpp).
const StainVectors& reference_stains();

// The range of StainVectors::max_amount, per stain, that a model has seen.
struct StainAmountRange {
  double low[2] = {0, 0}, high[2] = {0, 0};
};
// The shipped models': training_amount_range of the per-image estimates over their training sets,
// each set weighing the same (bench/stain_reference.cpp).
const StainAmountRange& reference_amount_range();

// The range training images span: per stain, the 5th to 95th percentile of their max_amount
// (weighted quantiles: the smallest amount whose images' weights reach that share of the total;
// equal weights when `weights` is empty), widened by `widen` (low / widen, high * widen; 1.1 is the
// +-10% of the training's stain augmentation). DataError for no images.
StainAmountRange training_amount_range(const std::vector<StainVectors>& images, const std::vector<double>& weights = {},
                                       double widen = 1.1);

// The weighted q-quantile (0-1) of `values` as above.
double weighted_quantile(std::vector<std::pair<double, double>> value_weight, double q);

// How `segment --stain-normalize` treats an image or a slide.
struct StainNormalization {
  enum class Mode {
    off,
    // Each stain's amount brought into `range` when it is outside (scale_stain_amounts; colours
    // kept): images like the training ones are left exactly as they are.
    range,
    // Macenko's normalisation: every image drawn in `target`'s colours and amounts.
    match,
  };
  Mode mode = Mode::off;
  StainVectors target = reference_stains();
  StainAmountRange range = reference_amount_range();
};

// "off", "range", "match": the names the CLI takes and the slide summary writes.
const char* mode_name(StainNormalization::Mode mode);

// What the normalisation does to an image (or a slide) whose stains are `estimate`: a linear map of
// OD, or nothing (identity: mode off, or range mode with the amounts in range, or no estimate).
struct StainMap {
  bool identity = true;
  double a[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  std::string note;  // for logs: "H amount 6.06 -> 3.31", "in range", or why nothing was done
};
StainMap plan_stain_map(const StainNormalization& normalization, const StainEstimate& estimate);
// The image through the map (a copy when it is the identity).
Image apply_stain_map(const StainMap& map, const Image& image);

// Text for logs and summaries: "H (r, g, b) x max, E (r, g, b) x max".
std::string describe(const StainVectors& stains);

}  // namespace nucleisam
