// Known-answer tests of the SAM building blocks that need no fixture: relative-position lookup and
// resampling, position-embedding resampling for other input sizes, Pillow-exact resize on hand-
// computed cases, the prompt encoder's token rules, multimask selection, architecture detection,
// and the predictor's input checks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <cmath>
#include <cstring>

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"
#include "nucleisam/sam/pillow_resize.h"
#include "nucleisam/sam/predictor.h"

using namespace nucleisam;
using namespace nucleisam::sam;
using namespace nucleisam::weights;

namespace {

// A small ViT (E=32, 2 heads, depth 2, global block 1) so tests build and run in milliseconds.
ImageEncoderViTConfig small_vit() {
  ImageEncoderViTConfig c;
  c.embed_dim = 32;
  c.depth = 2;
  c.num_heads = 2;
  c.global_attn_indexes = {1};
  return c;
}

}  // namespace

TEST(RelativePosition, LooksUpRowIMinusJPlusKMinus1) {
  auto table = torch::arange(5, torch::kFloat).reshape({5, 1});  // row r holds r
  auto r = relative_position_table(3, 3, table);
  ASSERT_EQ(r.sizes(), (std::vector<int64_t>{3, 3, 1}));
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(r[i][j][0].item<float>(), static_cast<float>(i - j + 2));
}

TEST(RelativePosition, ResamplingAConstantTableKeepsTheConstant) {
  auto table = torch::full({127, 4}, 0.7f);
  auto r = relative_position_table(16, 16, table);  // 127 rows -> 31 rows
  ASSERT_EQ(r.sizes(), (std::vector<int64_t>{16, 16, 4}));
  EXPECT_LT((r - 0.7f).abs().max().item<float>(), 1e-6f);
}

TEST(RelativePosition, ResamplingARampIsLinearWithHalfPixelCentres) {
  auto table = torch::arange(127, torch::kFloat).reshape({127, 1});
  auto r = relative_position_table(16, 16, table);
  // Row k of the 31-row table samples source position (k + 0.5) * 127/31 - 0.5 (clamped at 0 and
  // 126); a ramp returns that position itself.
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      const int k = i - j + 15;
      const double src = std::min(126.0, std::max(0.0, (k + 0.5) * 127.0 / 31.0 - 0.5));
      EXPECT_NEAR(r[i][j][0].item<float>(), src, 1e-4) << i << ',' << j;
    }
}

TEST(ImageEncoderViT, PosEmbedIsUntouchedAtTheTrainedSize) {
  ImageEncoderViT enc(small_vit());
  auto p = enc->pos_embed_for_grid(64);
  EXPECT_EQ(p.data_ptr(), enc->pos_embed.data_ptr());
}

TEST(ImageEncoderViT, ResampledConstantPosEmbedStaysConstant) {
  ImageEncoderViT enc(small_vit());
  torch::NoGradGuard g;
  enc->pos_embed.fill_(0.3f);
  auto p = enc->pos_embed_for_grid(16);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{1, 16, 16, 32}));
  EXPECT_LT((p - 0.3f).abs().max().item<float>(), 1e-6f);
}

TEST(ImageEncoderViT, RunsAtOtherInputSizes) {
  torch::manual_seed(1);
  ImageEncoderViT enc(small_vit());
  torch::NoGradGuard g;
  for (int s : {256, 512}) {
    auto y = enc->forward(torch::randn({1, 3, s, s}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 256, s / 16, s / 16}));
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  }
  EXPECT_THROW(enc->forward(torch::randn({1, 3, 250, 250})), c10::Error);
}

TEST(ImageEncoderViT, StagesComposeToForward) {
  torch::manual_seed(3);
  ImageEncoderViT enc(small_vit());
  enc->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 64, 64});
  auto tokens = enc->embed_patches(x);
  EXPECT_EQ(tokens.sizes(), (std::vector<int64_t>{2, 4, 4, small_vit().embed_dim}));
  // Row-major tokens, so the blocks' residual sums (which keep their first input's layout) stay
  // contiguous and the LayerNorms and window partitions do not copy; so do the blocks' outputs.
  EXPECT_TRUE(tokens.is_contiguous());
  EXPECT_TRUE(enc->run_blocks(tokens).is_contiguous());
  // A module inserted between the stages changes the output; the identity does not.
  EXPECT_TRUE(torch::equal(enc->apply_neck(enc->run_blocks(tokens)), enc->forward(x)));
  EXPECT_FALSE(torch::equal(enc->apply_neck(enc->run_blocks(tokens * 2)), enc->forward(x)));
}

