// OpenSlide behind io::Slide: levels, resolution, RGB regions (premultiplied ARGB -> RGB on white).
#include "nucleisam/io/slide.h"

#include <openslide/openslide.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::io {

struct Slide::Handle {
  openslide_t* osr = nullptr;
  ~Handle() {
    if (osr) openslide_close(osr);
  }
};

namespace {

double property_number(openslide_t* osr, const char* name) {
  const char* v = openslide_get_property_value(osr, name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  return end && *end == '\0' && d > 0 ? d : 0;
}

}  // namespace

bool Slide::is_slide(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  return openslide_detect_vendor(path.c_str()) != nullptr;
}

bool Slide::has_slide_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* e : {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"})
    if (ext == e) return true;
  return false;
}

Slide::Slide(const std::string& path) : path_(path), handle_(std::make_unique<Handle>()) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError(path + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError(path + ": not a file");
  const char* vendor = openslide_detect_vendor(path.c_str());
  if (!vendor) throw IoError(path + ": not a whole-slide image OpenSlide can read (unknown or corrupt format)");
  vendor_ = vendor;
  handle_->osr = openslide_open(path.c_str());
  if (!handle_->osr) throw IoError(path + ": not a whole-slide image OpenSlide can read (unknown or corrupt format)");
  if (const char* err = openslide_get_error(handle_->osr))
    throw IoError(path + ": cannot open slide (" + vendor_ + "): " + err);
  const int32_t count = openslide_get_level_count(handle_->osr);
  if (count < 1) throw IoError(path + ": slide has no pyramid levels");
  for (int32_t i = 0; i < count; ++i) {
    SlideLevel l;
    openslide_get_level_dimensions(handle_->osr, i, &l.width, &l.height);
    l.downsample = openslide_get_level_downsample(handle_->osr, i);
    if (l.width <= 0 || l.height <= 0 || !(l.downsample >= 1))
      throw IoError(path + ": slide level " + std::to_string(i) + " has no valid size");
    levels_.push_back(l);
  }
  mpp_x_ = property_number(handle_->osr, OPENSLIDE_PROPERTY_NAME_MPP_X);
  mpp_y_ = property_number(handle_->osr, OPENSLIDE_PROPERTY_NAME_MPP_Y);
}

Slide::~Slide() = default;

Image Slide::read_region(int level, int64_t x, int64_t y, int w, int h) const {
  if (level < 0 || level >= static_cast<int>(levels_.size()) || w <= 0 || h <= 0)
    throw IoError(path_ + ": bad region request (level " + std::to_string(level) + ", " + std::to_string(w) + "x" +
                  std::to_string(h) + ")");
  std::vector<uint32_t> argb(static_cast<size_t>(w) * h);
  openslide_read_region(handle_->osr, argb.data(), x, y, level, w, h);
  if (const char* err = openslide_get_error(handle_->osr))
    throw IoError(path_ + ": cannot read the region at (" + std::to_string(x) + ", " + std::to_string(y) +
                  "), level " + std::to_string(level) + ": " + err);
  Image out(h, w, 3);
  uint8_t* o = out.data.data();
  for (uint32_t p : argb) {
    // Premultiplied ARGB: composite over white.
    const uint32_t a = p >> 24, inv = 255 - a;
    o[0] = static_cast<uint8_t>(((p >> 16) & 0xff) + inv);
    o[1] = static_cast<uint8_t>(((p >> 8) & 0xff) + inv);
    o[2] = static_cast<uint8_t>((p & 0xff) + inv);
    o += 3;
  }
  return out;
}

}  // namespace nucleisam::io
