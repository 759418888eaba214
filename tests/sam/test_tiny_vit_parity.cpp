// TinyViT encoder alone against the official MobileSAM output on the random-weight fixture
// (../shared/fixtures/sam/vit_t_mobilesam): checkpoint loaded strictly under "image_encoder.",
// input rebuilt from input_resized.png exactly as Sam.preprocess does, embeddings within 1e-4.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>
#include <string>

#include "nucleisam/errors.h"
#include "nucleisam/npy.h"
#include "nucleisam/weights/state_dict.h"
#include "nucleisam/sam/tiny_vit.h"
#include "sam/fixture_png.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::sam;
using namespace nucleisam::weights;

namespace {

const char* kFixture = "fixtures/sam/vit_t_mobilesam";

std::string fixture_file(const std::string& name) {
  return test::shared_path(std::string(kFixture) + "/" + name);
}

// (x - mean) / std per RGB channel in float32, then zeros on the bottom/right up to 1024.
torch::Tensor preprocessed_input() {
  auto rgb = test::read_png_rgb(fixture_file("input_resized.png"));
  auto hwc = torch::from_blob(rgb.data.data(), {rgb.height, rgb.width, 3}, torch::kUInt8);
  auto chw = hwc.permute({2, 0, 1}).to(torch::kFloat32);
  auto mean = torch::tensor({123.675f, 116.28f, 103.53f}).view({3, 1, 1});
  auto stdev = torch::tensor({58.395f, 57.12f, 57.375f}).view({3, 1, 1});
  auto x = torch::zeros({1, 3, 1024, 1024});
  x[0].slice(1, 0, rgb.height).slice(2, 0, rgb.width).copy_((chw - mean) / stdev);
  return x;
}

torch::Tensor reference_embeddings() {
  auto a = read_npy(fixture_file("image_embeddings.npy"));
  auto v = a.to_vector<float>();
  return torch::from_blob(v.data(), a.shape, torch::kFloat32).clone();
}

// One loaded encoder and one input for every test in this file (loading + a forward take seconds).
struct Loaded {
  TinyViT model{nullptr};
  torch::Tensor input, expected;
};

Loaded& loaded() {
  static Loaded l = [] {
    Loaded r;
    const auto path = fixture_file("mobile_sam_random.pth");
    r.model = TinyViT(TinyViTConfig::mobile_sam());
    load_into(*r.model, read_checkpoint(path), path, "image_encoder.", /*strict=*/true);
    r.input = preprocessed_input();
    r.expected = reference_embeddings();
    return r;
  }();
  return l;
}

}  // namespace

TEST(TinyViTParity, ImageEmbeddingsMatchOfficialMobileSam) {
  NUCLEISAM_REQUIRE_SHARED(std::string(kFixture) + "/mobile_sam_random.pth");
  torch::NoGradGuard no_grad;
  auto& l = loaded();
  ASSERT_EQ(l.input.sizes(), (std::vector<int64_t>{1, 3, 1024, 1024}));
  auto got = l.model->forward(l.input);
  ASSERT_EQ(got.sizes(), l.expected.sizes());
  const double diff = (got - l.expected).abs().max().item<double>();
  std::cout << "[ parity ] vit_t encoder alone: image_embeddings max abs diff " << diff << '\n';
  EXPECT_LT(diff, 1e-4);
}

TEST(TinyViTParity, AttentionBiasesFromTheWeightsMatter) {
  // The README's stale-cache trap: with zero attention biases the embeddings move by ~0.45. This
  // shows the parity test above would catch an encoder that ignored the loaded biases.
  NUCLEISAM_REQUIRE_SHARED(std::string(kFixture) + "/mobile_sam_random.pth");
  torch::NoGradGuard no_grad;
  const auto path = fixture_file("mobile_sam_random.pth");
  TinyViT model(TinyViTConfig::mobile_sam());
  load_into(*model, read_checkpoint(path), path, "image_encoder.", /*strict=*/true);
  for (auto& p : model->named_parameters())
    if (p.key().find("attention_biases") != std::string::npos) p.value().zero_();
  auto& l = loaded();
  const double diff = (model->forward(l.input) - l.expected).abs().max().item<double>();
  std::cout << "[ parity ] with zeroed attention biases: max abs diff " << diff << '\n';
  EXPECT_GT(diff, 0.1);
}

TEST(TinyViTParity, FoldedBatchNormMatchesConvThenBatchNorm) {
  // Eval folds each BatchNorm into its conv; conv followed by BatchNorm with the running
  // statistics must agree to rounding, on the real weights of the first MBConv's 1x1 expansion
  // and real activations (the patch embedding of the fixture image, 64 x 256 x 256).
  NUCLEISAM_REQUIRE_SHARED(std::string(kFixture) + "/mobile_sam_random.pth");
  torch::NoGradGuard no_grad;
  auto& l = loaded();
  auto stem = l.model->patch_embed_seq->forward(l.input);
  auto& conv = l.model->layers.at(0)->conv_blocks.at(0)->conv1;
  auto folded = conv->forward(stem);
  auto unfolded = torch::batch_norm(conv->c->forward(stem), conv->bn->weight, conv->bn->bias,
                                    conv->bn->running_mean, conv->bn->running_var,
                                    /*training=*/false, 0.1, 1e-5, /*cudnn_enabled=*/false);
  EXPECT_LT((folded - unfolded).abs().max().item<double>(), 1e-4);
  EXPECT_GT(unfolded.abs().max().item<double>(), 1.0);  // not a trivially small comparison
}

TEST(TinyViTParity, StrictLoadingNamesAMissingKey) {
  NUCLEISAM_REQUIRE_SHARED(std::string(kFixture) + "/mobile_sam_random.pth");
  const auto path = fixture_file("mobile_sam_random.pth");
  auto state = read_checkpoint(path);
  StateDict without_head;
  for (const auto& e : state.entries)
    if (e.first != "image_encoder.head.weight") without_head.entries.push_back(e);
  TinyViT model(TinyViTConfig::mobile_sam());
  try {
    load_into(*model, without_head, path, "image_encoder.", /*strict=*/true);
    FAIL() << "strict loading accepted a state dict without image_encoder.head.weight";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("image_encoder.head.weight"), std::string::npos) << e.what();
  }
}
