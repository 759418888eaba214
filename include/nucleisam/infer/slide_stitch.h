// Seam stitching for whole slides: nuclei cut by tile edges are joined across tiles, so each
// nucleus comes out once and whole whatever the tile size and overlap, with memory bounded by the
// seams still pending (the label strips a later tile will overlap, and the pieces of nuclei that a
// later tile may still extend), never by the slide.
//
// Rules (docs/segment.md, "Whole slides"):
// - An instance of a tile is *open* when its pixels reach a window edge inside the grid, *closed*
//   otherwise. Instances of two tiles are pieces of one nucleus when, inside the two windows'
//   intersection, more than half of the smaller one's pixels there are shared (two touching but
//   distinct nuclei share none); pieces are joined by union-find.
// - A closed instance whose centroid lies in its tile's owned region is written at once, whole,
//   always (the ownership rule of tiled segmentation: small nuclei come out exactly as before);
//   the open pieces joined to it, seen earlier or later, are then dropped.
// - A nucleus with no such instance is written once no tile still to come can extend it, and only
//   if one of its pieces is open: as a closed piece whole when it has one (a neighbour saw all of
//   it), else as the union of its pieces, each restricted to the part of its window that its tile
//   owns (or that no segmented tile owns), so the outline is continuous. It is dropped when the
//   owned region holding the centroid of all its pixels belongs to a segmented tile that did not
//   see it (the ownership rule again).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nucleisam/infer/segmenter.h"
#include "nucleisam/nucleus.h"
#include "nucleisam/tile_plan.h"

namespace nucleisam::infer {

// A horizontal run of a nucleus' pixels: row y, columns [x0, x1), processing-grid coordinates.
struct PixelRun {
  int64_t y = 0, x0 = 0, x1 = 0;
};

struct StitchedNucleus {
  Nucleus nucleus;             // processing-grid coordinates; id left for the caller to set
  std::vector<PixelRun> runs;  // its pixels, row by row (only when the stitcher was asked for them)
  bool merged =
      false;         // assembled from pieces of several tiles, or taken whole from a tile that did not own it
  bool cut = false;  // still touches a window edge beyond which no tile was segmented (no tissue there)
};

class SeamStitcher {
 public:
  // plan: every tile of the grid (plan_tiles order); segmented: indices into plan of the tiles that
  // will be segmented, ascending. Tiles are then added in that order: add(i) for the i-th of them.
  // with_runs: give each nucleus its pixels (for a label image).
  SeamStitcher(std::vector<TileWindow> plan, std::vector<size_t> segmented, int64_t grid_width,
               int64_t grid_height, bool with_runs = false);
  ~SeamStitcher();

  // Adds the segmentation of segmented tile i (i must be one more than the previous call's, or
  // any value on the first call: a resumed run replays from earliest_held()). Returns the nuclei
  // that are final now, in a deterministic order: the tile's own closed nuclei in label order, then
  // the nuclei completed by this tile in the order of their first piece. DataError when the map
  // is not the tile's size.
  std::vector<StitchedNucleus> add(int64_t i, const Segmentation& part);

  // The first segmented-tile index whose data is still held (a label strip or a pending piece);
  // the next index to add when nothing is. Replaying tiles from here on a fresh stitcher rebuilds
  // the same pending state (the segmenter being deterministic).
  int64_t earliest_held() const;

  // Held now: pending pieces and label strips (for tests of the memory bound).
  size_t pending_pieces() const;
  size_t held_strips() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nucleisam::infer
