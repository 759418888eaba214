#include "nucleisam/stain.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "nucleisam/errors.h"

namespace nucleisam {

namespace {

constexpr double kPi = 3.14159265358979323846;

const std::array<float, 256>& od_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int level = 0; level < 256; ++level) t[level] = static_cast<float>(optical_density(level));
    return t;
  }();
  return table;
}

void require_rgb(const Image& image, const char* what) {
  if (image.channels != 3)
    throw DataError(std::string(what) + ": an RGB image is needed, not one with " + std::to_string(image.channels) +
                    " channels");
}

// Eigen-decomposition of a symmetric 3 x 3 matrix by cyclic Jacobi rotations: values[k] with the
// unit vector vectors[k], sorted by decreasing value.
void symmetric_eigen(const double m[3][3], double values[3], double vectors[3][3]) {
  double a[3][3], v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) a[i][j] = m[i][j];
  for (int sweep = 0; sweep < 50; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    const double diag = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
    if (off <= 1e-30 * diag || off == 0) break;
    for (int p = 0; p < 2; ++p)
      for (int q = p + 1; q < 3; ++q) {
        if (a[p][q] == 0) continue;
        // The rotation in the (p, q) plane that zeroes a[p][q].
        const double theta = 0.5 * std::atan2(2 * a[p][q], a[q][q] - a[p][p]);
        const double c = std::cos(theta), s = std::sin(theta);
        for (int k = 0; k < 3; ++k) {  // A <- A J
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {  // A <- J^T A
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; ++k) {  // V <- V J
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  int order[3] = {0, 1, 2};
  std::sort(order, order + 3, [&](int x, int y) { return a[x][x] > a[y][y]; });
  for (int k = 0; k < 3; ++k) {
    values[k] = a[order[k]][order[k]];
    for (int c = 0; c < 3; ++c) vectors[k][c] = v[c][order[k]];
  }
}

// The p-th percentile (0-100) with linear interpolation between order statistics (as numpy's
// default). Reorders `v`.
double percentile(std::vector<float>& v, double p) {
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double below = v[lo];
  if (lo + 1 >= v.size()) return below;
  const double above = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return below + (pos - static_cast<double>(lo)) * (above - below);
}

// Least squares of OD on the two stain colours: amount = P od with P = (S S^T)^-1 S (2 x 3), S the
// colours as rows.
void amount_projection(const StainVectors& s, double p[2][3]) {
  double g[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      g[i][j] = s.colour[i][0] * s.colour[j][0] + s.colour[i][1] * s.colour[j][1] + s.colour[i][2] * s.colour[j][2];
  const double det = g[0][0] * g[1][1] - g[0][1] * g[1][0];
  const double inv[2][2] = {{g[1][1] / det, -g[0][1] / det}, {-g[1][0] / det, g[0][0] / det}};
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 3; ++c) p[i][c] = inv[i][0] * s.colour[0][c] + inv[i][1] * s.colour[1][c];
}

// The OD map that takes each pixel's amounts on `source`'s colours (least squares), multiplies them
// by scale[k] and draws them in `target`'s colours: A = P^T diag(scale) T; with keep_residual the
// part of OD the two colours do not explain is added back (A += I - P^T S).
void redraw_matrix(const StainVectors& source, const double scale[2], const double target[2][3], bool keep_residual,
                   double a[3][3]) {
  double p[2][3];
  amount_projection(source, p);
  for (int j = 0; j < 3; ++j)
    for (int c = 0; c < 3; ++c) {
      a[j][c] = p[0][j] * scale[0] * target[0][c] + p[1][j] * scale[1] * target[1][c];
      if (keep_residual)
        a[j][c] += (j == c ? 1.0 : 0.0) - p[0][j] * source.colour[0][c] - p[1][j] * source.colour[1][c];
    }
}

}  // namespace

double optical_density(int level) { return -std::log((level + 1) / 256.0); }

Image map_optical_density(const Image& image, const double a[3][3], const double shift[3]) {
  require_rgb(image, "stain mapping");
  // table[(j * 3 + c) * 256 + level] = OD_j(level) A_jc: the output OD is three look-ups and a sum,
  // then one exponential per value.
  const auto& od = od_table();
  std::vector<float> table(3 * 3 * 256);
  for (int j = 0; j < 3; ++j)
    for (int c = 0; c < 3; ++c)
      for (int level = 0; level < 256; ++level)
        table[(j * 3 + c) * 256 + level] = static_cast<float>(od[level] * a[j][c]);
  float offset[3];
  for (int c = 0; c < 3; ++c) offset[c] = static_cast<float>(shift[c]);
  Image out(image.height, image.width, 3);
  const size_t n = image.pixels();
  const uint8_t* in = image.data.data();
  uint8_t* o = out.data.data();
  for (size_t i = 0; i < n; ++i, in += 3, o += 3)
    for (int c = 0; c < 3; ++c) {
      const float density = table[(0 * 3 + c) * 256 + in[0]] + table[(1 * 3 + c) * 256 + in[1]] +
                            table[(2 * 3 + c) * 256 + in[2]] + offset[c];
      // 256 exp(-OD) - 1, rounded; OD below -0.01 is already past 255 (and keeps exp finite).
      const float v = 256.0f * std::exp(-std::max(density, -0.01f)) - 0.5f;
      o[c] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
  return out;
}

namespace {

// OD that no mix of haematoxylin and eosin gives (StainEstimateOptions::skip_dyes).
bool is_dye(float r, float g, float b) {
  const float mean = (r + g + b) / 3;
  const bool dark_grey = mean > 1.0f && std::max({r, g, b}) - std::min({r, g, b}) < 0.15f * mean;
  const bool green = g < 0.6f * r;
  return dark_grey || green;
}

}  // namespace

StainEstimate estimate_stains(const std::vector<const Image*>& images, const StainEstimateOptions& options) {
  StainEstimate result;
  int64_t total = 0;
  for (const Image* image : images) {
    require_rgb(*image, "stain estimate");
    total += static_cast<int64_t>(image->pixels());
  }
  const int64_t stride = std::max<int64_t>(1, (total + options.max_pixels - 1) / std::max<int64_t>(1, options.max_pixels));

  // The tissue pixels' OD (every stride-th pixel, counted across the images in turn).
  const auto& od = od_table();
  std::vector<float> tissue;  // x, y, z per pixel
  int64_t index = 0;
  for (const Image* image : images) {
    const uint8_t* px = image->data.data();
    const int64_t n = static_cast<int64_t>(image->pixels());
    for (int64_t i = (stride - index % stride) % stride; i < n; i += stride) {
      const float r = od[px[3 * i]], g = od[px[3 * i + 1]], b = od[px[3 * i + 2]];
      if (std::min({r, g, b}) < options.tissue_od) continue;
      if (options.skip_dyes && is_dye(r, g, b)) {
        ++result.dye_pixels;
        continue;
      }
      tissue.insert(tissue.end(), {r, g, b});
    }
    index += n;
  }
  const int64_t count = static_cast<int64_t>(tissue.size() / 3);
  result.tissue_pixels = count;
  if (count < std::max<int64_t>(options.min_tissue_pixels, 2)) {
    result.why = "too little tissue to estimate its stains (" + std::to_string(count) + " pixels, " +
                 std::to_string(options.min_tissue_pixels) + " needed)";
    return result;
  }

  // The plane of largest variance.
  double mean[3] = {0, 0, 0}, cov[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  for (int64_t i = 0; i < count; ++i)
    for (int c = 0; c < 3; ++c) mean[c] += tissue[3 * i + c];
  for (double& m : mean) m /= static_cast<double>(count);
  for (int64_t i = 0; i < count; ++i) {
    const double d[3] = {tissue[3 * i] - mean[0], tissue[3 * i + 1] - mean[1], tissue[3 * i + 2] - mean[2]};
    for (int r = 0; r < 3; ++r)
      for (int c = r; c < 3; ++c) cov[r][c] += d[r] * d[c];
  }
  for (int r = 0; r < 3; ++r)
    for (int c = r; c < 3; ++c) cov[c][r] = cov[r][c] /= static_cast<double>(count - 1);
  double values[3], axes[3][3];
  symmetric_eigen(cov, values, axes);
  if (axes[0][0] + axes[0][1] + axes[0][2] < 0)  // the first axis points into positive OD
    for (double& x : axes[0]) x = -x;

  // The pixels' angles in that plane and the colours at the extreme percentiles.
  std::vector<float> angle(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const float* t = &tissue[3 * i];
    const double u = t[0] * axes[0][0] + t[1] * axes[0][1] + t[2] * axes[0][2];
    const double v = t[0] * axes[1][0] + t[1] * axes[1][1] + t[2] * axes[1][2];
    angle[static_cast<size_t>(i)] = static_cast<float>(std::atan2(v, u));
  }
  const double low = percentile(angle, options.angle_percentile);
  const double high = percentile(angle, 100 - options.angle_percentile);
  double colour[2][3];
  for (int c = 0; c < 3; ++c) {
    colour[0][c] = std::cos(low) * axes[0][c] + std::sin(low) * axes[1][c];
    colour[1][c] = std::cos(high) * axes[0][c] + std::sin(high) * axes[1][c];
  }
  const int h = colour[0][0] >= colour[1][0] ? 0 : 1;  // haematoxylin absorbs more red
  StainVectors& s = result.stains;
  for (int c = 0; c < 3; ++c) {
    s.colour[0][c] = colour[h][c];
    s.colour[1][c] = colour[1 - h][c];
  }
  for (auto& row : s.colour) {  // unit length (they are, up to rounding)
    const double norm = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
    for (double& x : row) x /= norm;
  }
  const double cosine = std::clamp(
      s.colour[0][0] * s.colour[1][0] + s.colour[0][1] * s.colour[1][1] + s.colour[0][2] * s.colour[1][2], -1.0, 1.0);
  const double apart = std::acos(cosine) * 180 / kPi;
  if (!(apart >= options.min_angle_degrees)) {
    char buffer[160];
    std::snprintf(buffer, sizeof buffer, "the two stains cannot be told apart (their colours are %.1f degrees apart)",
                  apart);
    result.why = buffer;
    return result;
  }

  // Each stain's amount per tissue pixel and its high percentile.
  double p[2][3];
  amount_projection(s, p);
  std::vector<float> amount(static_cast<size_t>(count));
  for (int k = 0; k < 2; ++k) {
    for (int64_t i = 0; i < count; ++i) {
      const float* t = &tissue[3 * i];
      amount[static_cast<size_t>(i)] = static_cast<float>(p[k][0] * t[0] + p[k][1] * t[1] + p[k][2] * t[2]);
    }
    s.max_amount[k] = percentile(amount, options.amount_percentile);
    if (!(s.max_amount[k] > 1e-3)) {
      result.why = std::string("no ") + (k == 0 ? "haematoxylin" : "eosin") + " found in the tissue";
      return result;
    }
  }
  result.ok = true;
  return result;
}

Image normalize_stains(const Image& image, const StainVectors& source, const StainVectors& target) {
  const double scale[2] = {target.max_amount[0] / source.max_amount[0], target.max_amount[1] / source.max_amount[1]};
  double a[3][3];
  redraw_matrix(source, scale, target.colour, false, a);
  const double none[3] = {0, 0, 0};
  return map_optical_density(image, a, none);
}

Image scale_stain_amounts(const Image& image, const StainVectors& stains, const double factor[2]) {
  double a[3][3];
  redraw_matrix(stains, factor, stains.colour, true, a);
  const double none[3] = {0, 0, 0};
  return map_optical_density(image, a, none);
}

// bench_stain_reference ../shared/data/monuseg/train ../shared/data/consep256/train ("all").
const StainVectors& reference_stains() {
  static const StainVectors reference = [] {
    StainVectors s;
    const double h[3] = {0.5706, 0.7292, 0.3776}, e[3] = {0.2982, 0.8133, 0.4997};
    for (int c = 0; c < 3; ++c) {
      s.colour[0][c] = h[c];
      s.colour[1][c] = e[c];
    }
    for (auto& row : s.colour) {  // unit length beyond the printed digits
      const double norm = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
      for (double& x : row) x /= norm;
    }
    s.max_amount[0] = 1.8969;
    s.max_amount[1] = 1.1397;
    return s;
  }();
  return reference;
}

// The same run's 5-95% ranges: H 0.81-2.99, E 0.69-1.97 (with the dyes of a few CoNSeP patches
// left out, StainEstimateOptions::skip_dyes; before: H 0.81-3.01, E 0.69-1.92); divided and
// multiplied by 1.1.
const StainAmountRange& reference_amount_range() {
  static const StainAmountRange range{{0.81 / 1.1, 0.69 / 1.1}, {2.99 * 1.1, 1.97 * 1.1}};
  return range;
}

double weighted_quantile(std::vector<std::pair<double, double>> v, double q) {
  if (v.empty()) throw DataError("a quantile of no values");
  std::sort(v.begin(), v.end());
  double total = 0;
  for (const auto& x : v) total += x.second;
  double sum = 0;
  for (const auto& x : v) {
    sum += x.second;
    if (sum >= q * total) return x.first;
  }
  return v.back().first;
}

StainAmountRange training_amount_range(const std::vector<StainVectors>& images, const std::vector<double>& weights,
                                       double widen) {
  if (images.empty()) throw DataError("no training images to measure the stain range of");
  if (!weights.empty() && weights.size() != images.size())
    throw DataError("training_amount_range: one weight per image is needed");
  StainAmountRange r;
  for (int k = 0; k < 2; ++k) {
    std::vector<std::pair<double, double>> v;
    for (size_t i = 0; i < images.size(); ++i) v.emplace_back(images[i].max_amount[k], weights.empty() ? 1.0 : weights[i]);
    r.low[k] = weighted_quantile(v, 0.05) / widen;
    r.high[k] = weighted_quantile(v, 0.95) * widen;
  }
  return r;
}

const char* mode_name(StainNormalization::Mode mode) {
  switch (mode) {
    case StainNormalization::Mode::range: return "range";
    case StainNormalization::Mode::match: return "match";
    default: return "off";
  }
}

StainMap plan_stain_map(const StainNormalization& normalization, const StainEstimate& estimate) {
  StainMap map;
  if (normalization.mode == StainNormalization::Mode::off) return map;
  if (!estimate.ok) {
    map.note = "stains not normalised: " + estimate.why;
    return map;
  }
  const StainVectors& s = estimate.stains;
  char buffer[200];
  if (normalization.mode == StainNormalization::Mode::match) {
    const StainVectors& t = normalization.target;
    const double scale[2] = {t.max_amount[0] / s.max_amount[0], t.max_amount[1] / s.max_amount[1]};
    redraw_matrix(s, scale, t.colour, false, map.a);
    map.identity = false;
    map.note = "stains " + describe(s) + " drawn as " + describe(t);
    return map;
  }
  // Range: each amount clamped into the range.
  const StainAmountRange& r = normalization.range;
  double factor[2];
  std::string note;
  for (int k = 0; k < 2; ++k) {
    const double clamped = std::clamp(s.max_amount[k], r.low[k], r.high[k]);
    factor[k] = clamped / s.max_amount[k];
    if (factor[k] != 1) {
      std::snprintf(buffer, sizeof buffer, "%s%s amount %.2f -> %.2f", note.empty() ? "" : ", ",
                    k == 0 ? "haematoxylin" : "eosin", s.max_amount[k], clamped);
      note += buffer;
    }
  }
  if (note.empty()) {
    std::snprintf(buffer, sizeof buffer, "stain amounts in range (haematoxylin %.2f, eosin %.2f)", s.max_amount[0],
                  s.max_amount[1]);
    map.note = buffer;
    return map;
  }
  redraw_matrix(s, factor, s.colour, true, map.a);
  map.identity = false;
  map.note = note;
  return map;
}

Image apply_stain_map(const StainMap& map, const Image& image) {
  if (map.identity) return image;
  const double none[3] = {0, 0, 0};
  return map_optical_density(image, map.a, none);
}

std::string describe(const StainVectors& s) {
  char buffer[200];
  std::snprintf(buffer, sizeof buffer, "H (%.3f, %.3f, %.3f) x %.2f, E (%.3f, %.3f, %.3f) x %.2f", s.colour[0][0],
                s.colour[0][1], s.colour[0][2], s.max_amount[0], s.colour[1][0], s.colour[1][1], s.colour[1][2],
                s.max_amount[1]);
  return buffer;
}

}  // namespace nucleisam
