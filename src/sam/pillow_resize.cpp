// Pillow-exact bilinear resampling (see the header for why it exists). Written from the
// description of Pillow's algorithm: for every output index a window of input taps around the
// back-projected centre, triangle weights normalised to sum 1, then rounded to fixed point.
#include "nucleisam/sam/pillow_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace nucleisam::sam {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Taps {
  int ksize = 0;
  std::vector<int> first;       // first input index per output index
  std::vector<int> count;       // number of taps per output index
  std::vector<int32_t> weight;  // ksize fixed-point weights per output index
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

Taps bilinear_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weight.assign(static_cast<size_t>(out_size) * t.ksize, 0);
  std::vector<double> k(t.ksize);
  const double inv = 1.0 / filter_scale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double total = 0.0;
    for (int x = 0; x < n; ++x) {
      k[x] = triangle((x + lo - center + 0.5) * inv);
      total += k[x];
    }
    for (int x = 0; x < n; ++x)
      if (total != 0.0) k[x] /= total;
    for (int x = 0; x < n; ++x) {
      const double scaled = k[x] * (1 << kPrecisionBits);
      t.weight[static_cast<size_t>(xx) * t.ksize + x] =
          static_cast<int32_t>(k[x] < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    t.first[xx] = lo;
    t.count[xx] = n;
  }
  return t;
}

uint8_t round_fixed(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

Raster<uint8_t> resize_bilinear_pillow(const Raster<uint8_t>& src, int out_w, int out_h) {
  if (src.empty() || src.width <= 0 || src.height <= 0)
    throw std::invalid_argument("resize of an empty image");
  if (out_w <= 0 || out_h <= 0) throw std::invalid_argument("resize to an empty size");
  const int C = src.channels;
  const int64_t half = int64_t{1} << (kPrecisionBits - 1);

  // Horizontal pass (skipped when the width does not change, as Pillow does).
  Raster<uint8_t> mid;
  if (out_w != src.width) {
    const Taps h = bilinear_taps(src.width, out_w);
    mid = Raster<uint8_t>(src.height, out_w, C);
    for (int y = 0; y < src.height; ++y) {
      const uint8_t* in = src.row(y);
      uint8_t* out = mid.row(y);
      for (int x = 0; x < out_w; ++x) {
        const int32_t* w = &h.weight[static_cast<size_t>(x) * h.ksize];
        for (int c = 0; c < C; ++c) {
          int64_t acc = half;
          for (int i = 0; i < h.count[x]; ++i)
            acc += static_cast<int64_t>(in[(h.first[x] + i) * C + c]) * w[i];
          out[x * C + c] = round_fixed(acc);
        }
      }
    }
  } else {
    mid = src;
  }
  if (out_h == mid.height) return mid;

  const Taps v = bilinear_taps(mid.height, out_h);
  Raster<uint8_t> dst(out_h, out_w, C);
  const size_t row_len = static_cast<size_t>(out_w) * C;
  for (int y = 0; y < out_h; ++y) {
    const int32_t* w = &v.weight[static_cast<size_t>(y) * v.ksize];
    uint8_t* out = dst.row(y);
    for (size_t j = 0; j < row_len; ++j) {
      int64_t acc = half;
      for (int i = 0; i < v.count[y]; ++i) acc += static_cast<int64_t>(mid.row(v.first[y] + i)[j]) * w[i];
      out[j] = round_fixed(acc);
    }
  }
  return dst;
}

}  // namespace nucleisam::sam
