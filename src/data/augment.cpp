// Geometric and colour augmentation of samples. Random numbers come from our own draws on
// std::mt19937_64 (not std::uniform_*_distribution, whose output differs between standard
// libraries), so a seed gives the same augmentation on every platform.
#include "nucleisam/data/augment.h"

#include <algorithm>
#include <cmath>

#include "nucleisam/data/sampler.h"
#include "nucleisam/errors.h"
#include "nucleisam/stain.h"

namespace nucleisam::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

double uniform(std::mt19937_64& rng, double lo, double hi) { return lo + (hi - lo) * uniform01(rng); }
bool chance(std::mt19937_64& rng, double p) { return uniform01(rng) < p; }


// Drops ids that no longer occur, renumbers the rest in order and keeps classes aligned.
void renumber(Sample& s) {
  std::vector<int32_t> old = relabel_consecutive(s.instances, s.name);
  if (!s.classed) return;
  std::vector<int> classes;
  classes.reserve(old.size());
  for (int32_t id : old) {
    if (static_cast<size_t>(id) > s.classes.size())
      throw DataError(s.name + ": instance " + std::to_string(id) + " has no class");
    classes.push_back(s.classes[id - 1]);
  }
  s.classes = std::move(classes);
}

// Copies every field except the pixel data, which the caller fills at the new size.
Sample like(const Sample& s, int h, int w) {
  Sample o;
  o.name = s.name;
  o.classes = s.classes;
  o.classed = s.classed;
  o.extras = s.extras;
  o.image = Image(h, w, 3);
  o.instances = LabelMap(h, w);
  return o;
}

// Output pixel (y, x) takes input pixel src(y, x) for both rasters.
template <typename F>
Sample remap_pixels(const Sample& s, int h, int w, F src) {
  Sample o = like(s, h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      auto [sy, sx] = src(y, x);
      for (int c = 0; c < 3; ++c) o.image.at(y, x, c) = s.image.at(sy, sx, c);
      o.instances.at(y, x) = s.instances.at(sy, sx);
    }
  return o;
}

void check_sample(const Sample& s) {
  if (s.image.channels != 3 || !s.instances.same_size(s.image))
    throw DataError(s.name + ": image and instance map differ in size or the image is not RGB");
}

}  // namespace

Sample flip_horizontal(const Sample& s) {
  check_sample(s);
  const int w = s.image.width;
  return remap_pixels(s, s.image.height, w, [w](int y, int x) { return std::pair<int, int>(y, w - 1 - x); });
}

Sample flip_vertical(const Sample& s) {
  check_sample(s);
  const int h = s.image.height;
  return remap_pixels(s, h, s.image.width, [h](int y, int x) { return std::pair<int, int>(h - 1 - y, x); });
}

Sample rotate90(const Sample& s, int k) {
  check_sample(s);
  k = ((k % 4) + 4) % 4;
  const int h = s.image.height, w = s.image.width;
  switch (k) {
    case 0: return s;
    // Counter-clockwise: the right column becomes the top row.
    case 1: return remap_pixels(s, w, h, [w](int y, int x) { return std::pair<int, int>(x, w - 1 - y); });
    case 2: return remap_pixels(s, h, w, [h, w](int y, int x) { return std::pair<int, int>(h - 1 - y, w - 1 - x); });
    default: return remap_pixels(s, w, h, [h](int y, int x) { return std::pair<int, int>(h - 1 - x, y); });
  }
}

