// Image and label-map I/O: round trips per format, the shared data's compressions, bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/npy.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;
namespace fs = std::filesystem;

namespace {
Image gradient(int h, int w) {
  Image img(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.at(y, x, 0) = static_cast<uint8_t>(x * 7);
      img.at(y, x, 1) = static_cast<uint8_t>(y * 11);
      img.at(y, x, 2) = static_cast<uint8_t>((x + y) * 3);
    }
  return img;
}
LabelMap labels_with(int32_t big) {
  LabelMap m(5, 7);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) m.at(y, x) = (x + y) % 3 == 0 ? 0 : x + 10 * y;
  m.at(4, 6) = big;
  return m;
}
}  // namespace

TEST(ImageIo, LosslessRoundTripsKeepRgbOrder) {
  test::TempDir dir;
  Image img = gradient(13, 17);
  for (const char* name : {"a.png", "a.tif", "a.bmp"}) {
    write_image(dir.file(name), img);
    Image back = read_image(dir.file(name));
    EXPECT_EQ(back, img) << name;
  }
  // Red really is channel 0: a pure red PNG decodes as (255, 0, 0).
  Image red(2, 2, 3);
  for (size_t i = 0; i < 4; ++i) red.data[3 * i] = 255;
  write_image(dir.file("red.png"), red);
  EXPECT_EQ(read_image(dir.file("red.png")).at(1, 1, 0), 255);
  EXPECT_EQ(read_image(dir.file("red.png")).at(1, 1, 2), 0);
}

TEST(ImageIo, JpegRoundTripIsClose) {
  test::TempDir dir;
  Image img = gradient(32, 32);
  write_image(dir.file("a.jpg"), img);
  Image back = read_image(dir.file("a.jpg"));
  ASSERT_TRUE(back.same_size(img));
  double err = 0;
  for (size_t i = 0; i < img.data.size(); ++i) err += std::abs(int(img.data[i]) - int(back.data[i]));
  EXPECT_LT(err / img.data.size(), 6.0);
}

TEST(ImageIo, LabelMapRoundTrips) {
  test::TempDir dir;
  LabelMap small = labels_with(65535);
  for (const char* name : {"l.png", "l.tif", "l.npy"}) {
    write_label_map(dir.file(name), small);
    EXPECT_EQ(read_label_map(dir.file(name)), small) << name;
  }
  LabelMap big = labels_with(1 << 20);  // needs 32 bits
  write_label_map(dir.file("big.tif"), big);
  EXPECT_EQ(read_label_map(dir.file("big.tif")), big);
  write_label_map(dir.file("big.npy"), big);
  EXPECT_EQ(read_label_map(dir.file("big.npy")), big);
  // A 16-bit PNG cannot hold it: clear error, and no file left behind.
  EXPECT_THROW(write_label_map(dir.file("big.png"), big), IoError);
  EXPECT_FALSE(fs::exists(dir.file("big.png")));
}

