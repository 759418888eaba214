// Small drawing helpers shared by the metrics tests: instance maps made of rectangles, so every
// area and intersection in a test can be counted by hand.
#pragma once

#include <stdexcept>

#include "nucleisam/raster.h"

namespace nucleisam::metrics::testing_shapes {

// Sets rows [y, y + h) and columns [x, x + w) of `m` to `label`.
inline void fill_rect(LabelMap& m, int32_t label, int y, int x, int h, int w) {
  if (y < 0 || x < 0 || y + h > m.height || x + w > m.width)
    throw std::out_of_range("rectangle outside the map");
  for (int r = y; r < y + h; ++r)
    for (int c = x; c < x + w; ++c) m.at(r, c) = label;
}

}  // namespace nucleisam::metrics::testing_shapes
