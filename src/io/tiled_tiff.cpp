// Tiled pyramidal TIFF writers (libtiff; RGB and 32-bit labels), one tile in memory at a time.
#include "nucleisam/io/tiled_tiff.h"

#include <tiffio.h>

#include <algorithm>
#include <cstdio>
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

void write_tiled_tiff(const std::string& path, int64_t width, int64_t height, const TiledTiffOptions& o,
                      const TileSource& source) {
  if (o.tile_size < 16 || o.tile_size % 16 != 0)
    throw OptionError("tiled TIFF: tile size " + std::to_string(o.tile_size) + " is not a positive multiple of 16");
  if (o.downsamples.empty() || o.downsamples[0] != 1)
    throw OptionError("tiled TIFF: the first level must have downsample 1");
  if (width <= 0 || height <= 0) throw OptionError("tiled TIFF: empty image");
  ensure_parent_dir(path);
  AtomicFile file(path);
  const bool big = width * height * 3 > (int64_t{3} << 30);
  TIFF* t = TIFFOpen(file.temp_path().c_str(), big ? "w8" : "w");
  if (!t) throw IoError(path + ": cannot create TIFF");
  std::unique_ptr<TIFF, void (*)(TIFF*)> guard(t, [](TIFF* p) { TIFFClose(p); });
  const int ts = o.tile_size;
  std::vector<uint8_t> buf(static_cast<size_t>(ts) * ts * 3);
  for (size_t li = 0; li < o.downsamples.size(); ++li) {
    const int ds = o.downsamples[li];
    if (ds < 1 || (li > 0 && ds <= o.downsamples[li - 1]))
      throw OptionError("tiled TIFF: downsamples must increase");
    const int64_t lw = std::max<int64_t>(1, width / ds), lh = std::max<int64_t>(1, height / ds);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(lw));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(lh));
    TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(ts));
    TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<uint32_t>(ts));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (li > 0) TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
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
          throw IoError(path + ": tile source gave a " + std::to_string(tile.width) + "x" + std::to_string(tile.height) +
                        " tile, expected " + std::to_string(w) + "x" + std::to_string(h));
        std::fill(buf.begin(), buf.end(), uint8_t{255});
        for (int r = 0; r < h; ++r) std::copy(tile.row(r), tile.row(r) + 3 * w, buf.data() + static_cast<size_t>(r) * ts * 3);
        if (TIFFWriteTile(t, buf.data(), static_cast<uint32_t>(x), static_cast<uint32_t>(y), 0, 0) < 0)
          throw IoError(path + ": cannot write a TIFF tile (disk full?)");
      }
    if (!TIFFWriteDirectory(t)) throw IoError(path + ": cannot write a TIFF directory (disk full?)");
  }
  guard.reset();
  file.commit();
}

void write_tiled_label_tiff(const std::string& path, int64_t width, int64_t height, int tile_size,
                            const std::vector<int>& downsamples, const LabelTileSource& source) {
  if (tile_size < 16 || tile_size % 16 != 0)
    throw OptionError("tiled TIFF: tile size " + std::to_string(tile_size) + " is not a positive multiple of 16");
  if (downsamples.empty() || downsamples[0] != 1) throw OptionError("tiled TIFF: the first level must have downsample 1");
  if (width <= 0 || height <= 0) throw OptionError("tiled TIFF: empty image");
  ensure_parent_dir(path);
  AtomicFile file(path);
  const bool big = width * height * 4 > (int64_t{3} << 30);
  TIFF* t = TIFFOpen(file.temp_path().c_str(), big ? "w8" : "w");
  if (!t) throw IoError(path + ": cannot create TIFF");
  std::unique_ptr<TIFF, void (*)(TIFF*)> guard(t, [](TIFF* p) { TIFFClose(p); });
  const int ts = tile_size;
  std::vector<uint32_t> buf(static_cast<size_t>(ts) * ts);
  for (size_t li = 0; li < downsamples.size(); ++li) {
    const int ds = downsamples[li];
    if (ds < 1 || (li > 0 && ds <= downsamples[li - 1])) throw OptionError("tiled TIFF: downsamples must increase");
    const int64_t lw = std::max<int64_t>(1, width / ds), lh = std::max<int64_t>(1, height / ds);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(lw));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(lh));
    TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(ts));
    TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<uint32_t>(ts));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 32);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    if (li > 0) TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    for (int64_t y = 0; y < lh; y += ts)
      for (int64_t x = 0; x < lw; x += ts) {
        const int w = static_cast<int>(std::min<int64_t>(ts, lw - x)), h = static_cast<int>(std::min<int64_t>(ts, lh - y));
        LabelMap tile = source(ds, x, y, w, h);
        if (tile.width != w || tile.height != h || tile.channels != 1)
          throw IoError(path + ": label source gave a " + std::to_string(tile.width) + "x" +
                        std::to_string(tile.height) + " tile, expected " + std::to_string(w) + "x" + std::to_string(h));
        std::fill(buf.begin(), buf.end(), 0u);
        for (int r = 0; r < h; ++r)
          for (int c = 0; c < w; ++c) {
            const int32_t v = tile.at(r, c);
            if (v < 0) throw IoError(path + ": negative label " + std::to_string(v));
            buf[static_cast<size_t>(r) * ts + c] = static_cast<uint32_t>(v);
          }
        if (TIFFWriteTile(t, buf.data(), static_cast<uint32_t>(x), static_cast<uint32_t>(y), 0, 0) < 0)
          throw IoError(path + ": cannot write a TIFF tile (disk full?)");
      }
    if (!TIFFWriteDirectory(t)) throw IoError(path + ": cannot write a TIFF directory (disk full?)");
  }
  guard.reset();
  file.commit();
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
