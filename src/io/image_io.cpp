// Tile image and label-map I/O: OpenCV for PNG/JPEG, libtiff for TIFF (so LZW, JPEG-in-TIFF and
// 32-bit labels behave the same everywhere), our own .npy code for arrays.
#include "nucleisam/image_io.h"

#include <tiffio.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/npy.h"

namespace fs = std::filesystem;

namespace nucleisam::io {
namespace {

// libtiff reports through global handlers; keep the last message per thread for our errors.
thread_local std::string t_tiff_error;
void tiff_error_handler(const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  t_tiff_error = buf;
  (void)module;
}
void tiff_warning_handler(const char*, const char*, va_list) {}

struct TiffCloser {
  void operator()(TIFF* t) const {
    if (t) TIFFClose(t);
  }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

TiffPtr open_tiff(const std::string& path, const char* mode) {
  static bool handlers = [] {
    TIFFSetErrorHandler(tiff_error_handler);
    TIFFSetWarningHandler(tiff_warning_handler);
    return true;
  }();
  (void)handlers;
  t_tiff_error.clear();
  TiffPtr t(TIFFOpen(path.c_str(), mode));
  if (!t)
    throw IoError(path + ": cannot open TIFF" +
                  (t_tiff_error.empty() ? std::string() : " (" + t_tiff_error + ")"));
  return t;
}

void check_exists(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path + ": no such file");
  if (fs::is_directory(path, ec)) throw IoError(path + ": is a folder, expected an image file");
}

void check_size(const std::string& path, long long w, long long h) {
  if (w <= 0 || h <= 0) throw IoError(path + ": image has no pixels");
  if (w * h > kMaxTilePixels)
    throw IoError(path + ": image is " + std::to_string(w) + "x" + std::to_string(h) +
                  ", too large to load whole; use the whole-slide reader");
}

bool is_tiff(const std::string& path) {
  auto e = lower_extension(path);
  return e == ".tif" || e == ".tiff";
}

Image read_tiff_rgb(const std::string& path) {
  auto tif = open_tiff(path, "r");
  uint32_t w = 0, h = 0;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
  check_size(path, w, h);
  std::vector<uint32_t> raster(static_cast<size_t>(w) * h);
  t_tiff_error.clear();
  if (!TIFFReadRGBAImageOriented(tif.get(), w, h, raster.data(), ORIENTATION_TOPLEFT, 0))
    throw IoError(path + ": cannot decode TIFF" +
                  (t_tiff_error.empty() ? std::string() : " (" + t_tiff_error + ")"));
  Image img(static_cast<int>(h), static_cast<int>(w), 3);
  for (size_t i = 0; i < raster.size(); ++i) {
    img.data[3 * i + 0] = static_cast<uint8_t>(TIFFGetR(raster[i]));
    img.data[3 * i + 1] = static_cast<uint8_t>(TIFFGetG(raster[i]));
    img.data[3 * i + 2] = static_cast<uint8_t>(TIFFGetB(raster[i]));
  }
  return img;
}

LabelMap read_tiff_labels(const std::string& path) {
  auto tif = open_tiff(path, "r");
  uint32_t w = 0, h = 0;
  uint16_t bits = 0, spp = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PLANARCONFIG, &planar);
  check_size(path, w, h);
  if (spp != 1)
    throw IoError(path + ": label TIFF has " + std::to_string(spp) +
                  " channels, expected 1 (an integer label map)");
  if (TIFFIsTiled(tif.get())) throw IoError(path + ": tiled label TIFFs are not supported");
  if (!(bits == 8 || bits == 16 || bits == 32))
    throw IoError(path + ": label TIFF has " + std::to_string(bits) + "-bit samples, expected 8, 16 or 32");
  LabelMap out(static_cast<int>(h), static_cast<int>(w));
  std::vector<uint8_t> line(static_cast<size_t>(TIFFScanlineSize(tif.get())));
  for (uint32_t y = 0; y < h; ++y) {
    if (TIFFReadScanline(tif.get(), line.data(), y, 0) < 0)
      throw IoError(path + ": cannot decode TIFF row " + std::to_string(y) +
                    (t_tiff_error.empty() ? std::string() : " (" + t_tiff_error + ")"));
    int32_t* dst = out.row(static_cast<int>(y));
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t* p = line.data() + x * (bits / 8);
      double v = 0;
      if (bits == 8) v = fmt == SAMPLEFORMAT_INT ? static_cast<int8_t>(*p) : *p;
      else if (bits == 16) {
        uint16_t u; std::memcpy(&u, p, 2);
        v = fmt == SAMPLEFORMAT_INT ? static_cast<int16_t>(u) : u;
      } else {
        uint32_t u; std::memcpy(&u, p, 4);
        if (fmt == SAMPLEFORMAT_IEEEFP) { float f; std::memcpy(&f, p, 4); v = f; }
        else if (fmt == SAMPLEFORMAT_INT) v = static_cast<int32_t>(u);
        else v = u;
      }
      // Range first: casting NaN or 1e30 to an integer to test integrality is undefined behaviour.
      if (!(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) ||
          v != std::floor(v))
        throw IoError(path + ": label value " + std::to_string(v) + " at (" + std::to_string(x) + "," +
                      std::to_string(y) + ") is not a 32-bit integer");
      dst[x] = static_cast<int32_t>(v);
    }
  }
  return out;
}

