// A synthetic H&E tile for the CLI tests: pink tissue with `n` purple discs of radius 9 spaced along
// a row (roughly 0.9 OD hematoxylin vs 0.35 OD eosin, Ruifrok-Johnston vectors, as 8-bit RGB), plus
// an optional texture (x * y) % texture added to every channel.
#pragma once

#include <cstdint>

#include "nucleisam/raster.h"

namespace nucleisam::test {

inline Image synthetic_tile(int n, int rows = 60, int texture = 0) {
  Image img(rows, 40 + 30 * n, 3);
  const uint8_t purple[3] = {64, 54, 135}, pink[3] = {219, 114, 200};
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      bool nucleus = false;
      for (int k = 0; k < n; ++k) nucleus |= (x - 30 - 30 * k) * (x - 30 - 30 * k) + (y - 30) * (y - 30) <= 81;
      const int noise = texture > 0 ? (x * y) % texture : 0;
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = static_cast<uint8_t>((nucleus ? purple[c] : pink[c]) + noise);
    }
  return img;
}

}  // namespace nucleisam::test