TEST(ImageIo, BadInputsNameFileAndCause) {
  test::TempDir dir;
  auto expect_error = [](const std::string& path, const std::string& cause, bool labels) {
    try {
      if (labels) read_label_map(path);
      else read_image(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const IoError& e) {
      std::string m = e.what();
      EXPECT_EQ(m.rfind(path, 0), 0u) << m;
      EXPECT_NE(m.find(cause), std::string::npos) << m;
    }
  };
  expect_error(dir.file("missing.png"), "no such file", false);
  expect_error(dir.path(), "is a folder", false);
  write_file_atomic(dir.file("corrupt.png"), "\x89PNG\r\n\x1a\n garbage");
  expect_error(dir.file("corrupt.png"), "damaged image: PNG cut short", false);
  write_file_atomic(dir.file("corrupt.tif"), "II*\0garbage-garbage");
  expect_error(dir.file("corrupt.tif"), "TIFF", false);
  // Formats OpenCV could decode but we do not take (GIF, DICOM, JPEG 2000): refused before it sees them.
  write_file_atomic(dir.file("gif.png"), "GIF89a\x01\x00\x01\x00\x00\x00\x00;");
  expect_error(dir.file("gif.png"), "not PNG, JPEG or BMP", false);
  write_file_atomic(dir.file("dicom.png"), std::string(128, '\0') + "DICM");
  expect_error(dir.file("dicom.png"), "not PNG, JPEG or BMP", true);
  write_file_atomic(dir.file("j2k.jpg"), std::string("\x00\x00\x00\x0cjP  \r\n\x87\n", 12));
  expect_error(dir.file("j2k.jpg"), "not PNG, JPEG or BMP", false);
  write_image(dir.file("rgb.png"), gradient(4, 4));
  expect_error(dir.file("rgb.png"), "channels", true);
  std::vector<float> f(4, 1.0f);
  write_npy(dir.file("float.npy"), f, {2, 2});
  expect_error(dir.file("float.npy"), "floats", true);
}

TEST(ImageIo, SharedDataCompressions) {
  NUCLEISAM_REQUIRE_SHARED("data/smoke");
  NUCLEISAM_REQUIRE_SHARED("data/monuseg");
  // JPEG-compressed TIFF strips.
  Image he = read_image(test::shared_path("data/smoke/instanseg_HE_example.tif"));
  EXPECT_EQ(he.width, 1380);
  EXPECT_EQ(he.height, 1484);
  // LZW TIFF (training) and deflate+predictor TIFF (test).
  Image lzw = read_image(test::shared_path("data/monuseg/train/images/TCGA-A7-A13E-01Z-00-DX1.tif"));
  EXPECT_EQ(lzw.width, 1000);
  Image deflate = read_image(test::shared_path("data/monuseg/test/images/TCGA-2Z-A9J9-01A-01-TS1.tif"));
  EXPECT_EQ(deflate.height, 1000);
  // The SAM fixture's image.png is the top-left 512x384 crop of that test tile, read by OpenCV.
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny/image.png");
  Image crop = read_image(test::shared_path("fixtures/sam/vit_tiny/image.png"));
  ASSERT_EQ(crop.width, 512);
  for (int y = 0; y < 384; y += 37)
    for (int x = 0; x < 512; x += 41)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(crop.at(y, x, c), deflate.at(y, x, c)) << y << ',' << x;
  // 16-bit instance labels: as many labels as nuclei.
  LabelMap lab = read_label_map(test::shared_path("data/monuseg/train/instance_labels/TCGA-A7-A13E-01Z-00-DX1_label.png"));
  int32_t mx = 0;
  for (auto v : lab.data) mx = std::max(mx, v);
  EXPECT_EQ(mx, 314);
}

TEST(ImageIo, ResolutionRecordedInTheFile) {
  test::TempDir dir;
  // PNG pHYs: 2,000,000 pixels per metre = 0.5 um/px; 4,000,000 x 2,000,000 = mean of 0.25 and 0.5.
  write_image(dir.file("a.png"), gradient(6, 5));
  const std::string png = read_file(dir.file("a.png"));
  EXPECT_EQ(read_image_mpp(dir.file("a.png")), 0.0);  // OpenCV writes no pHYs
  write_file_atomic(dir.file("half.png"), test::png_with_phys(png, 2000000, 2000000, 1));
  EXPECT_DOUBLE_EQ(read_image_mpp(dir.file("half.png")), 0.5);
  EXPECT_EQ(read_image(dir.file("half.png")), read_image(dir.file("a.png")));  // the CRC is right: still readable
  write_file_atomic(dir.file("oblong.png"), test::png_with_phys(png, 4000000, 2000000, 1));
  EXPECT_DOUBLE_EQ(read_image_mpp(dir.file("oblong.png")), 0.375);
  // 72 dpi (2835 per metre: 353 um/px) and an aspect-ratio-only chunk are no microscope resolution.
  write_file_atomic(dir.file("dpi.png"), test::png_with_phys(png, 2835, 2835, 1));
  EXPECT_EQ(read_image_mpp(dir.file("dpi.png")), 0.0);
  write_file_atomic(dir.file("aspect.png"), test::png_with_phys(png, 2000000, 2000000, 0));
  EXPECT_EQ(read_image_mpp(dir.file("aspect.png")), 0.0);
  // TIFF: a label map written with its resolution reads back (pixels per centimetre, float).
  LabelMap labels(4, 3);
  write_label_map(dir.file("l.tif"), labels, 0.25);
  EXPECT_NEAR(read_image_mpp(dir.file("l.tif")), 0.25, 1e-6);
  write_label_map(dir.file("plain.tif"), labels);
  EXPECT_EQ(read_image_mpp(dir.file("plain.tif")), 0.0);
  write_image(dir.file("i.tif"), gradient(6, 5));
  EXPECT_EQ(read_image_mpp(dir.file("i.tif")), 0.0);
  // JPEG, a missing file, a file that is not an image: nothing recorded.
  write_image(dir.file("j.jpg"), gradient(6, 5));
  EXPECT_EQ(read_image_mpp(dir.file("j.jpg")), 0.0);
  EXPECT_EQ(read_image_mpp(dir.file("missing.tif")), 0.0);
  write_file_atomic(dir.file("junk.tif"), "not a tiff");
  EXPECT_EQ(read_image_mpp(dir.file("junk.tif")), 0.0);
}

TEST(ImageIo, ResolutionOfABioFormatsExport) {
  // The InstanSeg example (an OME-TIFF written by Bio-Formats from a Hamamatsu scan): OME-XML
  // PhysicalSizeX = PhysicalSizeY = 0.5000799214486333 um, and the same as 19996.803 pixels per cm.
  const std::string smoke = "data/smoke/instanseg_HE_example.tif";
  if (!test::shared_exists(smoke)) GTEST_SKIP() << "../shared/" << smoke << " not found";
  EXPECT_NEAR(read_image_mpp(test::shared_path(smoke)), 0.5000799214486333, 1e-12);
  // MoNuSeg's test tiles record resolution unit "none": nothing.
  const std::string monuseg = "data/monuseg/test/images/TCGA-2Z-A9J9-01A-01-TS1.tif";
  if (test::shared_exists(monuseg)) {
    EXPECT_EQ(read_image_mpp(test::shared_path(monuseg)), 0.0);
  }
}