void write_tiff_labels(const std::string& path, const LabelMap& labels) {
  int32_t lo = 0, hi = 0;
  if (!labels.data.empty()) {
    auto mm = std::minmax_element(labels.data.begin(), labels.data.end());
    lo = *mm.first;
    hi = *mm.second;
  }
  bool narrow = lo >= 0 && hi <= 65535;
  AtomicFile file(path);
  {
    auto tif = open_tiff(file.temp_path(), "w");
    TIFFSetField(tif.get(), TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(labels.width));
    TIFFSetField(tif.get(), TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(labels.height));
    TIFFSetField(tif.get(), TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif.get(), TIFFTAG_BITSPERSAMPLE, narrow ? 16 : 32);
    TIFFSetField(tif.get(), TIFFTAG_SAMPLEFORMAT, narrow ? SAMPLEFORMAT_UINT : SAMPLEFORMAT_INT);
    TIFFSetField(tif.get(), TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif.get(), TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif.get(), TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(tif.get(), TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif.get(), 0));
    std::vector<uint16_t> row16(static_cast<size_t>(labels.width));
    for (int y = 0; y < labels.height; ++y) {
      void* buf = const_cast<int32_t*>(labels.row(y));
      if (narrow) {
        std::transform(labels.row(y), labels.row(y) + labels.width, row16.begin(),
                       [](int32_t v) { return static_cast<uint16_t>(v); });
        buf = row16.data();
      }
      if (TIFFWriteScanline(tif.get(), buf, static_cast<uint32_t>(y), 0) < 0)
        throw IoError(path + ": cannot write TIFF (" + t_tiff_error + ")");
    }
  }
  file.commit();
}

}  // namespace

std::string lower_extension(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

Image read_image(const std::string& path) {
  check_exists(path);
  if (is_tiff(path)) return read_tiff_rgb(path);
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    throw IoError(path + ": cannot decode image (" + e.err + ")");
  }
  if (m.empty()) throw IoError(path + ": cannot decode image (unknown format or corrupt file)");
  check_size(path, m.cols, m.rows);
  if (m.depth() == CV_16U) m.convertTo(m, CV_8U, 1.0 / 257.0);
  else if (m.depth() != CV_8U) throw IoError(path + ": unsupported pixel type (expected 8 or 16 bits)");
  if (m.channels() == 1) cv::cvtColor(m, m, cv::COLOR_GRAY2RGB);
  else if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  else if (m.channels() == 4) cv::cvtColor(m, m, cv::COLOR_BGRA2RGB);
  else throw IoError(path + ": unsupported channel count " + std::to_string(m.channels()));
  Image img(m.rows, m.cols, 3);
  for (int y = 0; y < m.rows; ++y) std::memcpy(img.row(y), m.ptr<uint8_t>(y), static_cast<size_t>(m.cols) * 3);
  return img;
}