TEST(ImageEncoderViT, PresetsAreDetectedFromTheirOwnStateDicts) {
  auto vit_b = ImageEncoderViTConfig::vit_b();
  ImageEncoderViT enc(vit_b);
  auto state = state_of(*enc, "image_encoder.");
  EXPECT_EQ(state.numel(), 89670912);  // ViT-B encoder of sam_vit_b_01ec64.pth
  auto detected = ImageEncoderViTConfig::from_state_dict(state, "vit_b");
  EXPECT_TRUE(detected == vit_b);
  EXPECT_EQ(detected.name(), "vit_b");
  EXPECT_EQ(ImageEncoderViTConfig::vit_l().name(), "vit_l");
  EXPECT_EQ(ImageEncoderViTConfig::vit_h().global_attn_indexes, (std::vector<int>{7, 15, 23, 31}));
}

TEST(ResizeLongestSide, OfficialRounding) {
  EXPECT_EQ(resized_shape(384, 512, 1024), std::make_pair(768, 1024));
  EXPECT_EQ(resized_shape(1000, 1000, 256), std::make_pair(256, 256));
  EXPECT_EQ(resized_shape(3, 7, 1024), std::make_pair(439, 1024));      // 3 * 1024/7 = 438.86
  EXPECT_EQ(resized_shape(200, 300, 1024), std::make_pair(683, 1024));  // 682.67
}

TEST(PillowResize, UpscaleByTwoHandComputed) {
  // 2 -> 4 pixels: output centres 0.25, 0.75, 1.25, 1.75 in input units, support 1. The second
  // output is 0.75*0 + 0.25*255 = 63.75, rounded from 22-bit fixed point to 64.
  Raster<uint8_t> src(1, 2, 1);
  src.data = {0, 255};
  auto out = resize_bilinear_pillow(src, 4, 1);
  EXPECT_EQ(out.data, (std::vector<uint8_t>{0, 64, 191, 255}));
}

TEST(PillowResize, DownscaleByTwoWidensTheSupport) {
  // 4 -> 2: scale 2, support 2. Output 0 (centre 1.0) weights inputs 0,1,2 by .75,.75,.25 /1.75:
  // (75 + 50) / 1.75 = 71.4 -> 71. Output 1 (centre 3.0) weights inputs 1,2,3 by .25,.75,.75:
  // (25 + 150 + 30) / 1.75 = 117.1 -> 117.
  Raster<uint8_t> src(1, 4, 1);
  src.data = {0, 100, 200, 40};
  EXPECT_EQ(resize_bilinear_pillow(src, 2, 1).data, (std::vector<uint8_t>{71, 117}));
  // The same along the vertical axis.
  Raster<uint8_t> col(4, 1, 1);
  col.data = {0, 100, 200, 40};
  EXPECT_EQ(resize_bilinear_pillow(col, 1, 2).data, (std::vector<uint8_t>{71, 117}));
}

TEST(PillowResize, ConstantImageStaysConstant) {
  Raster<uint8_t> src(23, 37, 3, 201);
  for (auto [w, h] : {std::pair{10, 7}, std::pair{80, 51}, std::pair{37, 23}}) {
    auto out = resize_bilinear_pillow(src, w, h);
    EXPECT_EQ(out.width, w);
    EXPECT_EQ(out.height, h);
    EXPECT_EQ(out.data, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 201));
  }
}

class PromptEncoderTokens : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(2);
    pe = PromptEncoder(256, 1024);
    // A zero gaussian matrix makes every coordinate encode to [sin 0 x128, cos 0 x128] = [0.., 1..].
    torch::NoGradGuard g;
    pe->pe_layer->positional_encoding_gaussian_matrix.zero_();
    base = torch::cat({torch::zeros({128}), torch::ones({128})});
  }
  torch::Tensor weight(int i) {
    return pe->point_embeddings->ptr(i)->as<torch::nn::EmbeddingImpl>()->weight[0];
  }
  PromptEncoder pe{nullptr};
  torch::Tensor base;
};

