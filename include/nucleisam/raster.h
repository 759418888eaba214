// Plain value types passed between pipeline stages: an RGB image and an integer label map.
// Deliberately free of OpenCV and LibTorch so every stage can use them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nucleisam {

// A dense H x W x C raster stored row-major with interleaved channels (HWC).
template <typename T>
struct Raster {
  int height = 0;
  int width = 0;
  int channels = 1;
  std::vector<T> data;

  Raster() = default;
  Raster(int h, int w, int c = 1, T fill = T{})
      : height(h), width(w), channels(c), data(static_cast<size_t>(h) * w * c, fill) {}

  bool empty() const { return data.empty(); }
  size_t pixels() const { return static_cast<size_t>(height) * width; }
  T& at(int y, int x, int c = 0) { return data[(static_cast<size_t>(y) * width + x) * channels + c]; }
  const T& at(int y, int x, int c = 0) const {
    return data[(static_cast<size_t>(y) * width + x) * channels + c];
  }
  T* row(int y) { return data.data() + static_cast<size_t>(y) * width * channels; }
  const T* row(int y) const { return data.data() + static_cast<size_t>(y) * width * channels; }
  bool same_size(int h, int w) const { return height == h && width == w; }
  template <typename U>
  bool same_size(const Raster<U>& o) const { return height == o.height && width == o.width; }
  bool operator==(const Raster& o) const {
    return height == o.height && width == o.width && channels == o.channels && data == o.data;
  }
  bool operator!=(const Raster& o) const { return !(*this == o); }
};

// The width x height window of `r` whose top-left pixel is (x, y), copied; it must lie inside `r`.
template <typename T>
Raster<T> window(const Raster<T>& r, int x, int y, int width, int height) {
  Raster<T> out(height, width, r.channels);
  const size_t row = static_cast<size_t>(width) * r.channels;
  for (int v = 0; v < height; ++v) {
    const T* from = r.row(y + v) + static_cast<size_t>(x) * r.channels;
    std::copy(from, from + row, out.row(v));
  }
  return out;
}

// RGB, 8 bits per channel, channels == 3.
using Image = Raster<uint8_t>;
// Integer label map, channels == 1. For instance maps 0 is background and 1..N are objects;
// for class maps the value is the class id.
using LabelMap = Raster<int32_t>;
// A binary or single-channel 8-bit mask (tissue masks, foreground masks).
using Mask = Raster<uint8_t>;

}  // namespace nucleisam
