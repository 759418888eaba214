// Damaged and hostile image files, made by hand in the test: a JPEG or PNG cut short, a PNG chunk
// with a flipped byte (CRC), a TIFF whose strip data is cut off are refused with an error naming
// the file ("damaged image"), unless --accept-damaged-images (set_accept_damaged_images) is on;
// headers declaring absurd sizes, .npy shapes over the tensor limit and JSON nested too deeply
// are refused before anything is allocated.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/geojson.h"
#include "nucleisam/limits.h"
#include "nucleisam/npy.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;

namespace {

// Noise-like content so that the encoded file is large and its scan data spans most of it.
Image busy(int h, int w) {
  Image img(h, w, 3);
  uint32_t s = 12345;
  for (auto& v : img.data) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  return img;
}

// Writes `bytes` to dir/name and returns the path.
std::string put(const test::TempDir& dir, const std::string& name, const std::string& bytes) {
  write_file_atomic(dir.file(name), bytes);
  return dir.file(name);
}

// Expects read_image(path) to throw IoError naming the path and containing `cause`; then the
// same file is read with damaged images accepted (when `readable_when_accepted`: OpenCV's PNG and
// BMP decoders give nothing at all for a file cut short, libjpeg and libtiff keep what decodes).
void expect_damaged(const std::string& path, const std::string& cause, bool readable_when_accepted = true) {
  try {
    read_image(path);
    ADD_FAILURE() << path << ": read as if whole";
  } catch (const IoError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(path + ": damaged image: ", 0), 0u) << what;
    EXPECT_NE(what.find(cause), std::string::npos) << what;
    EXPECT_NE(what.find("--accept-damaged-images"), std::string::npos) << what;
  }
  if (!readable_when_accepted) return;
  set_accept_damaged_images(true);
  EXPECT_NO_THROW(read_image(path)) << path;
  set_accept_damaged_images(false);
}