TEST_F(PromptEncoderTokens, PointsGetAPaddingPointWithoutABox) {
  torch::NoGradGuard g;
  auto points = torch::tensor({10.f, 20.f, 30.f, 40.f}).reshape({1, 2, 2});
  auto labels = torch::tensor({1.f, 0.f}).reshape({1, 2});
  auto [sparse, dense] = pe->forward(points, labels, {}, {});
  ASSERT_EQ(sparse.sizes(), (std::vector<int64_t>{1, 3, 256}));
  EXPECT_TRUE(torch::allclose(sparse[0][0], base + weight(1)));
  EXPECT_TRUE(torch::allclose(sparse[0][1], base + weight(0)));
  EXPECT_TRUE(torch::equal(sparse[0][2], pe->not_a_point_embed->weight[0]));  // zeroed, then not_a_point
  EXPECT_EQ(dense.sizes(), (std::vector<int64_t>{1, 256, 64, 64}));
  EXPECT_TRUE(torch::equal(dense[0].select(1, 5).select(1, 7), pe->no_mask_embed->weight[0]));
}

TEST_F(PromptEncoderTokens, BoxGivesTwoCornerTokensAndNoPadding) {
  torch::NoGradGuard g;
  auto points = torch::tensor({10.f, 20.f}).reshape({1, 1, 2});
  auto labels = torch::tensor({1.f}).reshape({1, 1});
  auto box = torch::tensor({1.f, 2.f, 300.f, 400.f}).reshape({1, 4});
  auto [sparse, dense] = pe->forward(points, labels, box, {});
  ASSERT_EQ(sparse.sizes(), (std::vector<int64_t>{1, 3, 256}));
  EXPECT_TRUE(torch::allclose(sparse[0][1], base + weight(2)));
  EXPECT_TRUE(torch::allclose(sparse[0][2], base + weight(3)));
}

TEST_F(PromptEncoderTokens, InputSizeSetsTheGrid) {
  pe->set_input_size(256);
  EXPECT_EQ(pe->dense_pe().sizes(), (std::vector<int64_t>{1, 256, 16, 16}));
  EXPECT_EQ(pe->no_mask_dense(3).sizes(), (std::vector<int64_t>{3, 256, 16, 16}));
  auto masks = torch::zeros({1, 1, 64, 64});
  EXPECT_EQ(pe->forward({}, {}, {}, masks).second.sizes(), (std::vector<int64_t>{1, 256, 16, 16}));
}

TEST(MaskDecoder, MultimaskSelectsTokensOneToThree) {
  torch::manual_seed(3);
  MaskDecoder dec(256, 3);
  torch::NoGradGuard g;
  auto emb = torch::randn({1, 256, 8, 8});
  auto pe = torch::randn({1, 256, 8, 8});
  auto sparse = torch::randn({2, 3, 256});
  auto dense = torch::randn({2, 256, 8, 8});
  auto [all_masks, all_iou] = dec->predict_masks(emb, pe, sparse, dense);
  EXPECT_EQ(all_masks.sizes(), (std::vector<int64_t>{2, 4, 32, 32}));
  auto [multi, multi_iou] = dec->forward(emb, pe, sparse, dense, true);
  auto [single, single_iou] = dec->forward(emb, pe, sparse, dense, false);
  EXPECT_TRUE(torch::equal(multi, all_masks.slice(1, 1, 4)));
  EXPECT_TRUE(torch::equal(multi_iou, all_iou.slice(1, 1, 4)));
  EXPECT_TRUE(torch::equal(single, all_masks.slice(1, 0, 1)));
  EXPECT_TRUE(torch::equal(single_iou, all_iou.slice(1, 0, 1)));
}

TEST(SamModel, FamilyComesFromKeys) {
  StateDict vit, tiny, both;
  vit.entries.emplace_back("image_encoder.blocks.0.attn.qkv.weight", torch::zeros({3, 1}));
  tiny.entries.emplace_back("image_encoder.layers.0.blocks.0.conv1.c.weight", torch::zeros({1}));
  both.entries = vit.entries;
  both.entries.push_back(tiny.entries[0]);
  EXPECT_EQ(detect_encoder_family(vit, "a.pth"), "vit");
  EXPECT_EQ(detect_encoder_family(tiny, "b.pth"), "vit_t");
  EXPECT_THROW(detect_encoder_family(both, "c.pth"), CheckpointError);
}

