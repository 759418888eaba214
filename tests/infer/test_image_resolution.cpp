// Images at another resolution than the method's: the processing grid (hand-computed factors and
// snapping), nearest-centre label resampling (hand-computed picks), instances that vanish, and the
// whole round trip through a segmenter that thresholds what it is given.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "nucleisam/errors.h"
#include "nucleisam/infer/image_resolution.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

// Instance 1 = the pixels whose red channel is above 128; remembers the size it was given.
struct BrightSegmenter : Segmenter {
  double mpp = 0.25;
  int seen_width = 0, seen_height = 0, calls = 0;
  std::string name() const override { return "bright"; }
  double microns_per_pixel() const override { return mpp; }
  Segmentation segment(const Image& image, const std::string&) override {
    ++calls;
    seen_width = image.width;
    seen_height = image.height;
    Segmentation s;
    s.instances = LabelMap(image.height, image.width);
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x) s.instances.at(y, x) = image.at(y, x, 0) > 128 ? 1 : 0;
    s.classes = {2};
    s.scores = {0.75f};
    s.class_names = {"", "a", "b"};
    return s;
  }
};

}  // namespace

TEST(ImageResolution, PlanSnapsNearWholeFactors) {
  ImageScale s = plan_image_scale(1000, 600, 0.5, 0.25);  // a 20x tile for a 40x model
  EXPECT_EQ(s.factor, 2.0);
  EXPECT_EQ(s.width, 2000);
  EXPECT_EQ(s.height, 1200);
  s = plan_image_scale(1000, 600, 0.2527, 0.25);  // an Aperio 40x scan: as it is
  EXPECT_EQ(s.factor, 1.0);
  EXPECT_EQ(s.width, 1000);
  s = plan_image_scale(1000, 600, 0.49, 0.25);  // 1.96, within 3% of 2
  EXPECT_EQ(s.factor, 2.0);
  s = plan_image_scale(1000, 600, 0.125, 0.25);  // finer than the model: halved
  EXPECT_EQ(s.factor, 0.5);
  EXPECT_EQ(s.width, 500);
  EXPECT_EQ(s.height, 300);
  s = plan_image_scale(1001, 3, 0.13, 0.25);  // 0.52: 1/0.52 = 1.923 is not within 3% of 2
  EXPECT_DOUBLE_EQ(s.factor, 0.52);
  EXPECT_EQ(s.width, 521);  // round(520.52)
  EXPECT_EQ(s.height, 2);   // round(1.56)
  s = plan_image_scale(1000, 600, 0.3731, 0.25);  // 1.4924: not snapped
  EXPECT_DOUBLE_EQ(s.factor, 0.3731 / 0.25);
  EXPECT_EQ(s.width, 1492);
  EXPECT_EQ(s.height, 895);  // round(895.44)
  s = plan_image_scale(3, 2, 0.01, 0.25);  // never below one pixel
  EXPECT_EQ(s.width, 1);
  EXPECT_EQ(s.height, 1);
  for (auto [image_mpp, method_mpp] : {std::pair{0.0, 0.25}, {0.5, 0.0}, {-1.0, 0.25}}) {
    s = plan_image_scale(1000, 600, image_mpp, method_mpp);  // either unknown: as it is
    EXPECT_EQ(s.factor, 1.0);
    EXPECT_EQ(s.width, 1000);
    EXPECT_EQ(s.height, 600);
  }
  EXPECT_THROW(plan_image_scale(40000, 40000, 1.0, 0.25), OptionError);  // 160000^2 pixels
}

TEST(ImageResolution, ImagesMatchOpenCVsAreaAndBilinearResizes) {
  // resample_image is our own; OpenCV's INTER_AREA (shrinking) and INTER_LINEAR (enlarging) are the
  // reference. OpenCV rounds its bilinear weights to 11 bits: allow 1 grey level.
  Image img(37, 53, 3);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = static_cast<uint8_t>((x * 31 + y * 17 + c * 80 + x * y) % 256);
  cv::Mat src(img.height, img.width, CV_8UC3, img.data.data());
  for (auto [w, h] : {std::pair{26, 18}, {18, 13}, {35, 24}, {106, 74}, {80, 50}, {53, 37}}) {
    const Image ours = resample_image(img, w, h);
    cv::Mat ref;
    cv::resize(src, ref, cv::Size(w, h), 0, 0, w < img.width ? cv::INTER_AREA : cv::INTER_LINEAR);
    ASSERT_TRUE(ours.same_size(h, w));
    int worst = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(int(ours.at(y, x, c)) - int(ref.at<cv::Vec3b>(y, x)[c])));
    EXPECT_LE(worst, 1) << w << "x" << h;
  }
}