Sample warp(const Sample& s, const Warp& wp, uint8_t fill) {
  check_sample(s);
  if (wp.out_height <= 0 || wp.out_width <= 0 || !(wp.scale > 0))
    throw DataError(s.name + ": warp needs a positive output size and scale");
  const int h = s.image.height, w = s.image.width;
  Sample o = like(s, wp.out_height, wp.out_width);
  const double rad = wp.angle_degrees * kPi / 180.0;
  // Inverse map: src = centre_in + [[cos, -sin], [sin, cos]] (dst - centre_out) / scale.
  const double cs = std::cos(rad) / wp.scale, sn = std::sin(rad) / wp.scale;
  const double ox = (wp.out_width - 1) / 2.0, oy = (wp.out_height - 1) / 2.0;
  for (int y = 0; y < wp.out_height; ++y) {
    for (int x = 0; x < wp.out_width; ++x) {
      const double dx = x - ox, dy = y - oy;
      const double sx = wp.centre_x + cs * dx - sn * dy;
      const double sy = wp.centre_y + sn * dx + cs * dy;
      uint8_t* px = &o.image.at(y, x);
      if (sx < -0.5 || sy < -0.5 || sx > w - 0.5 || sy > h - 0.5) {
        px[0] = px[1] = px[2] = fill;
        continue;  // label stays 0
      }
      // sx, sy >= -0.5 here, so truncation is floor.
      const int nx = std::min(w - 1, static_cast<int>(sx + 0.5));
      const int ny = std::min(h - 1, static_cast<int>(sy + 0.5));
      o.instances.at(y, x) = s.instances.at(ny, nx);
      const double cx = std::clamp(sx, 0.0, w - 1.0), cy = std::clamp(sy, 0.0, h - 1.0);
      const int x0 = static_cast<int>(cx), y0 = static_cast<int>(cy);
      const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
      const double fx = cx - x0, fy = cy - y0;
      const uint8_t* p00 = &s.image.at(y0, x0);
      const uint8_t* p01 = &s.image.at(y0, x1);
      const uint8_t* p10 = &s.image.at(y1, x0);
      const uint8_t* p11 = &s.image.at(y1, x1);
      for (int c = 0; c < 3; ++c) {
        const double top = p00[c] + (p01[c] - p00[c]) * fx;
        const double bottom = p10[c] + (p11[c] - p10[c]) * fx;
        px[c] = static_cast<uint8_t>(top + (bottom - top) * fy + 0.5);  // in 0..255: no clamp needed
      }
    }
  }
  renumber(o);
  return o;
}

Sample rotate(const Sample& s, double angle_degrees, uint8_t fill) {
  Warp w;
  w.angle_degrees = angle_degrees;
  w.centre_x = (s.image.width - 1) / 2.0;
  w.centre_y = (s.image.height - 1) / 2.0;
  w.out_height = s.image.height;
  w.out_width = s.image.width;
  return warp(s, w, fill);
}

Sample scale(const Sample& s, double factor) {
  Warp w;
  w.scale = factor;
  w.out_height = std::max(1, static_cast<int>(std::lround(s.image.height * factor)));
  w.out_width = std::max(1, static_cast<int>(std::lround(s.image.width * factor)));
  // Centre to centre: with an exact output size this is the usual src = (dst + 0.5) / f - 0.5,
  // so the image edges line up; a rounded size shifts the grid by under half a pixel.
  w.centre_x = (s.image.width - 1) / 2.0;
  w.centre_y = (s.image.height - 1) / 2.0;
  return warp(s, w, 255);
}

Sample crop(const Sample& s, int y0, int x0, int height, int width, uint8_t fill) {
  check_sample(s);
  if (height <= 0 || width <= 0) throw DataError(s.name + ": crop size must be positive");
  Sample o = like(s, height, width);
  std::fill(o.image.data.begin(), o.image.data.end(), fill);
  const int ys = std::max(0, y0), ye = std::min(s.image.height, y0 + height);
  const int xs = std::max(0, x0), xe = std::min(s.image.width, x0 + width);
  for (int y = ys; y < ye; ++y) {
    if (xe <= xs) break;
    std::copy(s.image.row(y) + xs * 3, s.image.row(y) + xe * 3, o.image.row(y - y0) + (xs - x0) * 3);
    std::copy(s.instances.row(y) + xs, s.instances.row(y) + xe, o.instances.row(y - y0) + (xs - x0));
  }
  renumber(o);
  return o;
}

