// Parity of the C++ SAM against the official Python implementation, on the random-weight fixtures
// in ../shared/fixtures/sam/<set> (see their README.md for how every file was produced and for the
// tolerances). Included by one test file per fixture set, which instantiates the suite.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "nucleisam/npy.h"
#include "nucleisam/weights/state_dict.h"
#include "nucleisam/sam/pillow_resize.h"
#include "nucleisam/sam/predictor.h"
#include "sam/fixture_png.h"
#include "support/test_support.h"

namespace nucleisam::test {

struct ParitySet {
  std::string name;        // folder under fixtures/sam
  std::string checkpoint;  // file name in that folder
  // The README's count of full-resolution logits with abs < 1e-3, i.e. pixels that may flip.
  int64_t points1_flip_budget, box1_flip_budget, points_box_mask_flip_budget;
};

inline torch::Tensor load_npy_tensor(const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.kind == 'f') {
    auto v = a.to_vector<float>();
    return torch::from_blob(v.data(), a.shape, torch::kFloat).clone();
  }
  auto v = a.to_vector<int64_t>();
  return torch::from_blob(v.data(), a.shape, torch::kInt64).clone();
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

inline int64_t mismatches(const torch::Tensor& mask, const torch::Tensor& expected01) {
  return (mask.to(torch::kBool) != expected01.to(torch::kBool)).sum().item<int64_t>();
}

class SamParity : public ::testing::TestWithParam<ParitySet> {
 protected:
  std::string dir() const { return shared_path("fixtures/sam/" + GetParam().name); }
  std::string file(const std::string& name) const { return dir() + "/" + name; }

  void SetUp() override {
    NUCLEISAM_REQUIRE_SHARED("fixtures/sam/" + GetParam().name + "/" + GetParam().checkpoint);
    torch::manual_seed(0);
  }

  // One model and one predictor (set from input_resized.png) per fixture set, shared by the tests.
  sam::SamPredictor& predictor() {
    auto& slot = cache()[GetParam().name];
    if (!slot) {
      auto model = sam::load_sam(file(GetParam().checkpoint));
      slot = std::make_unique<sam::SamPredictor>(model, 1024);
      slot->set_resized_image(read_png_rgb(file("input_resized.png")), 384, 512);
    }
    return *slot;
  }

  void check_prompt(const std::string& prefix, const sam::SamPrompt& prompt, int64_t flip_budget) {
    auto out = predictor().predict(prompt);
    auto logits = load_npy_tensor(file(prefix + "_masks_logits.npy"));
    auto iou = load_npy_tensor(file(prefix + "_iou.npy"));
    auto masks = load_npy_tensor(file(prefix + "_masks.npy"));
    ASSERT_EQ(out.low_res_logits.sizes(), logits.sizes());
    ASSERT_EQ(out.iou.sizes(), iou.sizes());
    ASSERT_EQ(out.masks.sizes(), masks.sizes());
    EXPECT_LT(max_abs_diff(out.low_res_logits, logits), 1e-4) << prefix << " low-res logits";
    EXPECT_LT(max_abs_diff(out.iou, iou), 1e-4) << prefix << " iou";
    const int64_t bad = mismatches(out.masks, masks);
    EXPECT_LE(bad, flip_budget) << prefix << " mask pixels differing from the reference";
    std::cout << "[ parity ] " << GetParam().name << ' ' << prefix << ": logits max diff "
              << max_abs_diff(out.low_res_logits, logits) << ", iou max diff " << max_abs_diff(out.iou, iou)
              << ", mismatched mask px " << bad << '\n';
  }