void put16le(std::string& s, uint16_t v) { s.append({static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}); }
void put32le(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// An uncompressed 8-bit RGB TIFF, one strip, its directory before the pixels (so a cut keeps the
// header and loses pixels, as a copy interrupted mid-file does).
std::string strip_tiff(uint32_t w, uint32_t h) {
  std::string t = "II";
  put16le(t, 42);
  put32le(t, 8);
  const uint16_t entries = 9;
  const uint32_t bps_at = 8 + 2 + entries * 12 + 4, data_at = bps_at + 6;
  put16le(t, entries);
  auto entry = [&](uint16_t tag, uint16_t type, uint32_t count, uint32_t value) {
    put16le(t, tag);
    put16le(t, type);
    put32le(t, count);
    put32le(t, value);
  };
  entry(256, 4, 1, w);                  // ImageWidth
  entry(257, 4, 1, h);                  // ImageLength
  entry(258, 3, 3, bps_at);             // BitsPerSample 8,8,8
  entry(259, 3, 1, 1);                  // Compression none
  entry(262, 3, 1, 2);                  // Photometric RGB
  entry(273, 4, 1, data_at);            // StripOffsets
  entry(277, 3, 1, 3);                  // SamplesPerPixel
  entry(278, 4, 1, h);                  // RowsPerStrip
  entry(279, 4, 1, w * h * 3);          // StripByteCounts
  put32le(t, 0);                        // no next directory
  put16le(t, 8);
  put16le(t, 8);
  put16le(t, 8);
  for (uint32_t i = 0; i < w * h * 3; ++i) t.push_back(static_cast<char>(i * 7));
  return t;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(DamagedImage, JpegCutShortIsRefused) {
  test::TempDir dir;
  write_image(dir.file("whole.jpg"), busy(96, 128));
  const std::string whole = read_file(dir.file("whole.jpg"));
  ASSERT_GT(whole.size(), 6000u);
  EXPECT_NO_THROW(read_image(dir.file("whole.jpg")));
  expect_damaged(put(dir, "cut.jpg", whole.substr(0, 3000)), "JPEG cut short");
  // Cut inside the headers: nothing to decode even when accepted.
  expect_damaged(put(dir, "head.jpg", whole.substr(0, 40)), "JPEG cut short", false);
  // Trailing bytes after the end-of-image marker are harmless.
  EXPECT_NO_THROW(read_image(put(dir, "tail.jpg", whole + "trailing")));
}

TEST(DamagedImage, PngCutShortOrFailingItsCrcIsRefused) {
  test::TempDir dir;
  write_image(dir.file("whole.png"), busy(64, 64));
  const std::string whole = read_file(dir.file("whole.png"));
  EXPECT_NO_THROW(read_image(dir.file("whole.png")));
  expect_damaged(put(dir, "cut.png", whole.substr(0, whole.size() / 2)), "PNG cut short", false);
  expect_damaged(put(dir, "noend.png", whole.substr(0, whole.size() - 12)), "no IEND", false);
  std::string flipped = whole;
  flipped[whole.size() / 2] ^= 0x01;  // a byte inside the IDAT data
  expect_damaged(put(dir, "crc.png", flipped), "fails its CRC check", false);
  // Label maps go through the same checks.
  LabelMap labels(20, 30);
  for (size_t i = 0; i < labels.data.size(); ++i) labels.data[i] = static_cast<int32_t>(i % 300);
  write_label_map(dir.file("labels.png"), labels);
  const std::string lp = read_file(dir.file("labels.png"));
  const std::string cut = put(dir, "labels_cut.png", lp.substr(0, lp.size() - 20));
  EXPECT_NE(error_of([&] { read_label_map(cut); }).find(cut + ": damaged image: PNG"), std::string::npos);
}

TEST(DamagedImage, TiffWithItsStripCutOffIsRefused) {
  test::TempDir dir;
  const std::string whole = strip_tiff(40, 30);
  const Image img = read_image(put(dir, "whole.tif", whole));
  EXPECT_EQ(img.width, 40);
  EXPECT_EQ(img.at(0, 1, 0), 3 * 7);
  expect_damaged(put(dir, "cut.tif", whole.substr(0, whole.size() - 1000)), "TIFF");
}

TEST(DamagedImage, BmpCutShortIsRefused) {
  test::TempDir dir;
  write_image(dir.file("whole.bmp"), busy(30, 40));
  const std::string whole = read_file(dir.file("whole.bmp"));
  EXPECT_NO_THROW(read_image(dir.file("whole.bmp")));
  expect_damaged(put(dir, "cut.bmp", whole.substr(0, whole.size() - 500)), "BMP cut short", false);
}

// Headers declaring huge images: refused from the header, naming the limit.
TEST(ResourceLimits, AbsurdImageDimensionsAreRefusedFromTheHeader) {
  test::TempDir dir;
  // PNG: signature + IHDR of 100000 x 100000 RGBA (CRC left zero: the size is checked first).
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\0\0\0\x0dIHDR", 8);
  png += std::string("\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x06\x00\x00\x00", 13);
  png += std::string(4, '\0');
  const std::string p = put(dir, "huge.png", png);
  std::string e = error_of([&] { read_image(p); });
  EXPECT_EQ(e.rfind(p + ": image is 100000x100000", 0), 0u) << e;
  EXPECT_NE(e.find("kMaxImagePixels"), std::string::npos) << e;
  // JPEG: SOI + SOF0 of 60000 x 60000, 3 components.
  std::string jpg("\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03", 12);
  jpg += std::string(9, '\x11');
  const std::string j = put(dir, "huge.jpg", jpg);
  e = error_of([&] { read_image(j); });
  EXPECT_NE(e.find(j + ": image is 60000x60000"), std::string::npos) << e;
  // 30000 x 30000 is under the pixel limit, but x 4 channels x 2 bytes is over the byte limit.
  std::string png16 = png;
  const char dims[] = "\x00\x00\x75\x30\x00\x00\x75\x30\x10\x06";
  std::memcpy(&png16[16], dims, 10);
  const std::string p16 = put(dir, "deep.png", png16);
  e = error_of([&] { read_image(p16); });
  EXPECT_NE(e.find("kMaxImageBytes"), std::string::npos) << e;
  // TIFF: the strip TIFF's width patched to 2^20 x 30 rows... and height to 2^20.
  std::string tif = strip_tiff(4, 4);
  put32le(tif, 0);
  const uint32_t big = 1u << 20;
  std::memcpy(&tif[8 + 2 + 8], &big, 4);
  std::memcpy(&tif[8 + 2 + 12 + 8], &big, 4);
  const std::string t = put(dir, "huge.tif", tif);
  e = error_of([&] { read_image(t); });
  EXPECT_NE(e.find("kMaxImagePixels"), std::string::npos) << e;
}

TEST(ResourceLimits, TiffDeclaringMorePixelsThanItsDataHoldsIsRefusedBeforeAllocating) {
  test::TempDir dir;
  // A fuzzing finding: 4 rows of 218 million pixels (under the pixel limit) in a 384-byte file
  // made read_image allocate 3.5 GB before reading a strip. Here: 4 x 4 pixels of data, declared
  // 200,000,000 x 4, uncompressed: damage (the strip is far too short), seen before allocating.
  std::string tif = strip_tiff(4, 4);
  const uint32_t wide = 200'000'000;
  std::memcpy(&tif[8 + 2 + 8], &wide, 4);
  const std::string t = put(dir, "wide.tif", tif);
  std::string e = error_of([&] { read_image(t); });
  // (libtiff may chop the single strip into several; the bytes counted are what the strips hold.)
  EXPECT_EQ(e.rfind(t + ": damaged image: TIFF holds ", 0), 0u) << e;
  EXPECT_NE(e.find(" bytes of image data; its 200000000 x 4 pixels need 2400000000"),
            std::string::npos)
      << e;
  // The same declared as deflate-compressed: more than 16384 times expansion.
  const uint16_t deflate = 8;
  std::memcpy(&tif[8 + 2 + 3 * 12 + 8], &deflate, 2);
  const std::string z = put(dir, "wide-deflate.tif", tif);
  e = error_of([&] { read_image(z); });
  EXPECT_EQ(e.rfind(z + ": TIFF declares 200000000 x 4 pixels from only ", 0), 0u) << e;
  EXPECT_NE(e.find(" bytes of compressed image data (more than 16384 times expansion"),
            std::string::npos)
      << e;
  // Uncompressed files whose strips hold their pixels still read.
  const std::string ok = put(dir, "ok.tif", strip_tiff(4, 4));
  EXPECT_EQ(read_image(ok).width, 4);
}

TEST(ResourceLimits, NpyShapesOverTheTensorLimitAreRefused) {
  test::TempDir dir;
  auto npy = [](const std::string& shape) {
    std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (" + shape + "), }";
    header.append(64 - (10 + header.size() + 1) % 64, ' ');
    header.push_back('\n');
    std::string out = "\x93NUMPY\x01";
    out.push_back('\0');
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>(header.size() >> 8));
    return out + header + std::string(64, '\0');
  };
  for (const char* shape : {"100000, 100000, 100000", "999999999999999999, 999999999999999999"}) {
    const std::string p = put(dir, "big.npy", npy(shape));
    const std::string e = error_of([&] { read_label_map(p); });
    EXPECT_EQ(e.rfind(p + ": .npy shape", 0), 0u) << e;
    EXPECT_NE(e.find("kMaxTensorBytes"), std::string::npos) << e;
  }
  // A plausible shape larger than the file is the truncation error it always was.
  const std::string p = put(dir, "short.npy", npy("100, 100"));
  EXPECT_NE(error_of([&] { read_label_map(p); }).find("truncated .npy data"), std::string::npos);
}

TEST(ResourceLimits, DeeplyNestedJsonIsRefusedBeforeParsing) {
  test::TempDir dir;
  const int depth = limits::kMaxJsonDepth + 1;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  const std::string p = put(dir, "deep.geojson", deep);
  const std::string e = error_of([&] { read_geojson_polygons(p); });
  EXPECT_EQ(e.rfind(p + ": JSON nests deeper than", 0), 0u) << e;
  EXPECT_NE(e.find("kMaxJsonDepth"), std::string::npos) << e;
  // At the limit, and brackets inside strings, are fine.
  EXPECT_NO_THROW(limits::check_json_depth(std::string(depth - 1, '[') + std::string(depth - 1, ']'), "x"));
  EXPECT_NO_THROW(limits::check_json_depth("{\"a\": \"" + std::string(500, '[') + "\\\"[\"}", "x"));
  EXPECT_THROW(limits::check_json_depth(std::string(100000, '{'), "x"), IoError);
}