Sample random_crop(const Sample& s, int size, std::mt19937_64& rng, uint8_t fill) {
  const int h = s.image.height, w = s.image.width;
  // Smaller images are centred in the padded window.
  const int y = h > size ? static_cast<int>(rng() % static_cast<uint64_t>(h - size + 1)) : -(size - h) / 2;
  const int x = w > size ? static_cast<int>(rng() % static_cast<uint64_t>(w - size + 1)) : -(size - w) / 2;
  return crop(s, y, x, size, size, fill);
}

// ---- colour -------------------------------------------------------------------------------

namespace {

void rgb_to_hsv(double r, double g, double b, double& h, double& s, double& v) {
  double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
  v = mx;
  s = mx > 0 ? d / mx : 0;
  if (d <= 0) {
    h = 0;
  } else if (mx == r) {
    h = (g - b) / d;  // in [-1, 1]
    if (h < 0) h += 6.0;
    h /= 6.0;
  } else if (mx == g) {
    h = ((b - r) / d + 2.0) / 6.0;
  } else {
    h = ((r - g) / d + 4.0) / 6.0;
  }
}

void hsv_to_rgb(double h, double s, double v, double& r, double& g, double& b) {
  h = (h - std::floor(h)) * 6.0;
  const int i = static_cast<int>(h) % 6;
  const double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
}

double grey(double r, double g, double b) { return 0.299 * r + 0.587 * g + 0.114 * b; }

}  // namespace

Image color_jitter(const Image& image, const ColorJitterFactors& f) {
  const size_t n = image.pixels();
  const float bright = static_cast<float>(f.brightness), contrast = static_cast<float>(f.contrast);
  const float sat = static_cast<float>(f.saturation);
  auto brightened = [&](uint8_t v) { return std::min(255.0f, v * bright); };
  // Contrast blends with the mean grey of the brightened image.
  float mean = 0;
  if (f.contrast != 1) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &image.data[3 * i];
      sum += grey(brightened(p[0]), brightened(p[1]), brightened(p[2]));
    }
    mean = n ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
  }
  Image out(image.height, image.width, 3);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &image.data[3 * i];
    float v[3];
    for (int c = 0; c < 3; ++c) {
      v[c] = brightened(p[c]);
      if (f.contrast != 1) v[c] = std::clamp(mean + (v[c] - mean) * contrast, 0.0f, 255.0f);
    }
    if (f.saturation != 1) {
      const float gy = static_cast<float>(grey(v[0], v[1], v[2]));
      for (float& x : v) x = std::clamp(gy + (x - gy) * sat, 0.0f, 255.0f);
    }
    if (f.hue != 0) {
      double h, sv, val, r, g, b;
      rgb_to_hsv(v[0], v[1], v[2], h, sv, val);
      hsv_to_rgb(h + f.hue, sv, val, r, g, b);
      v[0] = static_cast<float>(r), v[1] = static_cast<float>(g), v[2] = static_cast<float>(b);
    }
    for (int c = 0; c < 3; ++c) out.data[3 * i + c] = static_cast<uint8_t>(std::clamp(v[c], 0.0f, 255.0f) + 0.5f);
  }
  return out;
}

ColorJitterFactors draw_color_jitter(const ColorJitterRanges& r, std::mt19937_64& rng) {
  ColorJitterFactors f;
  f.brightness = uniform(rng, 1 - r.brightness, 1 + r.brightness);
  f.contrast = uniform(rng, 1 - r.contrast, 1 + r.contrast);
  f.saturation = uniform(rng, 1 - r.saturation, 1 + r.saturation);
  f.hue = uniform(rng, -r.hue, r.hue);
  return f;
}