 private:
  static std::map<std::string, std::unique_ptr<sam::SamPredictor>>& cache() {
    static std::map<std::string, std::unique_ptr<sam::SamPredictor>> c;
    return c;
  }
};

TEST_P(SamParity, PillowResizeIsBitExact) {
  auto image = read_png_rgb(file("image.png"));
  auto expected = read_png_rgb(file("input_resized.png"));
  ASSERT_EQ(image.width, 512);
  ASSERT_EQ(image.height, 384);
  const auto [h, w] = sam::resized_shape(image.height, image.width, 1024);
  ASSERT_EQ(h, 768);
  ASSERT_EQ(w, 1024);
  auto resized = sam::resize_bilinear_pillow(image, w, h);
  ASSERT_EQ(resized.width, expected.width);
  ASSERT_EQ(resized.height, expected.height);
  size_t differing = 0;
  for (size_t i = 0; i < resized.data.size(); ++i) differing += resized.data[i] != expected.data[i];
  EXPECT_EQ(differing, 0u) << "of " << resized.data.size() << " values";
  EXPECT_EQ(resized.data.size(), 2359296u);
}

TEST_P(SamParity, PreprocessedInputMatchesReadmeStatistics) {
  // input_preprocessed.npy is not shipped; the README gives its max abs / mean / std.
  auto x = sam::normalize_and_pad(read_png_rgb(file("input_resized.png")), 1024);
  EXPECT_NEAR(x.abs().max().item<double>(), 2.5703, 1e-4);
  EXPECT_NEAR(x.mean().item<double>(), 0.1374, 1e-4);
  EXPECT_NEAR(x.std().item<double>(), 0.9581, 1e-4);
  EXPECT_EQ(x.slice(2, 768).abs().max().item<float>(), 0.0f);  // padding after normalisation
}

TEST_P(SamParity, ImageEmbeddings) {
  auto expected = load_npy_tensor(file("image_embeddings.npy"));
  const auto& got = predictor().embedding();
  ASSERT_EQ(got.sizes(), expected.sizes());
  const double diff = max_abs_diff(got, expected);
  std::cout << "[ parity ] " << GetParam().name << " embeddings max diff " << diff << '\n';
  EXPECT_LT(diff, 1e-4);
}

TEST_P(SamParity, Points1) {
  sam::SamPrompt p;
  p.points = {{100, 80, 1}, {300, 200, 0}};
  p.multimask = true;
  check_prompt("points1", p, GetParam().points1_flip_budget);
}

TEST_P(SamParity, Box1) {
  sam::SamPrompt p;
  p.box = std::array<double, 4>{50, 40, 250, 220};
  p.multimask = false;
  check_prompt("box1", p, GetParam().box1_flip_budget);
}

TEST_P(SamParity, PointsBoxMask) {
  sam::SamPrompt p;
  p.points = {{150, 150, 1}};
  p.box = std::array<double, 4>{100, 100, 220, 230};
  p.mask_input = load_npy_tensor(file("points_box_mask_mask_input.npy"));  // 1 x 1 x 256 x 256
  p.multimask = false;
  check_prompt("points_box_mask", p, GetParam().points_box_mask_flip_budget);
}

TEST_P(SamParity, SparseTokensThroughTheDecoder) {
  auto& pred = predictor();
  auto tokens = load_npy_tensor(file("sparse_tokens_in.npy"));
  auto expected_masks = load_npy_tensor(file("sparse_tokens_masks.npy"));
  auto expected_iou = load_npy_tensor(file("sparse_tokens_iou.npy"));
  torch::NoGradGuard no_grad;
  auto& model = pred.model();
  auto [masks, iou] =
      model->mask_decoder->forward(pred.embedding(), model->prompt_encoder->dense_pe(), tokens,
                                   model->prompt_encoder->no_mask_dense(tokens.size(0)), false);
  ASSERT_EQ(masks.sizes(), expected_masks.sizes());
  ASSERT_EQ(iou.sizes(), expected_iou.sizes());
  EXPECT_LT(max_abs_diff(masks, expected_masks), 1e-4);
  EXPECT_LT(max_abs_diff(iou, expected_iou), 1e-4);
}

TEST_P(SamParity, EndToEndFromOriginalImage) {
  auto model = sam::load_sam(file(GetParam().checkpoint));
  sam::SamPredictor pred(model, 1024);
  pred.set_image(read_png_rgb(file("image.png")));
  EXPECT_EQ(pred.resized_height(), 768);
  EXPECT_EQ(pred.resized_width(), 1024);
  EXPECT_LT(max_abs_diff(pred.embedding(), load_npy_tensor(file("image_embeddings.npy"))), 1e-4);
  sam::SamPrompt p;
  p.points = {{100, 80, 1}, {300, 200, 0}};
  auto out = pred.predict(p);
  EXPECT_LE(mismatches(out.masks, load_npy_tensor(file("points1_masks.npy"))),
            GetParam().points1_flip_budget);
  EXPECT_LT(max_abs_diff(out.iou, load_npy_tensor(file("points1_iou.npy"))), 1e-4);
}

}  // namespace nucleisam::test
