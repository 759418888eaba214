// Classical nucleus segmentation: colour deconvolution -> hematoxylin density -> smoothing ->
// Otsu threshold over tissue -> opening -> hole filling + distance watershed -> small-object removal.
#include "nucleisam/infer/classical_segmenter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "nucleisam/errors.h"
#include "nucleisam/log.h"

namespace nucleisam::infer {
namespace {

// Per 8-bit intensity: optical density -log10((I + 1) / 256); +1 keeps black pixels finite.
const std::array<float, 256>& density_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = static_cast<float>(-std::log10((i + 1) / 256.0));
    return t;
  }();
  return table;
}

// Column of the inverse stain matrix that extracts hematoxylin from an OD row vector.
cv::Vec3d hematoxylin_extractor() {
  cv::Vec3d h(0.650, 0.704, 0.286), e(0.072, 0.990, 0.105);
  h = cv::normalize(h);
  e = cv::normalize(e);
  cv::Vec3d r = cv::normalize(h.cross(e));
  cv::Matx33d m(h[0], h[1], h[2], e[0], e[1], e[2], r[0], r[1], r[2]);
  cv::Matx33d inv = m.inv();
  return {inv(0, 0), inv(1, 0), inv(2, 0)};
}

float percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(q * (v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

Raster<float> hematoxylin_density(const Image& image) {
  if (image.channels != 3) throw DataError("hematoxylin_density: expected an RGB image");
  static const cv::Vec3d ex = hematoxylin_extractor();
  const auto& od = density_table();
  Raster<float> out(image.height, image.width);
  for (size_t i = 0; i < image.pixels(); ++i) {
    const uint8_t* p = &image.data[3 * i];
    out.data[i] = static_cast<float>(od[p[0]] * ex[0] + od[p[1]] * ex[1] + od[p[2]] * ex[2]);
  }
  return out;
}

float otsu_threshold(const Raster<float>& values, const Mask& include) {
  const bool all = include.empty();
  float lo = 0, hi = 0;
  bool any = false;
  for (size_t i = 0; i < values.data.size(); ++i) {
    if (!all && !include.data[i]) continue;
    float v = values.data[i];
    if (!any) lo = hi = v, any = true;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!any || hi <= lo) return lo;
  constexpr int kBins = 256;
  std::array<double, kBins> hist{};
  const double scale = (kBins - 1) / static_cast<double>(hi - lo);
  double total = 0;
  for (size_t i = 0; i < values.data.size(); ++i) {
    if (!all && !include.data[i]) continue;
    hist[static_cast<size_t>((values.data[i] - lo) * scale + 0.5)] += 1;
    total += 1;
  }
  double sum_all = 0;
  for (int b = 0; b < kBins; ++b) sum_all += b * hist[b];
  // Maximise the between-class variance w0 w1 (m0 - m1)^2 over the split after bin b.
  double w0 = 0, sum0 = 0, best = -1;
  int best_bin = 0;
  for (int b = 0; b < kBins - 1; ++b) {
    w0 += hist[b];
    sum0 += b * hist[b];
    double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) {
      best = between;
      best_bin = b;
    }
  }
  // The threshold sits halfway between bin b and b+1: values above it are the upper class.
  return lo + static_cast<float>((best_bin + 0.5) / scale);
}

Segmentation ClassicalSegmenter::segment(const Image& image, const std::string& source) {
  Segmentation result;
  result.instances = LabelMap(image.height, image.width);
  if (image.empty()) return result;
  const auto& od = density_table();

  Mask tissue(image.height, image.width);
  size_t tissue_pixels = 0;
  for (size_t i = 0; i < image.pixels(); ++i) {
    const uint8_t* p = &image.data[3 * i];
    if (od[p[0]] + od[p[1]] + od[p[2]] > options_.tissue_density) {
      tissue.data[i] = 1;
      ++tissue_pixels;
    }
  }
  if (tissue_pixels < options_.min_tissue_fraction * image.pixels()) {
    log::warn(source, ": no tissue found (", tissue_pixels, " of ", image.pixels(),
              " pixels above the tissue density); 0 nuclei");
    return result;
  }

  Raster<float> hema = hematoxylin_density(image);
  std::vector<float> tissue_values;
  tissue_values.reserve(tissue_pixels);
  for (size_t i = 0; i < hema.data.size(); ++i)
    if (tissue.data[i]) tissue_values.push_back(hema.data[i]);
  float spread = percentile(tissue_values, 0.99) - percentile(tissue_values, 0.01);
  if (spread < options_.min_contrast) {
    log::warn(source, ": tissue has no hematoxylin contrast (spread ", spread, " OD); 0 nuclei");
    return result;
  }

  cv::Mat1f hema_mat(hema.height, hema.width, hema.data.data());
  if (options_.smoothing_sigma > 0)
    cv::GaussianBlur(hema_mat, hema_mat, cv::Size(0, 0), options_.smoothing_sigma, options_.smoothing_sigma,
                     cv::BORDER_REFLECT);
  float threshold = otsu_threshold(hema, tissue) * options_.threshold_scale;
  log::debug(source, ": hematoxylin Otsu threshold ", threshold, " OD");

  cv::Mat1b nuclei = hema_mat > threshold;
  if (options_.opening_radius > 0) {
    int k = 2 * options_.opening_radius + 1;
    cv::morphologyEx(nuclei, nuclei, cv::MORPH_OPEN, cv::getStructuringElement(cv::MORPH_ELLIPSE, {k, k}));
  }
  ProbabilityMap foreground(image.height, image.width);
  for (size_t i = 0; i < foreground.data.size(); ++i) foreground.data[i] = nuclei.data[i] ? 1.0f : 0.0f;
  ForegroundSplitOptions split = options_.split;
  split.threshold = 0.5f;
  result.instances = instances_from_foreground(foreground, split);
  return result;
}

}  // namespace nucleisam::infer
