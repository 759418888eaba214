// Tiled pyramidal TIFF writers (libtiff; RGB and 32-bit labels), one tile in memory at a time.
#include "nucleisam/io/tiled_tiff.h"

#include <tiffio.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"

namespace nucleisam::io {

std::string aperio_description(int64_t width, int64_t height, int tile_size, double mpp) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "Aperio Image Library v12.0.0\r\n%lldx%lld [0,0 %lldx%lld] (%dx%d) RAW|AppMag = 40|MPP = %.6g",
                static_cast<long long>(width), static_cast<long long>(height), static_cast<long long>(width),
                static_cast<long long>(height), tile_size, tile_size, mpp);
  return buf;
}

namespace {

// One level's pixels: (level index, downsample, level width, level height); the frame's tags
// (size, tiling, reduced-image flag) are already set, the level's own pixel tags are not.
using LevelWriter = std::function<void(TIFF*, size_t, int, int64_t, int64_t)>;

// The frame every tiled pyramid shares: checks the geometry, writes into a temporary that becomes
// `path` only when every level is written (BigTIFF beyond 3 GiB of pixels), one directory a level.
void write_pyramid(const std::string& path, int64_t width, int64_t height, int tile_size,
                   const std::vector<int>& downsamples, int bytes_per_pixel, const LevelWriter& level) {
  if (tile_size < 16 || tile_size % 16 != 0)
    throw OptionError("tiled TIFF: tile size " + std::to_string(tile_size) + " is not a positive multiple of 16");
  if (downsamples.empty() || downsamples[0] != 1) throw OptionError("tiled TIFF: the first level must have downsample 1");
  if (width <= 0 || height <= 0) throw OptionError("tiled TIFF: empty image");
  ensure_parent_dir(path);
  AtomicFile file(path);
  const bool big = width * height * bytes_per_pixel > (int64_t{3} << 30);
  TIFF* t = TIFFOpen(file.temp_path().c_str(), big ? "w8" : "w");
  if (!t) throw IoError(path + ": cannot create TIFF");
  std::unique_ptr<TIFF, void (*)(TIFF*)> guard(t, [](TIFF* p) { TIFFClose(p); });
  for (size_t li = 0; li < downsamples.size(); ++li) {
    const int ds = downsamples[li];
    if (ds < 1 || (li > 0 && ds <= downsamples[li - 1])) throw OptionError("tiled TIFF: downsamples must increase");
    const int64_t lw = std::max<int64_t>(1, width / ds), lh = std::max<int64_t>(1, height / ds);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(lw));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(lh));
    TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(tile_size));
    TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<uint32_t>(tile_size));
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (li > 0) TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    level(t, li, ds, lw, lh);
    if (!TIFFWriteDirectory(t)) throw IoError(path + ": cannot write a TIFF directory (disk full?)");
  }
  guard.reset();
  file.commit();
}

void write_tile(TIFF* t, const std::string& path, const void* data, int64_t x, int64_t y) {
  if (TIFFWriteTile(t, const_cast<void*>(data), static_cast<uint32_t>(x), static_cast<uint32_t>(y), 0, 0) < 0)
    throw IoError(path + ": cannot write a TIFF tile (disk full?)");
}

// The deflated bytes of a tile of zeros, made once: most tiles of a slide's label pyramid are glass,
// and deflating each of them again took most of the write time (a 2.5-gigapixel slide: 10 GB of
// zeros). libtiff's Adobe deflate tiles are zlib streams, so one made here reads back the same.
std::vector<uint8_t> deflated_zeros(size_t bytes) {
  const std::vector<uint8_t> zeros(bytes, 0);
  uLongf size = compressBound(static_cast<uLong>(bytes));
  std::vector<uint8_t> out(size);
  if (compress2(out.data(), &size, zeros.data(), static_cast<uLong>(bytes), Z_DEFAULT_COMPRESSION) != Z_OK)
    throw IoError("tiled TIFF: cannot deflate an empty tile");
  out.resize(size);
  return out;
}

void write_raw_tile(TIFF* t, const std::string& path, const std::vector<uint8_t>& bytes, int64_t x,
                    int64_t y) {
  const ttile_t index = TIFFComputeTile(t, static_cast<uint32_t>(x), static_cast<uint32_t>(y), 0, 0);
  if (TIFFWriteRawTile(t, index, const_cast<uint8_t*>(bytes.data()), static_cast<tmsize_t>(bytes.size())) < 0)
    throw IoError(path + ": cannot write a TIFF tile (disk full?)");
}

std::string wrong_tile(const std::string& what, int got_w, int got_h, int w, int h) {
  return what + " gave a " + std::to_string(got_w) + "x" + std::to_string(got_h) + " tile, expected " +
         std::to_string(w) + "x" + std::to_string(h);
}

}  // namespace

