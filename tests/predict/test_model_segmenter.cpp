// Window-by-window inference: blending is seamless (a pointwise network gives exactly its
// whole-image answer whatever the windows), small images are padded, bad settings refused.
#include <gtest/gtest.h>

#include "nucleisam/errors.h"
#include "nucleisam/predict/model_segmenter.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

// A per-pixel network: logits = W x + b (1x1 convolution) with fixed weights.
struct PointwiseImpl : models::SegmentationNetworkImpl {
  explicit PointwiseImpl(int64_t out) : conv(torch::nn::Conv2dOptions(3, out, 1)) {
    register_module("conv", conv);
    torch::NoGradGuard g;
    torch::manual_seed(5);
    conv->weight.uniform_(-2, 2);
    conv->bias.uniform_(-1, 1);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&) override { return conv->forward(x); }
  int64_t input_multiple() const override { return 8; }
  int64_t out_channels() const override { return conv->options.out_channels(); }
  torch::nn::Conv2d conv;
};

// A 3 x 3 convolution with fixed random weights: not equivariant to mirrors or turns.
struct Conv3Impl : PointwiseImpl {
  explicit Conv3Impl(int64_t out) : PointwiseImpl(out), conv3(torch::nn::Conv2dOptions(3, out, 3).padding(1)) {
    register_module("conv3", conv3);
    torch::NoGradGuard g;
    conv3->weight.uniform_(-1, 1);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&) override { return conv3->forward(x); }
  torch::nn::Conv2d conv3;
};

models::ModelCard card_for(int classes) {
  models::ModelCard c;
  c.name = "pointwise";
  c.arch = "test";
  c.heads.distance = true;
  c.heads.num_classes = classes;
  if (classes) c.class_names = {"background", "a", "b"};
  c.tile_size = 32;
  c.tile_overlap = 8;
  return c;
}

Image test_image(int h, int w) {
  Image img(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = static_cast<uint8_t>((x * 7 + y * 13 + c * 50) % 256);
  return img;
}

}  // namespace

TEST(ModelSegmenter, BlendedWindowsEqualTheWholeImageAnswerForAPointwiseNetwork) {
  models::ModelCard card = card_for(2);
  auto net = std::make_shared<PointwiseImpl>(card.heads.channels());
  predict::ModelSegmenterOptions o;
  o.batch_size = 3;
  predict::ModelSegmenter seg(net, card, o);
  const Image img = test_image(75, 101);
  HeadMaps maps = seg.predict(img);
  ASSERT_EQ(maps.interior.height, 75);
  ASSERT_EQ(maps.interior.width, 101);
  ASSERT_EQ(maps.types.size(), 3u);

  // Direct answer on the whole image.
  torch::Tensor x = torch::empty({1, 3, 75, 101});
  for (int y = 0; y < 75; ++y)
    for (int xx = 0; xx < 101; ++xx)
      for (int c = 0; c < 3; ++c) x[0][c][y][xx] = (img.at(y, xx, c) / 255.0f - 0.5f) / 0.25f;
  torch::NoGradGuard g;
  torch::Tensor logits = net->forward(x, {});
  torch::Tensor three = torch::softmax(logits.narrow(1, 0, 3), 1);
  torch::Tensor dist = torch::sigmoid(logits.select(1, 3));
  torch::Tensor types = torch::softmax(logits.narrow(1, 4, 3), 1);
  for (int y = 0; y < 75; y += 7)
    for (int xx = 0; xx < 101; xx += 5) {
      EXPECT_NEAR(maps.interior.at(y, xx), three[0][1][y][xx].item<float>(), 1e-5);
      EXPECT_NEAR(maps.boundary.at(y, xx), three[0][2][y][xx].item<float>(), 1e-5);
      EXPECT_NEAR(maps.distance.at(y, xx), dist[0][y][xx].item<float>(), 1e-5);
      EXPECT_NEAR(maps.types[2].at(y, xx), types[0][2][y][xx].item<float>(), 1e-5);
    }
}