namespace {

// Rows: haematoxylin, eosin, DAB optical-density vectors (Ruifrok & Johnston 2001), normalised.
struct StainBasis {
  double m[3][3];
  double inv[3][3];
  StainBasis() {
    const double raw[3][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}};
    for (int k = 0; k < 3; ++k) {
      double norm = std::sqrt(raw[k][0] * raw[k][0] + raw[k][1] * raw[k][1] + raw[k][2] * raw[k][2]);
      for (int c = 0; c < 3; ++c) m[k][c] = raw[k][c] / norm;
    }
    const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                       m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                       m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        // Cofactor of (j, i) for the inverse.
        int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
        inv[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
      }
  }
};

const StainBasis& basis() {
  static const StainBasis b;
  return b;
}

}  // namespace

Image stain_jitter(const Image& image, const StainFactors& f) {
  const auto& b = basis();
  // The jitter is affine in OD space: OD' = OD A + beta M with A = M^-1 diag(alpha) M.
  double a[3][3], shift[3];
  for (int j = 0; j < 3; ++j)
    for (int c = 0; c < 3; ++c) {
      a[j][c] = 0;
      for (int k = 0; k < 3; ++k) a[j][c] += b.inv[j][k] * f.alpha[k] * b.m[k][c];
    }
  for (int c = 0; c < 3; ++c) shift[c] = f.beta[0] * b.m[0][c] + f.beta[1] * b.m[1][c] + f.beta[2] * b.m[2][c];
  return map_optical_density(image, a, shift);
}

StainFactors draw_stain_jitter(const StainRanges& r, std::mt19937_64& rng) {
  StainFactors f;
  for (int k = 0; k < 3; ++k) {
    f.alpha[k] = uniform(rng, 1 - r.alpha, 1 + r.alpha);
    f.beta[k] = uniform(rng, -r.beta, r.beta);
  }
  if (r.amount_scale > 1) {
    const double span = std::log(r.amount_scale);
    for (int k = 0; k < 2; ++k) f.alpha[k] *= std::exp(uniform(rng, -span, span));
  }
  return f;
}

// ---- pipeline -----------------------------------------------------------------------------

Sample augment(const Sample& s, const AugmentConfig& cfg, std::mt19937_64& rng) {
  check_sample(s);
  const bool do_scale = chance(rng, cfg.scale_probability);
  const double factor = do_scale ? uniform(rng, cfg.min_scale, cfg.max_scale) : 1.0;
  const bool do_rotate = chance(rng, cfg.rotate_probability);
  const double angle = do_rotate ? uniform(rng, -cfg.max_rotation_degrees, cfg.max_rotation_degrees) : 0.0;
  Sample o;
  const int h = s.image.height, w = s.image.width;
  if (!do_scale && !do_rotate) {
    o = cfg.crop_size > 0 ? random_crop(s, cfg.crop_size, rng, cfg.fill) : s;
  } else {
    Warp wp;
    wp.angle_degrees = angle;
    wp.scale = factor;
    wp.out_height = cfg.crop_size > 0 ? cfg.crop_size : h;
    wp.out_width = cfg.crop_size > 0 ? cfg.crop_size : w;
    // Centre drawn so the unrotated footprint stays inside the image where it fits.
    auto centre = [&](int length, int out) {
      const double half = out / (2.0 * factor);
      if (cfg.crop_size <= 0 || length <= 2 * half) return (length - 1) / 2.0;
      return uniform(rng, half - 0.5, length - half - 0.5);
    };
    wp.centre_y = centre(h, wp.out_height);
    wp.centre_x = centre(w, wp.out_width);
    o = warp(s, wp, cfg.fill);
  }
  if (cfg.flips) {
    if (chance(rng, 0.5)) o = flip_horizontal(o);
    if (chance(rng, 0.5)) o = flip_vertical(o);
  }
  if (cfg.rotate90) o = rotate90(o, static_cast<int>(rng() % 4));
  if (chance(rng, cfg.stain_probability)) o.image = stain_jitter(o.image, draw_stain_jitter(cfg.stain, rng));
  if (chance(rng, cfg.color_probability)) o.image = color_jitter(o.image, draw_color_jitter(cfg.color, rng));
  return o;
}

}  // namespace nucleisam::data