void write_tiled_tiff(const std::string& path, int64_t width, int64_t height, const TiledTiffOptions& o,
                      const TileSource& source) {
  const int ts = o.tile_size;
  std::vector<uint8_t> buf(static_cast<size_t>(ts) * ts * 3);
  write_pyramid(path, width, height, ts, o.downsamples, 3, [&](TIFF* t, size_t li, int ds, int64_t lw, int64_t lh) {
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    if (o.jpeg) {
      TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
      TIFFSetField(t, TIFFTAG_JPEGQUALITY, 90);
      TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    } else {
      TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    }
    if (li == 0 && !o.description.empty()) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, o.description.c_str());
    for (int64_t y = 0; y < lh; y += ts)
      for (int64_t x = 0; x < lw; x += ts) {
        const int w = static_cast<int>(std::min<int64_t>(ts, lw - x)), h = static_cast<int>(std::min<int64_t>(ts, lh - y));
        Image tile = source(ds, x, y, w, h);
        if (tile.width != w || tile.height != h || tile.channels != 3)
          throw IoError(path + ": " + wrong_tile("tile source", tile.width, tile.height, w, h));
        std::fill(buf.begin(), buf.end(), uint8_t{255});
        for (int r = 0; r < h; ++r) std::copy(tile.row(r), tile.row(r) + 3 * w, buf.data() + static_cast<size_t>(r) * ts * 3);
        write_tile(t, path, buf.data(), x, y);
      }
  });
}

void write_tiled_label_tiff(const std::string& path, int64_t width, int64_t height, int tile_size,
                            const std::vector<int>& downsamples, const LabelTileSource& source) {
  const int ts = tile_size;
  std::vector<uint32_t> buf(static_cast<size_t>(std::max(ts, 0)) * std::max(ts, 0));
  std::vector<uint8_t> empty_tile;  // deflated zeros, made on first use
  write_pyramid(path, width, height, ts, downsamples, 4, [&](TIFF* t, size_t, int ds, int64_t lw, int64_t lh) {
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 32);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    for (int64_t y = 0; y < lh; y += ts)
      for (int64_t x = 0; x < lw; x += ts) {
        const int w = static_cast<int>(std::min<int64_t>(ts, lw - x)), h = static_cast<int>(std::min<int64_t>(ts, lh - y));
        LabelMap tile = source(ds, x, y, w, h);
        const bool said_empty = tile.width == 0 && tile.height == 0;  // the source says: all zeros
        bool any = false;
        if (!said_empty) {
          if (tile.width != w || tile.height != h || tile.channels != 1)
            throw IoError(path + ": " + wrong_tile("label source", tile.width, tile.height, w, h));
          std::fill(buf.begin(), buf.end(), 0u);
          for (int r = 0; r < h; ++r)
            for (int c = 0; c < w; ++c) {
              const int32_t v = tile.at(r, c);
              if (v < 0) throw IoError(path + ": negative label " + std::to_string(v));
              buf[static_cast<size_t>(r) * ts + c] = static_cast<uint32_t>(v);
              any |= v != 0;
            }
        }
        if (any) {
          write_tile(t, path, buf.data(), x, y);
        } else {
          if (empty_tile.empty()) empty_tile = deflated_zeros(buf.size() * sizeof(uint32_t));
          write_raw_tile(t, path, empty_tile, x, y);
        }
      }
  });
}

LabelMap read_tiled_label_tiff(const std::string& path, int level) {
  TIFF* t = TIFFOpen(path.c_str(), "r");
  if (!t) throw IoError(path + ": cannot open as TIFF");
  std::unique_ptr<TIFF, void (*)(TIFF*)> guard(t, [](TIFF* p) { TIFFClose(p); });
  if (level < 0 || !TIFFSetDirectory(t, static_cast<uint16_t>(level)))
    throw IoError(path + ": has no level " + std::to_string(level));
  uint32_t w = 0, h = 0, tw = 0, th = 0;
  uint16_t bits = 0, spp = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  if (!TIFFIsTiled(t) || !TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(t, TIFFTAG_TILELENGTH, &th) ||
      bits != 32 || spp != 1)
    throw IoError(path + ": not a tiled 32-bit label TIFF");
  if (static_cast<uint64_t>(w) * h > (uint64_t{1} << 31)) throw IoError(path + ": level too large to read whole");
  LabelMap out(static_cast<int>(h), static_cast<int>(w));
  std::vector<uint32_t> buf(static_cast<size_t>(tw) * th);
  for (uint32_t y = 0; y < h; y += th)
    for (uint32_t x = 0; x < w; x += tw) {
      if (TIFFReadTile(t, buf.data(), x, y, 0, 0) < 0) throw IoError(path + ": cannot read a tile");
      for (uint32_t r = 0; r < th && y + r < h; ++r)
        for (uint32_t c = 0; c < tw && x + c < w; ++c)
          out.at(static_cast<int>(y + r), static_cast<int>(x + c)) = static_cast<int32_t>(buf[static_cast<size_t>(r) * tw + c]);
    }
  return out;
}

}  // namespace nucleisam::io