TEST(ModelSegmenter, ImagesSmallerThanATileArePadded) {
  models::ModelCard card = card_for(0);
  auto net = std::make_shared<PointwiseImpl>(card.heads.channels());
  predict::ModelSegmenter seg(net, card);
  HeadMaps maps = seg.predict(test_image(10, 20));
  EXPECT_EQ(maps.interior.height, 10);
  EXPECT_EQ(maps.interior.width, 20);
  EXPECT_TRUE(maps.types.empty());
  Segmentation s = seg.segment(test_image(10, 20), "small.png");
  EXPECT_EQ(s.instances.height, 10);
  EXPECT_TRUE(s.classes.empty());
}

TEST(ModelSegmenter, RefusesTilesThatDoNotFitTheNetwork) {
  models::ModelCard card = card_for(0);
  auto net = std::make_shared<PointwiseImpl>(card.heads.channels());
  predict::ModelSegmenterOptions o;
  o.tile_size = 36;  // not a multiple of 8
  EXPECT_THROW(predict::ModelSegmenter(net, card, o), OptionError);
  o.tile_size = 32;
  o.tile_overlap = 32;
  EXPECT_THROW(predict::ModelSegmenter(net, card, o), OptionError);
}

TEST(ModelSegmenter, FindModelFileExplainsWhereItLooked) {
  try {
    predict::find_model_file("no-such-model-name");
    FAIL();
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-model-name"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("looked in"), std::string::npos);
  }
  EXPECT_THROW(predict::find_model_file("dir/missing.safetensors"), IoError);
}

TEST(ModelSegmenter, TestTimeViewsAverageTheMirroredAnswers) {
  models::ModelCard card = card_for(2);
  const Image img = test_image(32, 32);  // exactly one window: no blending, no padding
  Image mirrored(32, 32, 3);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c) mirrored.at(y, x, c) = img.at(y, 31 - x, c);
  auto conv = std::make_shared<Conv3Impl>(card.heads.channels());
  predict::ModelSegmenter one(conv, card);
  const HeadMaps a = one.predict(img), b = one.predict(mirrored);
  predict::ModelSegmenterOptions o;
  o.tta = 2;  // the image and its mirror
  const HeadMaps two = predict::ModelSegmenter(conv, card, o).predict(img);
  float largest_change = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      EXPECT_NEAR(two.interior.at(y, x), (a.interior.at(y, x) + b.interior.at(y, 31 - x)) / 2, 1e-5);
      EXPECT_NEAR(two.distance.at(y, x), (a.distance.at(y, x) + b.distance.at(y, 31 - x)) / 2, 1e-5);
      EXPECT_NEAR(two.types[1].at(y, x), (a.types[1].at(y, x) + b.types[1].at(y, 31 - x)) / 2, 1e-5);
      largest_change = std::max(largest_change, std::abs(two.interior.at(y, x) - a.interior.at(y, x)));
    }
  EXPECT_GT(largest_change, 1e-3) << "the network must not be mirror-symmetric for this test to mean anything";

  // A pointwise network is equivariant: all eight views give its one answer, across blended windows.
  auto point = std::make_shared<PointwiseImpl>(card.heads.channels());
  o.tta = 8;
  const Image big = test_image(45, 70);
  const HeadMaps eight = predict::ModelSegmenter(point, card, o).predict(big);
  const HeadMaps single = predict::ModelSegmenter(point, card).predict(big);
  for (int y = 0; y < 45; y += 4)
    for (int x = 0; x < 70; x += 3) {
      EXPECT_NEAR(eight.boundary.at(y, x), single.boundary.at(y, x), 1e-5);
      EXPECT_NEAR(eight.types[2].at(y, x), single.types[2].at(y, x), 1e-5);
    }
  o.tta = 3;
  EXPECT_THROW(predict::ModelSegmenter(point, card, o), OptionError);
}
