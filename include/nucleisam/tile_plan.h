// Planning square windows over an image: the one tiling planner, used by tiled inference
// (infer/tiling.h: segment_in_tiles, stitching) and by any windowed pass over large images in the
// data core. Standard library only.
#pragma once

#include <vector>

namespace nucleisam {

struct TileWindow {
  int x = 0, y = 0, width = 0, height = 0;  // the window read from the image
  // The half-open part of the image this tile owns. Owned regions of all tiles partition the image
  // (neighbours split their overlap in the middle), which is what makes stitching exact.
  int own_x0 = 0, own_y0 = 0, own_x1 = 0, own_y1 = 0;
};

// Windows of tile_size x tile_size (smaller only when the image is) stepping by tile_size -
// overlap; the last window of a row/column is moved back to end at the image border instead of
// hanging over it. Row-major order. Throws OptionError unless tile_size >= 1 and 0 <= overlap < tile_size.
std::vector<TileWindow> plan_tiles(int image_height, int image_width, int tile_size, int overlap);

}  // namespace nucleisam
