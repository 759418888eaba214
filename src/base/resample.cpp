// Area / bilinear image resampling and nearest-centre label resampling (see resample.h).
#include "nucleisam/resample.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "nucleisam/errors.h"

namespace nucleisam {
namespace {

// The source pixels (and weights, summing to 1) that make target pixel o of an axis of n_out
// pixels resampled from n_in.
struct Taps {
  std::vector<int> first;            // per target pixel: index into index / weight
  std::vector<int> index;
  std::vector<float> weight;
};

Taps axis_taps(int n_in, int n_out) {
  Taps t;
  t.first.reserve(static_cast<size_t>(n_out) + 1);
  const double scale = static_cast<double>(n_in) / n_out;  // source pixels per target pixel
  for (int o = 0; o < n_out; ++o) {
    t.first.push_back(static_cast<int>(t.index.size()));
    if (scale > 1) {  // shrinking: the footprint [o * scale, (o + 1) * scale)
      const double a = o * scale, b = std::min<double>(n_in, (o + 1) * scale);
      for (int i = static_cast<int>(std::floor(a)); i < b; ++i) {
        const double overlap = std::min<double>(i + 1, b) - std::max<double>(i, a);
        if (overlap <= 1e-12) continue;
        t.index.push_back(std::min(i, n_in - 1));
        t.weight.push_back(static_cast<float>(overlap / (b - a)));
      }
    } else {  // enlarging (or the same size): bilinear between centres, edges replicated
      const double s = std::clamp((o + 0.5) * scale - 0.5, 0.0, static_cast<double>(n_in - 1));
      const int i0 = static_cast<int>(std::floor(s));
      const int i1 = std::min(i0 + 1, n_in - 1);
      const double f = s - i0;
      t.index.push_back(i0);
      t.weight.push_back(static_cast<float>(1 - f));
      if (f > 0 && i1 != i0) {
        t.index.push_back(i1);
        t.weight.push_back(static_cast<float>(f));
      }
    }
  }
  t.first.push_back(static_cast<int>(t.index.size()));
  return t;
}

}  // namespace

double snap_scale_factor(double factor) {
  if (!(factor > 0)) return 1;
  const double g = factor >= 1 ? factor : 1 / factor;
  const double whole = std::round(g);
  const double snapped = std::abs(g - whole) <= 0.03 * g ? whole : g;
  return factor >= 1 ? snapped : 1 / snapped;
}

Image resample_image(const Image& image, int width, int height) {
  if (width <= 0 || height <= 0 || image.empty())
    throw DataError("resample_image: an empty image or target size");
  if (image.same_size(height, width)) return image;
  const int c = image.channels;
  const Taps tx = axis_taps(image.width, width), ty = axis_taps(image.height, height);
  // Each target row mixes a few source rows resampled along x; they are made once each, when first
  // needed, and dropped once no later target row needs them (target rows use rising source rows),
  // so memory stays a few rows whatever the image size.
  std::map<int, std::vector<float>> rows;
  const auto source_row = [&](int sy) -> const std::vector<float>& {
    auto it = rows.find(sy);
    if (it != rows.end()) return it->second;
    std::vector<float> r(static_cast<size_t>(width) * c, 0.0f);
    const uint8_t* in = image.row(sy);
    for (int x = 0; x < width; ++x)
      for (int k = tx.first[x]; k < tx.first[x + 1]; ++k) {
        const uint8_t* p = in + static_cast<size_t>(tx.index[k]) * c;
        const float w = tx.weight[k];
        for (int ch = 0; ch < c; ++ch) r[static_cast<size_t>(x) * c + ch] += w * p[ch];
      }
    return rows.emplace(sy, std::move(r)).first->second;
  };
  Image out(height, width, c);
  std::vector<float> acc(static_cast<size_t>(width) * c);
  for (int y = 0; y < height; ++y) {
    rows.erase(rows.begin(), rows.lower_bound(ty.index[ty.first[y]]));
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int k = ty.first[y]; k < ty.first[y + 1]; ++k) {
      const std::vector<float>& r = source_row(ty.index[k]);
      const float w = ty.weight[k];
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += w * r[i];
    }
    uint8_t* o = out.row(y);
    for (size_t i = 0; i < acc.size(); ++i) o[i] = static_cast<uint8_t>(std::clamp(std::lround(acc[i]), 0L, 255L));
  }
  return out;
}

LabelMap resample_labels(const LabelMap& labels, int width, int height) {
  if (width <= 0 || height <= 0 || labels.empty())
    throw DataError("resample_labels: an empty label map or target size");
  if (labels.same_size(height, width)) return labels;
  LabelMap out(height, width);
  std::vector<int> src_x(static_cast<size_t>(width));
  for (int x = 0; x < width; ++x)
    src_x[x] = std::min(labels.width - 1, static_cast<int>((x + 0.5) * labels.width / width));
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(labels.height - 1, static_cast<int>((y + 0.5) * labels.height / height));
    const int32_t* in = labels.row(sy);
    int32_t* o = out.row(y);
    for (int x = 0; x < width; ++x) o[x] = in[src_x[x]];
  }
  return out;
}

}  // namespace nucleisam
