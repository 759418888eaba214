// Tile planning with ownership regions (see include/nucleisam/tile_plan.h).
#include "nucleisam/tile_plan.h"

#include <string>

#include "nucleisam/errors.h"

namespace nucleisam {

namespace {

struct Span {
  int start, length, own0, own1;
};

std::vector<Span> plan_axis(int size, int tile, int overlap) {
  std::vector<Span> spans;
  if (size <= tile) return {{0, size, 0, size}};
  const int stride = tile - overlap;
  for (int s = 0;; s += stride) {
    if (s + tile >= size) {
      spans.push_back({size - tile, tile, 0, 0});
      break;
    }
    spans.push_back({s, tile, 0, 0});
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    spans[i].own0 = i == 0 ? 0 : spans[i - 1].own1;
    // The middle of the overlap with the next window.
    spans[i].own1 = i + 1 == spans.size() ? size : (spans[i + 1].start + spans[i].start + spans[i].length) / 2;
  }
  return spans;
}

}  // namespace

std::vector<TileWindow> plan_tiles(int image_height, int image_width, int tile_size, int overlap) {
  if (tile_size < 1) throw OptionError("tile size must be at least 1 pixel (got " + std::to_string(tile_size) + ")");
  if (overlap < 0 || overlap >= tile_size)
    throw OptionError("tile overlap must be at least 0 and smaller than the tile size (got " + std::to_string(overlap) +
                     " for tiles of " + std::to_string(tile_size) + ")");
  std::vector<TileWindow> tiles;
  if (image_height <= 0 || image_width <= 0) return tiles;
  auto rows = plan_axis(image_height, tile_size, overlap);
  auto cols = plan_axis(image_width, tile_size, overlap);
  for (const Span& r : rows)
    for (const Span& c : cols) tiles.push_back({c.start, r.start, c.length, r.length, c.own0, r.own0, c.own1, r.own1});
  return tiles;
}

}  // namespace nucleisam
