// Whole-slide images through OpenSlide (Aperio SVS, Hamamatsu NDPI, MIRAX MRXS, Leica SCN, generic
// tiled TIFF, ...): the pyramid levels, the resolution the slide records, and RGB regions read on
// demand, so nothing slide-sized is ever held in memory. OpenSlide stays behind this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::io {

struct SlideLevel {
  int64_t width = 0;
  int64_t height = 0;
  double downsample = 1;  // level-0 pixels per pixel of this level
};

class Slide {
 public:
  // Whether OpenSlide recognises the file as a slide (a cheap check of the format, not a full
  // open). Plain PNG/JPEG files and strip TIFFs are not slides; tiled TIFFs are.
  static bool is_slide(const std::string& path);
  // Whether the name ends like a slide-only format (.svs .ndpi .mrxs .scn .vms .vmu .bif .svslide):
  // such a file is opened as a slide even when OpenSlide does not recognise it, so a corrupt one
  // fails with the slide reader's message.
  static bool has_slide_extension(const std::string& path);

  // Opens the slide; IoError naming the path and OpenSlide's cause when it is missing, not a slide
  // format OpenSlide knows, or corrupt.
  explicit Slide(const std::string& path);
  ~Slide();
  Slide(const Slide&) = delete;
  Slide& operator=(const Slide&) = delete;

  const std::string& path() const { return path_; }
  const std::string& vendor() const { return vendor_; }
  const std::vector<SlideLevel>& levels() const { return levels_; }
  int64_t width() const { return levels_[0].width; }
  int64_t height() const { return levels_[0].height; }
  // Microns per level-0 pixel as the file records them (openslide.mpp-x / -y); 0 when absent.
  double mpp_x() const { return mpp_x_; }
  double mpp_y() const { return mpp_y_; }

  // The w x h pixels of `level` whose top-left corner is at level-0 coordinates (x, y), as RGB;
  // transparent pixels (outside the scanned area) are white. Parts outside the slide are white.
  // Thread-safe. IoError naming the path and region when OpenSlide fails (a truncated or corrupt
  // tile); OpenSlide's errors are sticky, so every later read fails too.
  Image read_region(int level, int64_t x, int64_t y, int w, int h) const;

 private:
  std::string path_, vendor_;
  std::vector<SlideLevel> levels_;
  double mpp_x_ = 0, mpp_y_ = 0;
  struct Handle;
  std::unique_ptr<Handle> handle_;
};

}  // namespace nucleisam::io