void write_image(const std::string& path, const Image& image) {
  if (image.channels != 3 && image.channels != 1)
    throw IoError(path + ": can only write 1- or 3-channel images");
  cv::Mat m(image.height, image.width, image.channels == 3 ? CV_8UC3 : CV_8UC1,
            const_cast<uint8_t*>(image.data.data()));
  cv::Mat bgr;
  if (image.channels == 3) cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  else bgr = m;
  AtomicFile file(path);
  std::vector<int> params;
  auto e = lower_extension(path);
  if (e == ".jpg" || e == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, 95};
  bool ok = false;
  try {
    ok = cv::imwrite(file.temp_path(), bgr, params);
  } catch (const cv::Exception& ex) {
    throw IoError(path + ": cannot write image (" + ex.err + ")");
  }
  if (!ok) throw IoError(path + ": cannot write image (unsupported extension or unwritable folder)");
  file.commit();
}

LabelMap read_label_map(const std::string& path) {
  check_exists(path);
  auto e = lower_extension(path);
  if (e == ".npy") {
    NpyArray a = read_npy(path);
    if (a.kind == 'f') throw IoError(path + ": label .npy holds floats, expected integers");
    bool ok2d = a.shape.size() == 2 || (a.shape.size() == 3 && a.shape[2] == 1);
    if (!ok2d) throw IoError(path + ": label .npy must be H x W (or H x W x 1)");
    check_size(path, a.shape[1], a.shape[0]);
    LabelMap out(static_cast<int>(a.shape[0]), static_cast<int>(a.shape[1]));
    auto v = a.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] < std::numeric_limits<int32_t>::min() || v[i] > std::numeric_limits<int32_t>::max())
        throw IoError(path + ": label value " + std::to_string(v[i]) + " does not fit 32 bits");
      out.data[i] = static_cast<int32_t>(v[i]);
    }
    return out;
  }
  if (is_tiff(path)) return read_tiff_labels(path);
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& ex) {
    throw IoError(path + ": cannot decode label image (" + ex.err + ")");
  }
  if (m.empty()) throw IoError(path + ": cannot decode label image (unknown format or corrupt file)");
  if (m.channels() != 1)
    throw IoError(path + ": label image has " + std::to_string(m.channels()) +
                  " channels, expected a single-channel 8/16-bit label map");
  check_size(path, m.cols, m.rows);
  cv::Mat m32;
  if (m.depth() == CV_8U || m.depth() == CV_16U || m.depth() == CV_16S || m.depth() == CV_32S)
    m.convertTo(m32, CV_32S);
  else
    throw IoError(path + ": label image pixel type is not an integer");
  LabelMap out(m.rows, m.cols);
  for (int y = 0; y < m.rows; ++y) std::memcpy(out.row(y), m32.ptr<int32_t>(y), static_cast<size_t>(m.cols) * 4);
  return out;
}

void write_label_map(const std::string& path, const LabelMap& labels) {
  if (labels.channels != 1) throw IoError(path + ": a label map must have one channel");
  auto e = lower_extension(path);
  if (e == ".npy") {
    write_npy(path, labels.data, {labels.height, labels.width});
    return;
  }
  if (is_tiff(path)) {
    write_tiff_labels(path, labels);
    return;
  }
  if (e != ".png") throw IoError(path + ": label maps are written as .png, .tif or .npy");
  cv::Mat m(labels.height, labels.width, CV_16UC1);
  for (int y = 0; y < labels.height; ++y) {
    const int32_t* src = labels.row(y);
    auto* dst = m.ptr<uint16_t>(y);
    for (int x = 0; x < labels.width; ++x) {
      if (src[x] < 0 || src[x] > 65535)
        throw IoError(path + ": label " + std::to_string(src[x]) +
                      " does not fit a 16-bit PNG; write a .tif instead");
      dst[x] = static_cast<uint16_t>(src[x]);
    }
  }
  AtomicFile file(path);
  if (!cv::imwrite(file.temp_path(), m)) throw IoError(path + ": cannot write label PNG");
  file.commit();
}

}  // namespace nucleisam::io