TEST(SamPredictor, SmallInputSizeEndToEnd) {
  torch::manual_seed(4);
  Sam model(small_vit());
  SamPredictor pred(model, 256);
  Image img(60, 100, 3, 128);
  pred.set_image(img);
  EXPECT_EQ(pred.embedding().sizes(), (std::vector<int64_t>{1, 256, 16, 16}));
  EXPECT_EQ(pred.resized_height(), 154);  // 60 * 256/100 = 153.6
  EXPECT_EQ(pred.resized_width(), 256);
  SamPrompt p;
  p.points = {{50, 30, 1}};
  auto out = pred.predict(p);
  EXPECT_EQ(out.masks.sizes(), (std::vector<int64_t>{1, 3, 60, 100}));
  EXPECT_EQ(out.low_res_logits.sizes(), (std::vector<int64_t>{1, 3, 64, 64}));
  EXPECT_EQ(out.iou.sizes(), (std::vector<int64_t>{1, 3}));
  // Feeding the logits back is accepted at this size's 64 x 64 mask-input resolution.
  p.mask_input = out.low_res_logits.slice(1, 0, 1);
  p.multimask = false;
  EXPECT_EQ(pred.predict(p).masks.sizes(), (std::vector<int64_t>{1, 1, 60, 100}));
}

TEST(SamPredictor, RejectsWhatItCannotUse) {
  torch::manual_seed(5);
  Sam model(small_vit());
  EXPECT_THROW(SamPredictor(model, 100), OptionError);
  SamPredictor pred(model, 256);
  SamPrompt p;
  p.points = {{1, 1, 1}};
  EXPECT_THROW(pred.predict(p), DataError);                                             // no image yet
  EXPECT_THROW(pred.set_embedding(torch::zeros({1, 256, 64, 64}), 10, 10), DataError);  // 1024-size embedding
  pred.set_embedding(torch::zeros({1, 256, 16, 16}), 10, 20);
  p.points = {{1, 1, 2}};
  EXPECT_THROW(pred.predict(p), DataError);  // label 2
  p.points = {{1, 1, 1}};
  p.mask_input = torch::zeros({1, 256, 256});
  EXPECT_THROW(pred.predict(p), DataError);  // mask input for 1024, not 256  // Prompt tensors of the wrong shape: a DataError naming them, not LibTorch's c10::Error.
  try {
    pred.predict_low_res(torch::zeros({1, 2, 3}), torch::zeros({1, 2}), {}, {}, false);
    ADD_FAILURE() << "a 3-coordinate point was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("points [1, 2, 3]"), std::string::npos) << e.what();
  }
}

TEST(SamPredictor, TinyViTRunsAtASmallerInputSize) {
  torch::manual_seed(6);
  Sam model(TinyViTConfig::mobile_sam());
  SamPredictor pred(model, 256);
  pred.set_image(Image(50, 40, 3, 90));
  EXPECT_EQ(pred.embedding().sizes(), (std::vector<int64_t>{1, 256, 16, 16}));
  SamPrompt p;
  p.box = std::array<double, 4>{5, 5, 30, 40};
  p.multimask = false;
  auto out = pred.predict(p);
  EXPECT_EQ(out.masks.sizes(), (std::vector<int64_t>{1, 1, 50, 40}));
  EXPECT_EQ(out.low_res_logits.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
}

TEST(SamPredictor, Bf16EncoderStaysCloseToFp32AndReturnsFloat32) {
  // A textured image: random pixels from a fixed seed.
  torch::manual_seed(8);
  const torch::Tensor pixels = torch::randint(0, 256, {64 * 80 * 3}, torch::kUInt8);
  Image img(64, 80, 3);
  std::memcpy(img.data.data(), pixels.data_ptr<uint8_t>(), img.data.size());
  for (const bool tiny : {false, true}) {
    torch::manual_seed(9);
    Sam model = tiny ? Sam(TinyViTConfig::mobile_sam()) : Sam(small_vit());
    SamPredictor fp32(model, 256, "fp32"), bf16(model, 256, "bf16");
    fp32.set_image(img);
    bf16.set_image(img);
    ASSERT_EQ(bf16.embedding().scalar_type(), torch::kFloat32);
    const double rel = ((bf16.embedding() - fp32.embedding()).norm() / fp32.embedding().norm()).item<double>();
    // bf16 has 8 significant bits (relative rounding 2^-9 = 0.2%) and the errors add up over the
    // blocks: measurably different from fp32 (bf16 really ran), and within a few percent.
    EXPECT_GT(rel, 1e-4) << (tiny ? "vit_t" : "vit");
    EXPECT_LT(rel, 5e-2) << (tiny ? "vit_t" : "vit");
    EXPECT_FALSE(at::autocast::is_cpu_enabled());  // the scope ended with the encoder
  }
  EXPECT_THROW(SamPredictor(Sam(small_vit()), 256, "fp16"), OptionError);
}
