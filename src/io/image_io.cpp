// Tile image and label-map I/O: OpenCV for PNG/JPEG, libtiff for TIFF (so LZW, JPEG-in-TIFF and
// 32-bit labels behave the same everywhere), our own .npy code for arrays.
#include "nucleisam/image_io.h"

#include <tiffio.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/npy.h"
#include "io/encoded_image.h"

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

// PNG, JPEG or BMP bytes, checked (size limits, damage) before OpenCV decodes them; OpenCV's own
// pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS, 2^30 by default) is the same as ours.
cv::Mat decode_checked(const std::string& path, int flags, const char* what) {
  const std::string bytes = read_file(path);
  check_encoded_image(bytes, path);
  cv::Mat m;
  try {
    m = cv::imdecode(cv::Mat(1, static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX)), CV_8U,
                             const_cast<char*>(bytes.data())),
                     flags);
  } catch (const cv::Exception& e) {
    throw IoError(path + ": cannot decode " + what + " (" + e.err + ")");
  }
  if (m.empty()) throw IoError(path + ": cannot decode " + what + " (unknown format or corrupt file)");
  return m;
}

// Encodes with OpenCV in memory and writes through write_file_atomic, so a full disk or a
// read-only folder gives its cause (errno) and never a partial file.
void encode_and_write(const std::string& path, const cv::Mat& m, const std::vector<int>& params, const char* what) {
  std::vector<uchar> buf;
  bool ok = false;
  try {
    ok = cv::imencode(lower_extension(path), m, buf, params);
  } catch (const cv::Exception& ex) {
    throw IoError(path + ": cannot encode " + what + " (" + ex.err + ")");
  }
  if (!ok) throw IoError(path + ": cannot encode " + what + " (unsupported extension)");
  write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

// A libtiff error during decoding means lost pixels: damage (refused unless accepted).
void tiff_decode_failed(const std::string& path, const std::string& where) {
  report_damage(path, "TIFF " + where + " does not decode" +
                          (t_tiff_error.empty() ? std::string() : " (" + t_tiff_error + ")"));
}

bool is_tiff(const std::string& path) {
  auto e = lower_extension(path);
  return e == ".tif" || e == ".tiff";
}

// Refuses, before the raster is allocated, a TIFF that declares far more pixels than its image
// data can hold: uncompressed strips or tiles shorter than their pixels (damage: a cut file or
// lying byte counts), or compressed data that would have to expand more than kMaxTiffExpansion
// times. Real codecs stay far below it (deflate cannot pass 1032:1, LZW about 2,700:1); a 384-byte
// file declaring some 870 million pixels (a fuzzing finding) would otherwise allocate 3.5 GB first.
constexpr uint64_t kMaxTiffExpansion = 16384;
constexpr uint64_t kSmallTiffBytes = uint64_t{64} << 20;  // images up to this size are not checked
void check_tiff_data_amount(TIFF* tif, const std::string& path, uint64_t width, uint64_t height) {
  uint16_t compression = COMPRESSION_NONE, bits = 8, spp = 1;
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  const bool tiled = TIFFIsTiled(tif);
  std::error_code ec;
  const uint64_t file = std::filesystem::file_size(path, ec);
  if (ec) return;
  // Every strip or tile needs its offset and byte count in the file (4 bytes each at least): more
  // pieces than that is a forged header, refused before libtiff loads (allocates) the arrays.
  const uint64_t pieces = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
  if (pieces > file / 8 + 1)
    throw IoError(path + ": TIFF declares " + std::to_string(pieces) + (tiled ? " tiles" : " strips") + " in a file of " +
                  std::to_string(file) + " bytes (damaged or forged)");
  uint64_t stored = file;  // bytes of image data the file can really hold (all of it, without counts)
  uint64_t* counts = nullptr;
  if (TIFFGetField(tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) && counts) {
    stored = 0;
    for (uint64_t i = 0; i < pieces; ++i) stored += std::min<uint64_t>(counts[i], file);
  }
  const uint64_t decoded = (width * std::max<uint64_t>(spp, 1) * std::max<uint64_t>(bits, 1) + 7) / 8 * height;
  if (compression == COMPRESSION_NONE) {
    if (stored < decoded)
      report_damage(path, "TIFF holds " + std::to_string(stored) + " bytes of image data; its " +
                              std::to_string(width) + " x " + std::to_string(height) + " pixels need " +
                              std::to_string(decoded));
  } else if (decoded > kSmallTiffBytes && decoded / kMaxTiffExpansion > stored) {
    throw IoError(path + ": TIFF declares " + std::to_string(width) + " x " + std::to_string(height) +
                  " pixels from only " + std::to_string(stored) + " bytes of compressed image data (more than " +
                  std::to_string(kMaxTiffExpansion) + " times expansion; damaged or forged)");
  }
}

Image read_tiff_rgb(const std::string& path) {
  auto tif = open_tiff(path, "r");
  uint32_t w = 0, h = 0;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
  check_declared_size(path, w, h, 4, 1);  // decoded as RGBA
  check_tiff_data_amount(tif.get(), path, w, h);
  std::vector<uint32_t> raster(static_cast<size_t>(w) * h);
  t_tiff_error.clear();
  char message[1024] = "";
  if (!TIFFRGBAImageOK(tif.get(), message)) throw IoError(path + ": cannot decode TIFF (" + message + ")");
  // Stop at the first strip or tile that fails (a cut file); with --accept-damaged-images go on
  // and keep what decodes.
  const bool ok = TIFFReadRGBAImageOriented(tif.get(), w, h, raster.data(), ORIENTATION_TOPLEFT,
                                            accept_damaged_images() ? 0 : 1);
  if (!ok || !t_tiff_error.empty()) tiff_decode_failed(path, "image data");
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
  check_declared_size(path, w, h, spp, 4);  // decoded to 32-bit labels
  check_tiff_data_amount(tif.get(), path, w, h);
  if (spp != 1)
    throw IoError(path + ": label TIFF has " + std::to_string(spp) +
                  " channels, expected 1 (an integer label map)");
  if (TIFFIsTiled(tif.get())) throw IoError(path + ": tiled label TIFFs are not supported");
  if (!(bits == 8 || bits == 16 || bits == 32))
    throw IoError(path + ": label TIFF has " + std::to_string(bits) + "-bit samples, expected 8, 16 or 32");
  LabelMap out(static_cast<int>(h), static_cast<int>(w));
  std::vector<uint8_t> line(static_cast<size_t>(TIFFScanlineSize(tif.get())));
  t_tiff_error.clear();
  for (uint32_t y = 0; y < h; ++y) {
    if (TIFFReadScanline(tif.get(), line.data(), y, 0) < 0 || !t_tiff_error.empty()) {
      tiff_decode_failed(path, "row " + std::to_string(y));
      std::fill(line.begin(), line.end(), uint8_t{0});  // accepted: a lost row is background
      t_tiff_error.clear();
    }
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

void write_tiff_labels(const std::string& path, const LabelMap& labels, double mpp) {
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
    if (mpp > 0) {
      TIFFSetField(tif.get(), TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
      TIFFSetField(tif.get(), TIFFTAG_XRESOLUTION, static_cast<float>(1e4 / mpp));
      TIFFSetField(tif.get(), TIFFTAG_YRESOLUTION, static_cast<float>(1e4 / mpp));
    }
    std::vector<uint16_t> row16(static_cast<size_t>(labels.width));
    for (int y = 0; y < labels.height; ++y) {
      void* buf = const_cast<int32_t*>(labels.row(y));
      if (narrow) {
        std::transform(labels.row(y), labels.row(y) + labels.width, row16.begin(),
                       [](int32_t v) { return static_cast<uint16_t>(v); });
        buf = row16.data();
      }
      if (TIFFWriteScanline(tif.get(), buf, static_cast<uint32_t>(y), 0) < 0)
        throw IoError(path + ": cannot write TIFF (" + std::strerror(errno) + "; " + t_tiff_error + ")");
    }
    // The last strip is written here: a full disk shows now, not silently at close.
    if (!TIFFFlush(tif.get())) throw IoError(path + ": cannot write TIFF (" + std::strerror(errno) + ")");
  }
  file.commit();
}

// A plausible microscope resolution (um/px), else 0.
double plausible_mpp(double mpp) { return mpp >= 0.02 && mpp <= 20 ? mpp : 0; }

// The value of attribute `name` ("PhysicalSizeX") in an OME-XML text; "" when absent.
std::string xml_attribute(const std::string& xml, const std::string& name) {
  const std::string key = " " + name + "=\"";
  const size_t at = xml.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size(), end = xml.find('"', start);
  return end == std::string::npos ? "" : xml.substr(start, end - start);
}

// Microns per unit of an OME length unit; 0 for one we do not know.
double microns_per_ome_unit(const std::string& unit) {
  // OME's default is the micrometre: "µm" (micro sign or Greek mu), "um", or the micro sign as an
  // XML character reference.
  if (unit.empty() || unit == "\xC2\xB5m" || unit == "\xCE\xBCm" || unit == "um" || unit == "&#181;m" ||
      unit == "&#xB5;m" || unit == "&#xb5;m")
    return 1;
  if (unit == "nm") return 1e-3;
  if (unit == "mm") return 1e3;
  if (unit == "cm") return 1e4;
  if (unit == "m") return 1e6;
  return 0;
}

double ome_mpp(const std::string& description) {
  if (description.find("<OME") == std::string::npos) return 0;
  double sum = 0;
  for (const char* axis : {"X", "Y"}) {
    const std::string size = xml_attribute(description, std::string("PhysicalSize") + axis);
    const double unit = microns_per_ome_unit(xml_attribute(description, std::string("PhysicalSize") + axis + "Unit"));
    char* end = nullptr;
    const double v = size.empty() ? 0 : std::strtod(size.c_str(), &end);
    if (size.empty() || end != size.c_str() + size.size() || !(v > 0) || unit == 0) return 0;
    sum += v * unit;
  }
  return sum / 2;
}

double tiff_mpp(const std::string& path) {
  TiffPtr tif;
  try {
    tif = open_tiff(path, "r");
  } catch (const IoError&) {
    return 0;  // read_image says why
  }
  char* description = nullptr;
  if (TIFFGetField(tif.get(), TIFFTAG_IMAGEDESCRIPTION, &description) && description)
    if (const double mpp = plausible_mpp(ome_mpp(description)); mpp > 0) return mpp;
  uint16_t unit = RESUNIT_NONE;
  float xres = 0, yres = 0;
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_RESOLUTIONUNIT, &unit);
  if (!TIFFGetField(tif.get(), TIFFTAG_XRESOLUTION, &xres) || !TIFFGetField(tif.get(), TIFFTAG_YRESOLUTION, &yres))
    return 0;
  const double microns_per_unit = unit == RESUNIT_CENTIMETER ? 1e4 : unit == RESUNIT_INCH ? 25400 : 0;
  if (microns_per_unit == 0 || !(xres > 0) || !(yres > 0)) return 0;
  return plausible_mpp(0.5 * (microns_per_unit / xres + microns_per_unit / yres));
}

uint32_t big_endian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The pHYs chunk of a PNG (it must come before the image data).
double png_mpp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char head[8];
  if (!f.read(reinterpret_cast<char*>(head), 8) || std::memcmp(head, "\x89PNG\r\n\x1a\n", 8) != 0) return 0;
  for (int chunks = 0; chunks < 64; ++chunks) {
    unsigned char h[8];
    if (!f.read(reinterpret_cast<char*>(h), 8)) return 0;
    const uint32_t length = big_endian32(h);
    const std::string type(reinterpret_cast<char*>(h) + 4, 4);
    if (type == "IDAT" || type == "IEND") return 0;
    if (type == "pHYs" && length == 9) {
      unsigned char d[9];
      if (!f.read(reinterpret_cast<char*>(d), 9)) return 0;
      const uint32_t x = big_endian32(d), y = big_endian32(d + 4);
      if (d[8] != 1 || x == 0 || y == 0) return 0;  // unit 1: the metre; 0: aspect ratio only
      return plausible_mpp(0.5 * (1e6 / x + 1e6 / y));
    }
    if (!f.seekg(static_cast<std::streamoff>(length) + 4, std::ios::cur)) return 0;  // data + CRC
  }
  return 0;
}

}  // namespace

