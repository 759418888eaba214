// Reflect padding of an image to a minimum size (bottom and right), shared by the model
// segmenters: an image smaller than one window is mirrored out to the window, never zero-filled.
#pragma once

#include <algorithm>

#include "nucleisam/raster.h"

namespace nucleisam::predict {

// Returns `image` itself when it is already at least min_h x min_w, else the padded copy.
inline Image reflect_pad(const Image& image, int min_h, int min_w) {
  const int h = std::max(image.height, min_h), w = std::max(image.width, min_w);
  if (h == image.height && w == image.width) return image;
  Image out(h, w, 3);
  auto reflect = [](int i, int n) {
    if (n == 1) return 0;
    const int period = 2 * (n - 1);
    i %= period;
    return i < n ? i : period - i;
  };
  for (int y = 0; y < h; ++y) {
    const int sy = reflect(y, image.height);
    for (int x = 0; x < w; ++x) {
      const int sx = reflect(x, image.width);
      for (int c = 0; c < 3; ++c) out.at(y, x, c) = image.at(sy, sx, c);
    }
  }
  return out;
}

}  // namespace nucleisam::predict
