// Tiled pyramidal TIFF writer, streamed tile by tile (nothing image-sized in memory): the test and
// benchmark slides (with an Aperio-style description, OpenSlide reads them as SVS with a
// resolution) and generic tiled TIFFs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::io {

struct TiledTiffOptions {
  int tile_size = 256;                 // multiple of 16 (TIFF rule)
  std::vector<int> downsamples = {1};  // one directory per entry; the first must be 1
  std::string description;             // ImageDescription of the first directory ("" = none)
  bool jpeg = false;                   // JPEG (quality 90, YCbCr) instead of lossless deflate
};

// Called for each tile of each level: the RGB pixels of the level whose top-left corner is at
// level pixel (x, y), w x h (smaller at the right and bottom edges).
using TileSource = std::function<Image(int downsample, int64_t x, int64_t y, int w, int h)>;

// A tile of a label pyramid: the labels of the level whose top-left corner is at level pixel
// (x, y), w x h; or an empty map (0 x 0) when every label of the tile is 0, which a source that
// knows it can say without making the tile (most tiles of a slide are glass).
using LabelTileSource = std::function<LabelMap(int downsample, int64_t x, int64_t y, int w, int h)>;

// Writes a width x height (level 0) pyramid of 32-bit unsigned labels (one sample, deflate),
// atomically; levels are asked for in order, each tile row by tile row, left to right. Same
// errors as write_tiled_tiff; a negative label is an IoError.
void write_tiled_label_tiff(const std::string& path, int64_t width, int64_t height, int tile_size,
                            const std::vector<int>& downsamples, const LabelTileSource& source);

// Reads level `level` (0 = full size) of a label pyramid written by write_tiled_label_tiff, whole
// (for tests and small slides). IoError naming the file when it is missing, not a 32-bit one-sample
// tiled TIFF, or has fewer levels.
LabelMap read_tiled_label_tiff(const std::string& path, int level);

// Writes a width x height (level 0) RGB pyramid atomically. Throws IoError naming the path,
// OptionError for a bad tile size or downsample list.
void write_tiled_tiff(const std::string& path, int64_t width, int64_t height, const TiledTiffOptions& options,
                      const TileSource& source);

// The description that makes OpenSlide read a TIFF as an Aperio slide and report its microns per
// pixel ("Aperio Image Library ... |MPP = 0.25").
std::string aperio_description(int64_t width, int64_t height, int tile_size, double mpp);

}  // namespace nucleisam::io