TEST(ImageResolution, VanishedInstancesTakeTheirClassAndScoreAlong) {
  Segmentation s;
  s.instances = LabelMap(4, 4);
  s.instances.at(0, 0) = 1;  // one pixel that no target pixel samples when halved
  for (int y = 1; y < 4; ++y)
    for (int x = 1; x < 4; ++x) s.instances.at(y, x) = 2;
  s.classes = {1, 2};
  s.scores = {0.1f, 0.2f};
  s.class_names = {"", "a", "b"};
  const Segmentation half = resample_segmentation(s, 2, 2);
  EXPECT_EQ(half.instances.data, (std::vector<int32_t>{1, 1, 1, 1}));  // the old 2, renumbered
  EXPECT_EQ(half.classes, (std::vector<int>{2}));
  EXPECT_EQ(half.scores, (std::vector<float>{0.2f}));
  EXPECT_EQ(half.class_names, s.class_names);
}

TEST(ImageResolution, SegmentsAtTheMethodsResolutionAndAnswersOnTheImagesGrid) {
  // A 10 x 12 image with a bright 4 x 5 block: at 0.5 um/px for a 0.25 um/px method.
  Image image(10, 12, 3, 40);
  LabelMap expected(10, 12);
  for (int y = 3; y < 7; ++y)
    for (int x = 2; x < 7; ++x) {
      for (int c = 0; c < 3; ++c) image.at(y, x, c) = 220;
      expected.at(y, x) = 1;
    }
  BrightSegmenter seg;
  Segmentation s = segment_at_resolution(seg, image, "tile.png", 0.5, 0, 0);
  EXPECT_EQ(seg.seen_width, 24);
  EXPECT_EQ(seg.seen_height, 20);
  EXPECT_EQ(s.instances, expected);  // each pixel samples a processing pixel weighted 3:1 towards itself
  EXPECT_EQ(s.classes, (std::vector<int>{2}));
  EXPECT_EQ(s.scores, (std::vector<float>{0.75f}));

  // In processing windows of 16 with overlap 8: still one nucleus, the same pixels.
  s = segment_at_resolution(seg, image, "tile.png", 0.5, 16, 8);
  EXPECT_GT(seg.calls, 2);
  EXPECT_EQ(s.instances, expected);

  // Unknown image resolution, or the method's own: the image as it is.
  for (double mpp : {0.0, 0.2527}) {
    s = segment_at_resolution(seg, image, "tile.png", mpp, 0, 0);
    EXPECT_EQ(seg.seen_width, 12);
    EXPECT_EQ(s.instances, expected);
  }
  // A method that does not know its resolution: as it is, whatever the image's.
  seg.mpp = 0;
  s = segment_at_resolution(seg, image, "tile.png", 0.5, 0, 0);
  EXPECT_EQ(seg.seen_width, 12);
  // A finer image (0.125 um/px) is halved for the method: the block is 2 x 2.5 processing pixels.
  seg.mpp = 0.25;
  s = segment_at_resolution(seg, image, "tile.png", 0.125, 0, 0);
  EXPECT_EQ(seg.seen_width, 6);
  EXPECT_EQ(seg.seen_height, 5);
  ASSERT_TRUE(s.instances.same_size(image));
}

TEST(ImageResolution, LargeImagesAreCutIntoEqualTilesOfAtMost4096Pixels) {
  // Each side into the fewest equal tiles of at most 4096 overlapping by 64: 5000 = 2 x 2532 - 64;
  // 12000 = 3 x 4043 - 2 x 64 (rounded up); 9000 = 3 x 3043 - 2 x 64 (rounded up).
  EXPECT_EQ(automatic_tile_size(5000, 4000, 64), (std::pair<int, int>{2532, 4000}));
  EXPECT_EQ(automatic_tile_size(4096, 4096, 64), (std::pair<int, int>{4096, 4096}));
  EXPECT_EQ(automatic_tile_size(4097, 100, 64), (std::pair<int, int>{2081, 100}));
  EXPECT_EQ(automatic_tile_size(12000, 9000, 64), (std::pair<int, int>{4043, 3043}));
  // A 4200 x 4100 image (over 4096 x 4096 pixels) at the method's resolution: 2 x 2 tiles of
  // 2132 x 2082; its one bright square comes back once, where it was.
  Image image(4100, 4200, 3, 0);
  for (int y = 3000; y < 3010; ++y)
    for (int x = 100; x < 110; ++x) image.at(y, x, 0) = 255;
  BrightSegmenter seg;
  Segmentation s = segment_at_resolution(seg, image, "large", 0.25, 0, 64);
  EXPECT_EQ(seg.calls, 4);
  EXPECT_EQ(seg.seen_width, 2132);
  EXPECT_EQ(seg.seen_height, 2082);
  ASSERT_TRUE(s.instances.same_size(4100, 4200));
  int64_t pixels = 0;
  for (int32_t v : s.instances.data) pixels += v == 1;
  EXPECT_EQ(pixels, 100);
  EXPECT_EQ(s.instances.at(3005, 105), 1);
  EXPECT_EQ(s.classes, std::vector<int>{2});
  // A tile size given (here larger than the image) is what is used: one call on the whole image.
  seg.calls = 0;
  segment_at_resolution(seg, image, "large", 0.25, 1 << 20, 64);
  EXPECT_EQ(seg.calls, 1);
  EXPECT_EQ(seg.seen_width, 4200);
}
