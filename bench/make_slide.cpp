// Builds a whole-slide test image from real H&E tiles: a mosaic of the tiles in a folder (each
// used in turn, mirrored on alternate rows so no seam repeats exactly), written as a JPEG-compressed
// tiled pyramid (downsamples 1, 4, 16) with an Aperio-style description, so OpenSlide reads it as
// an SVS with a resolution. Streams tile by tile: a slide of any size costs a few tiles of memory.
// With --islands SPACING the slide is glass with one tissue island (one tile of the folder, in turn)
// centred in each SPACING x SPACING cell: a multi-gigapixel slide that tissue detection reduces to
// a few hundred tiles. Glass tiles are a flat colour and cost almost nothing to write.
//
//   bench_make_slide --tiles ../shared/data/monuseg/test/images --size 16384 --mpp 0.25 --out /tmp/s16k.svs
//   bench_make_slide --tiles ../shared/data/monuseg/test/images --size 100000 --islands 12500 --out
//   /tmp/g.svs bench_make_slide --tiles tiles_20x/ --size 4096 --mpp 0 --out /tmp/plain.tif   # no resolution
//   recorded
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/tiled_tiff.h"

using namespace nucleisam;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string tiles_dir, out;
  int64_t size = 8192, islands = 0;
  double mpp = 0.25;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--tiles") tiles_dir = v;
    else if (k == "--size") size = std::stoll(v);
    else if (k == "--mpp") mpp = std::stod(v);
    else if (k == "--islands") islands = std::stoll(v);
    else if (k == "--out") out = v;
    else {
      std::cerr << "unknown option " << k << '\n';
      return 2;
    }
  }
  if (tiles_dir.empty() || out.empty()) {
    std::cerr << "usage: bench_make_slide --tiles FOLDER --size PIXELS [--mpp 0.25 (0: none recorded)] "
                 "[--islands SPACING] --out slide.svs\n";
    return 2;
  }
  try {
    std::vector<Image> tiles;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(tiles_dir)) names.push_back(e.path().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      if (tiles.size() >= 8) break;
      try {
        tiles.push_back(io::read_image(n));
      } catch (const Error&) {
      }
    }
    if (tiles.empty()) throw IoError(tiles_dir + ": no readable images");
    const int tw = tiles[0].width, th = tiles[0].height;
    if (islands > 0 && (islands < tw || islands < th))
      throw OptionError("--islands " + std::to_string(islands) + " is smaller than a tile (" + std::to_string(tw) + "x" +
                        std::to_string(th) + ")");
    constexpr uint8_t kGlass = 242;
    // The island of cell (cx, cy) covers [ox, ox + tw) x [oy, oy + th) with o = cell origin + margin.
    const int64_t margin_x = (islands - tw) / 2, margin_y = (islands - th) / 2;
    auto island_pixel = [&](int64_t x, int64_t y, int c) -> int {
      const int64_t cx = x / islands, cy = y / islands;
      const int64_t lx = x - cx * islands - margin_x, ly = y - cy * islands - margin_y;
      if (lx < 0 || ly < 0 || lx >= tw || ly >= th) return kGlass;
      const Image& t = tiles[static_cast<size_t>((cx + 3 * cy) % static_cast<int64_t>(tiles.size()))];
      return t.at(std::min(static_cast<int>(ly), t.height - 1), std::min(static_cast<int>(lx), t.width - 1), c);
    };
    // Whether a level-0 rectangle meets an island (else it is all glass).
    auto meets_island = [&](int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
      for (int64_t cy = y0 / islands; cy * islands < y1; ++cy)
        for (int64_t cx = x0 / islands; cx * islands < x1; ++cx) {
          const int64_t ix = cx * islands + margin_x, iy = cy * islands + margin_y;
          if (ix < x1 && ix + tw > x0 && iy < y1 && iy + th > y0) return true;
        }
      return false;
    };
    auto mosaic_pixel = [&](int64_t x, int64_t y, int c) -> int {
      const int64_t gx = x / tw, gy = y / th;
      const Image& t = tiles[static_cast<size_t>((gx + 3 * gy) % static_cast<int64_t>(tiles.size()))];
      int lx = static_cast<int>(x % tw), ly = static_cast<int>(y % th);
      if (gy % 2) lx = tw - 1 - lx;
      return t.at(std::min(ly, t.height - 1), std::min(lx, t.width - 1), c);
    };
    auto pixel = [&](int64_t x, int64_t y, int c) -> int {
      return islands > 0 ? island_pixel(x, y, c) : mosaic_pixel(x, y, c);
    };
    io::TiledTiffOptions o;
    o.tile_size = 256;
    o.downsamples = {1, 4, 16};
    o.jpeg = true;
    // --mpp 0: a generic tiled TIFF that records no resolution (name it .tif).
    if (mpp > 0) o.description = io::aperio_description(size, size, o.tile_size, mpp);
    const auto start = std::chrono::steady_clock::now();
    io::write_tiled_tiff(out, size, size, o, [&](int ds, int64_t x0, int64_t y0, int w, int h) {
      if (islands > 0 && !meets_island(x0 * ds, y0 * ds, (x0 + w) * ds, (y0 + h) * ds)) return Image(h, w, 3, kGlass);
      Image tile(h, w, 3);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int c = 0; c < 3; ++c) {
            int sum = 0;
            for (int dy = 0; dy < ds; ++dy)
              for (int dx = 0; dx < ds; ++dx) sum += pixel((x0 + x) * ds + dx, (y0 + y) * ds + dy, c);
            tile.at(y, x, c) = static_cast<uint8_t>(sum / (ds * ds));
          }
      return tile;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %lldx%lld at %.3f um/px from %zu tiles of %s%s, %.1f MB, %.1f s\n", out.c_str(),
                static_cast<long long>(size), static_cast<long long>(size), mpp, tiles.size(), tiles_dir.c_str(),
                islands > 0 ? (" (islands every " + std::to_string(islands) + " px on glass)").c_str() : "",
                static_cast<double>(fs::file_size(out)) / 1e6, s);
  } catch (const std::exception& e) {
    std::cerr << "bench_make_slide: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