double read_image_mpp(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return 0;
  if (is_tiff(path)) return tiff_mpp(path);
  if (lower_extension(path) == ".png") return png_mpp(path);
  return 0;
}

std::string lower_extension(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

Image read_image(const std::string& path) {
  check_exists(path);
  if (is_tiff(path)) return read_tiff_rgb(path);
  cv::Mat m = decode_checked(path, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR, "image");
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
  std::vector<int> params;
  auto e = lower_extension(path);
  if (e == ".jpg" || e == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, 95};
  encode_and_write(path, bgr, params, "image");
}

LabelMap read_label_map(const std::string& path) {
  check_exists(path);
  auto e = lower_extension(path);
  if (e == ".npy") {
    NpyArray a = read_npy(path);
    if (a.kind == 'f') throw IoError(path + ": label .npy holds floats, expected integers");
    bool ok2d = a.shape.size() == 2 || (a.shape.size() == 3 && a.shape[2] == 1);
    if (!ok2d) throw IoError(path + ": label .npy must be H x W (or H x W x 1)");
    check_declared_size(path, a.shape[1], a.shape[0], 1, 4);
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
  cv::Mat m = decode_checked(path, cv::IMREAD_UNCHANGED, "label image");
  if (m.channels() != 1)
    throw IoError(path + ": label image has " + std::to_string(m.channels()) +
                  " channels, expected a single-channel 8/16-bit label map");
  cv::Mat m32;
  if (m.depth() == CV_8U || m.depth() == CV_16U || m.depth() == CV_16S || m.depth() == CV_32S)
    m.convertTo(m32, CV_32S);
  else
    throw IoError(path + ": label image pixel type is not an integer");
  LabelMap out(m.rows, m.cols);
  for (int y = 0; y < m.rows; ++y) std::memcpy(out.row(y), m32.ptr<int32_t>(y), static_cast<size_t>(m.cols) * 4);
  return out;
}

void write_label_map(const std::string& path, const LabelMap& labels, double mpp) {
  if (labels.channels != 1) throw IoError(path + ": a label map must have one channel");
  auto e = lower_extension(path);
  if (e == ".npy") {
    write_npy(path, labels.data, {labels.height, labels.width});
    return;
  }
  if (is_tiff(path)) {
    write_tiff_labels(path, labels, mpp);
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
  encode_and_write(path, m, {}, "label PNG");
}

}  // namespace nucleisam::io
