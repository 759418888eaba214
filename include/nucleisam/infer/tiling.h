// Tiles and stitching: large images are segmented window by window (models have a fixed input
// size; whole slides do not fit in memory) and the per-window instances are put back together so
// that each nucleus appears exactly once.
#pragma once

#include <string>
#include <vector>

#include "nucleisam/infer/segmenter.h"
#include "nucleisam/tile_plan.h"

namespace nucleisam::infer {

// Collects per-tile segmentations into one image-sized segmentation. An instance is kept by the
// tile whose owned region holds its centroid, so a nucleus seen by two overlapping tiles is kept
// once. A nucleus is complete in the tile that keeps it when the overlap is at least twice its
// diameter (its centroid is then at least one diameter from that window's inner edges).
// Where kept instances of different tiles overlap, the earlier tile keeps the pixel.
class InstanceStitcher {
 public:
  InstanceStitcher(int height, int width);
  void add(const TileWindow& tile, const Segmentation& tile_result);
  // Ids 1..N in the order tiles kept them; classes/scores empty when no tile had any.
  Segmentation result() const;

 private:
  Segmentation result_;
  int next_id_ = 1;
  bool any_classes_ = false, any_scores_ = false;
};

// Renumbers `s.instances` to dense ids 1..N (ids with no pixel left are dropped), keeping each
// instance's class and score with it.
void renumber_instances(Segmentation& s);

// The image cut into plan_tiles(...) windows, each segmented alone, stitched back. tile_size 0
// (or a tile at least as large as the image) segments the whole image in one call.
Segmentation segment_in_tiles(Segmenter& segmenter, const Image& image, const std::string& source, int tile_size,
                              int overlap);
// The same with tile_width x tile_height windows (the rows and columns of plan_tiles crossed).
Segmentation segment_in_tiles(Segmenter& segmenter, const Image& image, const std::string& source,
                              int tile_width, int tile_height, int overlap);

}  // namespace nucleisam::infer
