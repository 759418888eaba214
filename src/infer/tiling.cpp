// Centroid-ownership stitching of tile instances, and tiled segmentation.
#include "nucleisam/infer/tiling.h"

#include <algorithm>
#include <vector>

#include "nucleisam/errors.h"
#include "nucleisam/relabel.h"

namespace nucleisam::infer {

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

void renumber_instances(Segmentation& s) {
  const std::vector<int32_t> old_ids = relabel_consecutive(s.instances);
  std::vector<int> classes;
  std::vector<float> scores;
  for (int32_t id : old_ids) {
    if (!s.classes.empty()) classes.push_back(s.classes.at(static_cast<size_t>(id) - 1));
    if (!s.scores.empty()) scores.push_back(s.scores.at(static_cast<size_t>(id) - 1));
  }
  s.classes = std::move(classes);
  s.scores = std::move(scores);
}

Segmentation segment_in_tiles(Segmenter& segmenter, const Image& image, const std::string& source, int tile_size,
                              int overlap) {
  return segment_in_tiles(segmenter, image, source, tile_size, tile_size, overlap);
}

Segmentation segment_in_tiles(Segmenter& segmenter, const Image& image, const std::string& source,
                              int tile_width, int tile_height, int overlap) {
  if (tile_width <= 0 || tile_height <= 0 || (tile_width >= image.width && tile_height >= image.height))
    return segmenter.segment(image, source);
  // Rows and columns planned on their own (plan_tiles over a one-pixel strip), then crossed.
  const std::vector<TileWindow> rows = plan_tiles(image.height, 1, tile_height, overlap);
  const std::vector<TileWindow> columns = plan_tiles(1, image.width, tile_width, overlap);
  InstanceStitcher stitcher(image.height, image.width);
  for (const TileWindow& r : rows)
    for (const TileWindow& c : columns) {
      TileWindow t;
      t.x = c.x;
      t.width = c.width;
      t.own_x0 = c.own_x0;
      t.own_x1 = c.own_x1;
      t.y = r.y;
      t.height = r.height;
      t.own_y0 = r.own_y0;
      t.own_y1 = r.own_y1;
      stitcher.add(t, segmenter.segment(
                          window(image, t.x, t.y, t.width, t.height),
                          source + " (tile at " + std::to_string(t.x) + "," + std::to_string(t.y) + ")"));
    }
  Segmentation out = stitcher.result();
  // Nuclei whose pixels all went to an earlier tile's nucleus vanish: renumber to keep ids dense.
  renumber_instances(out);
  return out;
}

}  // namespace nucleisam::infer
