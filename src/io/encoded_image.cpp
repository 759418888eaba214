// Structural checks of PNG, JPEG and BMP bytes before decoding (see encoded_image.h).
#include "io/encoded_image.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/limits.h"
#include "nucleisam/log.h"

namespace nucleisam::io {
namespace {

std::atomic<bool> g_accept_damaged{false};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

void check_png(const uint8_t* d, size_t n, const std::string& path) {
  size_t pos = 8;
  bool header = false, data = false;
  while (true) {
    if (n - pos < 12) {
      report_damage(path, "PNG cut short after " + std::to_string(n) + " bytes (no IEND chunk)");
      return;
    }
    const uint32_t len = be32(d + pos);
    const std::string type(reinterpret_cast<const char*>(d + pos + 4), 4);
    if (len > 0x7fffffffu || len > n - pos - 12) {
      report_damage(path, "PNG cut short: chunk " + type + " of " + std::to_string(len) + " bytes runs past the end (" +
                              std::to_string(n) + " bytes)");
      return;
    }
    if (!header) {
      if (type != "IHDR" || len < 13) throw IoError(path + ": not a valid PNG (first chunk is not IHDR)");
      const uint8_t* h = d + pos + 8;
      const uint8_t depth = h[8], colour = h[9];
      const int channels = colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : colour == 3 ? 3 : 1;
      check_declared_size(path, be32(h), be32(h + 4), channels, depth > 8 ? 2 : 1);
      header = true;
    }
    const uint32_t stored = be32(d + pos + 8 + len);
    const uint32_t crc = static_cast<uint32_t>(::crc32(0L, d + pos + 4, len + 4));
    if (crc != stored) report_damage(path, "PNG chunk " + type + " at byte " + std::to_string(pos) + " fails its CRC check");
    data = data || type == "IDAT";
    pos += 12 + len;
    if (type == "IEND") break;
  }
  if (!data) report_damage(path, "PNG has no image data (IDAT chunk)");
}

bool is_sof(uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

void check_jpeg(const uint8_t* d, size_t n, const std::string& path) {
  size_t pos = 2;
  bool frame = false, scan = false;
  const auto cut = [&](const std::string& where) {
    report_damage(path, "JPEG cut short " + where + " (" + std::to_string(n) + " bytes, no end-of-image marker)");
  };
  while (true) {
    while (pos < n && d[pos] == 0xFF && pos + 1 < n && d[pos + 1] == 0xFF) ++pos;  // fill bytes
    if (n - pos < 2) return cut(scan ? "in the scan data" : "in the headers");
    if (d[pos] != 0xFF) return report_damage(path, "JPEG marker expected at byte " + std::to_string(pos));
    const uint8_t m = d[pos + 1];
    pos += 2;
    if (m == 0xD9) {
      if (!scan) report_damage(path, "JPEG ends before any scan data");
      return;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // no length
    if (n - pos < 2) return cut("in a segment header");
    const size_t len = be16(d + pos);
    if (len < 2 || len > n - pos) return cut("in a segment");
    if (is_sof(m)) {
      if (len < 8) throw IoError(path + ": not a valid JPEG (short frame header)");
      const uint8_t* f = d + pos + 2;
      check_declared_size(path, be16(f + 3), be16(f + 1), f[5], f[0] > 8 ? 2 : 1);
      frame = true;
    }
    pos += len;
    if (m == 0xDA) {
      if (!frame) report_damage(path, "JPEG scan before its frame header");
      scan = true;
      // Entropy-coded data: up to the next marker that is not a stuffed 0xFF00 or a restart.
      while (true) {
        const void* ff = std::memchr(d + pos, 0xFF, n - pos);
        if (!ff) return cut("in the scan data");
        pos = static_cast<size_t>(static_cast<const uint8_t*>(ff) - d);
        if (pos + 1 >= n) return cut("in the scan data");
        const uint8_t next = d[pos + 1];
        if (next == 0x00 || (next >= 0xD0 && next <= 0xD7) || next == 0xFF) {
          pos += next == 0xFF ? 1 : 2;
          continue;
        }
        break;
      }
    }
  }
}

void check_bmp(const uint8_t* d, size_t n, const std::string& path) {
  if (n < 54) return report_damage(path, "BMP cut short in its header (" + std::to_string(n) + " bytes)");
  const uint32_t offset = le32(d + 10), header = le32(d + 14);
  if (header < 40) return;  // OS/2 1.x headers: OpenCV checks them itself
  const int64_t width = static_cast<int32_t>(le32(d + 18));
  int64_t height = static_cast<int32_t>(le32(d + 22));
  if (height < 0) height = -height;
  const int bits = le16(d + 28);
  const uint32_t compression = le32(d + 30);
  check_declared_size(path, width, height, bits >= 24 ? bits / 8 : 3, 1);
  if (compression != 0) return;  // RLE: length unknown without decoding
  const int64_t stride = (width * bits + 31) / 32 * 4;
  if (static_cast<int64_t>(offset) + stride * height > static_cast<int64_t>(n))
    report_damage(path, "BMP cut short: pixel data needs " + std::to_string(offset + stride * height) + " bytes, file has " +
                            std::to_string(n));
}

}  // namespace

void set_accept_damaged_images(bool accept) { g_accept_damaged = accept; }
bool accept_damaged_images() { return g_accept_damaged; }

void report_damage(const std::string& path, const std::string& cause) {
  if (g_accept_damaged) {
    log::warn(path, ": damaged image: ", cause, "; reading what can be decoded (--accept-damaged-images)");
    return;
  }
  throw IoError(path + ": damaged image: " + cause + " (--accept-damaged-images reads it anyway)");
}

void check_declared_size(const std::string& path, int64_t width, int64_t height, int64_t channels,
                         int64_t bytes_per_sample) {
  if (width <= 0 || height <= 0) throw IoError(path + ": image has no pixels");
  if (width > limits::kMaxImagePixels || height > limits::kMaxImagePixels ||
      width * height > limits::kMaxImagePixels)
    throw IoError(path + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                  ", over the limit of " + std::to_string(limits::kMaxImagePixels) +
                  " pixels read whole (kMaxImagePixels); use the whole-slide reader for slides");
  const int64_t bytes = width * height * std::max<int64_t>(1, channels) * std::max<int64_t>(1, bytes_per_sample);
  if (bytes > limits::kMaxImageBytes)
    throw IoError(path + ": image is " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                  std::to_string(channels) + " (" + std::to_string(bytes) + " bytes decoded), over the limit of " +
                  std::to_string(limits::kMaxImageBytes) + " bytes (kMaxImageBytes)");
}

void check_encoded_image(const std::string& bytes, const std::string& path) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return check_png(d, n, path);
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return check_jpeg(d, n, path);
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return check_bmp(d, n, path);
  // Anything else would reach whichever of OpenCV's other decoders claims it (JPEG 2000, DICOM
  // through GDCM, OpenEXR, ...): untested code for us, and GDCM aborts the process on a malformed
  // file (fuzz finding image/dicom-magic-gdcm-assert). We read PNG, JPEG and BMP only.
  throw IoError(path + ": cannot decode image (its bytes are not PNG, JPEG or BMP)");
}

}  // namespace nucleisam::io
