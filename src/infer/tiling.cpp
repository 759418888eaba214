// Tile planning with ownership regions, and centroid-ownership stitching of tile instances.
#include "nucleisam/infer/tiling.h"

#include <algorithm>
#include <vector>

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
  if (tile_size < 1) throw UsageError("tile size must be at least 1 pixel (got " + std::to_string(tile_size) + ")");
  if (overlap < 0 || overlap >= tile_size)
    throw UsageError("tile overlap must be at least 0 and smaller than the tile size (got " + std::to_string(overlap) +
                     " for tiles of " + std::to_string(tile_size) + ")");
  std::vector<TileWindow> tiles;
  if (image_height <= 0 || image_width <= 0) return tiles;
  auto rows = plan_axis(image_height, tile_size, overlap);
  auto cols = plan_axis(image_width, tile_size, overlap);
  for (const Span& r : rows)
    for (const Span& c : cols) tiles.push_back({c.start, r.start, c.length, r.length, c.own0, r.own0, c.own1, r.own1});
  return tiles;
}

InstanceStitcher::InstanceStitcher(int height, int width) { result_.instances = LabelMap(height, width); }

void InstanceStitcher::add(const TileWindow& tile, const Segmentation& part) {
  const LabelMap& m = part.instances;
  if (m.height != tile.height || m.width != tile.width)
    throw DataError("stitching: tile result is " + std::to_string(m.width) + "x" + std::to_string(m.height) +
                    ", the window is " + std::to_string(tile.width) + "x" + std::to_string(tile.height));
  struct Sum {
    double x = 0, y = 0;
    long long n = 0;
  };
  // Tile ids are small dense integers: index by id instead of a map lookup per pixel.
  int32_t max_id = 0;
  for (int32_t v : m.data) max_id = std::max(max_id, v);
  std::vector<Sum> sums(static_cast<size_t>(max_id) + 1);
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x)
      if (int32_t id = m.at(y, x); id > 0) {
        Sum& s = sums[id];
        s.x += x;
        s.y += y;
        ++s.n;
      }
  std::vector<int32_t> kept(sums.size(), 0);  // tile id -> image id (0: not owned by this tile)
  for (int32_t id = 1; id <= max_id; ++id) {
    const Sum& s = sums[id];
    if (s.n == 0) continue;
    double cx = tile.x + s.x / s.n + 0.5, cy = tile.y + s.y / s.n + 0.5;
    if (cx < tile.own_x0 || cx >= tile.own_x1 || cy < tile.own_y0 || cy >= tile.own_y1) continue;
    kept[id] = next_id_++;
    if (!part.classes.empty()) any_classes_ = true;
    if (!part.scores.empty()) any_scores_ = true;
    result_.classes.push_back(static_cast<size_t>(id) <= part.classes.size() ? part.classes[id - 1] : 0);
    result_.scores.push_back(static_cast<size_t>(id) <= part.scores.size() ? part.scores[id - 1] : 1.0f);
  }
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x) {
      int32_t id = m.at(y, x);
      if (id <= 0 || kept[id] == 0) continue;
      int32_t& dst = result_.instances.at(tile.y + y, tile.x + x);
      if (dst == 0) dst = kept[id];
    }
  if (result_.class_names.empty()) result_.class_names = part.class_names;
}

Segmentation InstanceStitcher::result() const {
  Segmentation out = result_;
  if (!any_classes_) out.classes.clear();
  if (!any_scores_) out.scores.clear();
  return out;
}

Segmentation segment_in_tiles(Segmenter& segmenter, const Image& image, const std::string& source, int tile_size,
                              int overlap) {
  if (tile_size <= 0 || (tile_size >= image.width && tile_size >= image.height))
    return segmenter.segment(image, source);
  InstanceStitcher stitcher(image.height, image.width);
  for (const TileWindow& t : plan_tiles(image.height, image.width, tile_size, overlap)) {
    Image window(t.height, t.width, 3);
    for (int y = 0; y < t.height; ++y)
      std::copy(image.row(t.y + y) + 3 * t.x, image.row(t.y + y) + 3 * (t.x + t.width), window.row(y));
    stitcher.add(t, segmenter.segment(window, source + " (tile at " + std::to_string(t.x) + "," +
                                                  std::to_string(t.y) + ")"));
  }
  Segmentation out = stitcher.result();
  // Nuclei whose pixels all went to an earlier tile's nucleus vanish: renumber to keep ids dense.
  int32_t max_id = 0;
  for (int32_t v : out.instances.data) max_id = std::max(max_id, v);
  std::vector<int64_t> area(static_cast<size_t>(max_id) + 1, 0);
  for (int32_t v : out.instances.data)
    if (v > 0) ++area[v];
  std::vector<int32_t> renumber(area.size(), 0);
  int32_t used = 0;
  for (int32_t id = 1; id <= max_id; ++id)
    if (area[id] > 0) renumber[id] = ++used;
  if (used != max_id) {
    Segmentation dense;
    dense.class_names = out.class_names;
    dense.instances = LabelMap(out.instances.height, out.instances.width);
    for (int32_t id = 1; id <= max_id; ++id) {
      if (renumber[id] == 0) continue;
      if (!out.classes.empty()) dense.classes.push_back(out.classes[id - 1]);
      if (!out.scores.empty()) dense.scores.push_back(out.scores[id - 1]);
    }
    for (size_t i = 0; i < out.instances.data.size(); ++i)
      if (out.instances.data[i] > 0) dense.instances.data[i] = renumber[out.instances.data[i]];
    out = std::move(dense);
  }
  return out;
}

}  // namespace nucleisam
