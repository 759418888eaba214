// TinyViT (MobileSAM image encoder) building blocks: known answers worked out by hand, the module
// tree against the official state-dict key list, and output shapes at other input sizes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "nucleisam/errors.h"
#include "nucleisam/sam/tiny_vit.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::sam;

namespace {

std::vector<int64_t> to_list(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kInt64);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST(TinyViTAttentionBias, TwoByTwoWindowByHand) {
  // Positions (0,0) (0,1) (1,0) (1,1); offsets numbered as first met from query (0,0):
  // (0,0)=0 (0,1)=1 (1,0)=2 (1,1)=3.
  const std::vector<int64_t> expected = {0, 1, 2, 3,  //
                                         1, 0, 3, 2,  //
                                         2, 3, 0, 1,  //
                                         3, 2, 1, 0};
  auto idx = attention_bias_indices(2);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(to_list(idx), expected);
  EXPECT_EQ(attention_bias_count(2), 4);
}

TEST(TinyViTAttentionBias, ThreeByThreeWindowByHand) {
  auto idx = attention_bias_indices(3);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{9, 9}));
  // From query (0,0) the offsets appear in row-major order: index = 3*|dr| + |dc|.
  EXPECT_EQ(to_list(idx[0]), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  // Query (1,1), the centre: corners are offset (1,1)=4, edges (1,0)=3 or (0,1)=1, itself 0.
  EXPECT_EQ(to_list(idx[4]), (std::vector<int64_t>{4, 3, 4, 1, 0, 1, 4, 3, 4}));
  // Query (2,1): key (0,0) is (2,1)=7, key (0,2) is (2,1)=7, key (2,2) is (0,1)=1.
  EXPECT_EQ(to_list(idx[7]), (std::vector<int64_t>{7, 6, 7, 4, 3, 4, 1, 0, 1}));
  EXPECT_EQ(attention_bias_count(3), 9);
}

TEST(TinyViTAttentionBias, CountsMatchCheckpointShapes) {
  // mobile_sam.pt: attention_biases are [heads, 49] for windows of 7 and [heads, 196] for 14.
  EXPECT_EQ(attention_bias_count(7), 49);
  EXPECT_EQ(attention_bias_count(14), 196);
  EXPECT_EQ(TinyViTAttention(160, 5, 14)->attention_biases.sizes(), (std::vector<int64_t>{5, 196}));
}

TEST(TinyViTConv2dBN, EvalFormulaOnOneChannel) {
  torch::NoGradGuard no_grad;
  Conv2dBN m(1, 1, 1);
  m->eval();
  m->c->weight.fill_(2.0);
  m->bn->weight.fill_(3.0);
  m->bn->bias.fill_(0.5);
  m->bn->running_mean.fill_(1.0);
  m->bn->running_var.fill_(3.0);
  auto x = torch::tensor({1.0f, 2.0f, -3.0f, 4.0f}).view({1, 1, 2, 2});
  auto y = m->forward(x);
  const double inv_std = 1.0 / std::sqrt(3.0 + 1e-5);
  const double xs[] = {1, 2, -3, 4};
  for (int i = 0; i < 4; ++i) {
    const double expected = (2.0 * xs[i] - 1.0) * inv_std * 3.0 + 0.5;
    EXPECT_NEAR(y.view({-1})[i].item<float>(), expected, 1e-5) << "element " << i;
  }
}

TEST(TinyViTWindows, PartitionPadsBottomRightWithZerosByHand) {
  // 3x3 grid of one channel holding 1..9, windows of 2: padded to 4x4, four windows row-major.
  auto x = torch::arange(1, 10, torch::kFloat32).view({1, 3, 3, 1});
  auto w = window_partition(x, 2);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{4, 4, 1}));
  auto v = w.view({-1});
  const std::vector<float> expected = {1, 2, 4, 5,  // top-left
                                       3, 0, 6, 0,  // top-right: column 3 is padding
                                       7, 8, 0, 0,  // bottom-left: row 3 is padding
                                       9, 0, 0, 0};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[i].item<float>(), expected[i]) << "element " << i;
}

TEST(TinyViTWindows, MergeUndoesPartitionAndCrops) {
  torch::manual_seed(3);
  for (auto hw : std::vector<std::pair<int64_t, int64_t>>{{9, 10}, {14, 14}, {7, 3}, {64, 64}}) {
    auto x = torch::randn({2, hw.first, hw.second, 5});
    auto w = window_partition(x, 7);
    const int64_t nh = (hw.first + 6) / 7, nw = (hw.second + 6) / 7;
    EXPECT_EQ(w.size(0), 2 * nh * nw);
    EXPECT_EQ(w.size(1), 49);
    auto back = window_merge(w, 7, 2, hw.first, hw.second);
    EXPECT_TRUE(torch::equal(back, x)) << hw.first << "x" << hw.second;
  }
}

TEST(TinyViTAttention, QkvIsInterleavedPerHead) {
  // One token, so softmax weights are 1 and each head returns its own v. dim 4, 2 heads of 2:
  // per head the 6 qkv rows are [q0 q1 k0 k1 v0 v1]. Head 0's v copies features (0,1), head 1's v
  // copies features (3,2); proj is the identity. A [q|k|v]-over-all-heads layout would read zeros.
  torch::NoGradGuard no_grad;
  TinyViTAttention attn(4, 2, 1);
  attn->eval();
  attn->qkv->weight.zero_();
  attn->qkv->bias.zero_();
  attn->qkv->weight[4][0] = 1;
  attn->qkv->weight[5][1] = 1;
  attn->qkv->weight[10][3] = 1;
  attn->qkv->weight[11][2] = 1;
  attn->qkv->bias[5] = 0.25;
  attn->proj->weight.copy_(torch::eye(4));
  attn->proj->bias.zero_();
  // LayerNorm of [1,-1,2,-2]: mean 0, variance 2.5.
  auto x = torch::tensor({1.0f, -1.0f, 2.0f, -2.0f}).view({1, 1, 4});
  auto y = attn->forward(x).view({-1});
  const double s = 1.0 / std::sqrt(2.5 + 1e-5);
  EXPECT_NEAR(y[0].item<float>(), 1 * s, 1e-5);
  EXPECT_NEAR(y[1].item<float>(), -1 * s + 0.25, 1e-5);
  EXPECT_NEAR(y[2].item<float>(), -2 * s, 1e-5);
  EXPECT_NEAR(y[3].item<float>(), 2 * s, 1e-5);
}

TEST(TinyViTAttention, BiasAloneSetsTheWeightsByHand) {
  // q = k = 0, so the logits are the biases alone: query i weights key j by
  // softmax_j(b[idx(i,j)]) with the 2x2 index table above. v = the normalised feature 0.
  torch::NoGradGuard no_grad;
  TinyViTAttention attn(2, 1, 2);
  attn->eval();
  attn->qkv->weight.zero_();
  attn->qkv->bias.zero_();
  attn->qkv->weight[4][0] = 1;  // v0 = feature 0
  attn->proj->weight.copy_(torch::eye(2));
  attn->proj->bias.zero_();
  const double b[4] = {0.0, std::log(2.0), std::log(3.0), std::log(4.0)};
  for (int i = 0; i < 4; ++i) attn->attention_biases[0][i] = b[i];
  // Tokens [a,-a] normalise to [+-c, -+c] with c = 1/sqrt(1+eps/a^2); signs + - + +.
  auto x = torch::tensor({1.f, -1.f, -1.f, 1.f, 2.f, -2.f, 3.f, -3.f}).view({1, 4, 2});
  auto y = attn->forward(x);
  const double a[4] = {1, -1, 2, 3};
  double u[4];
  for (int j = 0; j < 4; ++j) u[j] = a[j] / std::sqrt(a[j] * a[j] + 1e-5);
  const int idx[4][4] = {{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
  for (int i = 0; i < 4; ++i) {
    double z = 0, acc = 0;
    for (int j = 0; j < 4; ++j) z += std::exp(b[idx[i][j]]);
    for (int j = 0; j < 4; ++j) acc += std::exp(b[idx[i][j]]) / z * u[j];
    EXPECT_NEAR(y[0][i][0].item<float>(), acc, 1e-5) << "query " << i;
    EXPECT_NEAR(y[0][i][1].item<float>(), 0.0, 1e-6) << "query " << i;
  }
}

TEST(TinyViTBlock, PaddedWindowsMatchManualComposition) {
  // A 5x6 grid with windows of 4 is padded to 8x8 raw-token zeros BEFORE the attention's own
  // LayerNorm (so padded keys are LayerNorm(0) = bias and count), then cropped, then residual,
  // depthwise local conv, and a residual MLP.
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  TinyViTBlock block(8, 2, 4, 4.0, 3);
  block->eval();
  for (auto& p : block->parameters()) p.copy_(torch::randn(p.sizes()) * 0.5);
  block->local_conv->bn->running_mean.copy_(torch::randn({8}) * 0.1);
  block->local_conv->bn->running_var.copy_(torch::rand({8}) + 0.5);
  const int64_t h = 5, w = 6, c = 8;
  auto tokens = torch::randn({2, h * w, c});
  auto got = block->forward(tokens, h, w);

  auto grid = torch::zeros({2, 8, 8, c});
  grid.slice(1, 0, h).slice(2, 0, w).copy_(tokens.view({2, h, w, c}));
  auto attended = torch::zeros({2, 8, 8, c});
  for (int64_t wy = 0; wy < 2; ++wy)
    for (int64_t wx = 0; wx < 2; ++wx) {
      auto win = grid.slice(1, wy * 4, wy * 4 + 4).slice(2, wx * 4, wx * 4 + 4).reshape({2, 16, c});
      attended.slice(1, wy * 4, wy * 4 + 4)
          .slice(2, wx * 4, wx * 4 + 4)
          .copy_(block->attn->forward(win).view({2, 4, 4, c}));
    }
  auto x = tokens + attended.slice(1, 0, h).slice(2, 0, w).reshape({2, h * w, c});
  auto conv_in = x.permute({0, 2, 1}).reshape({2, c, h, w});
  auto conv = block->local_conv->forward(conv_in).flatten(2).permute({0, 2, 1});
  auto expected = conv + block->mlp->forward(conv);

  EXPECT_LT((got - expected).abs().max().item<float>(), 1e-5);
}

TEST(TinyViT, ModuleTreeMatchesOfficialStateDictKeys) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam/state_dict_keys.txt");
  // Every image_encoder.* entry of the official state dict, with its shape, and nothing else.
  std::ifstream in(test::shared_path("fixtures/sam/vit_t_mobilesam/state_dict_keys.txt"));
  std::map<std::string, std::string> expected;
  std::string line;
  const std::string prefix = "image_encoder.";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream fields(line);
    std::string key, shape;
    std::getline(fields, key, '\t');
    std::getline(fields, shape, '\t');
    expected[key.substr(prefix.size())] = shape;
  }
  ASSERT_EQ(expected.size(), 302u);

  TinyViT model;
  std::map<std::string, std::string> got;
  auto shape_of = [](const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
    return s + "]";
  };
  for (const auto& p : model->named_parameters()) got[p.key()] = shape_of(p.value());
  for (const auto& b : model->named_buffers()) got[b.key()] = shape_of(b.value());
  for (const auto& [key, shape] : expected) {
    auto it = got.find(key);
    if (it == got.end()) {
      ADD_FAILURE() << "missing " << key;
      continue;
    }
    EXPECT_EQ(it->second, shape) << key;
  }
  for (const auto& [key, shape] : got)
    EXPECT_TRUE(expected.count(key)) << "unexpected " << key << " " << shape;
}

TEST(TinyViT, MobileSamConfig) {
  auto c = TinyViTConfig::mobile_sam();
  EXPECT_EQ(c.embed_dims, (std::vector<int64_t>{64, 128, 160, 320}));
  EXPECT_EQ(c.depths, (std::vector<int64_t>{2, 2, 6, 2}));
  EXPECT_EQ(c.num_heads, (std::vector<int64_t>{2, 4, 5, 10}));
  EXPECT_EQ(c.window_sizes, (std::vector<int64_t>{7, 7, 14, 7}));
  EXPECT_EQ(c.img_size, 1024);
  EXPECT_EQ(c.out_chans, 256);
}

TEST(TinyViT, OtherInputSizesGiveOneSixteenthGrid) {
  torch::NoGradGuard no_grad;
  TinyViT model;
  EXPECT_FALSE(model->is_training());
  auto y = model->forward(torch::randn({2, 3, 256, 256}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 256, 16, 16}));
  // Not a multiple of 16 (or of any window): each stride-2 step rounds up.
  auto z = model->forward(torch::randn({1, 3, 200, 120}));
  EXPECT_EQ(z.sizes(), (std::vector<int64_t>{1, 256, 13, 8}));
  EXPECT_TRUE(torch::isfinite(z).all().item<bool>());
}

TEST(TinyViT, BatchItemsAreIndependent) {
  // Eval-mode BatchNorm and per-image windows: an image's embedding must not depend on the batch.
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  TinyViT model;
  for (auto& p : model->parameters()) p.copy_(torch::randn(p.sizes()) * 0.05);
  auto x = torch::randn({2, 3, 96, 64});
  auto both = model->forward(x);
  auto second = model->forward(x.slice(0, 1, 2));
  EXPECT_LT((both.slice(0, 1, 2) - second).abs().max().item<float>(), 1e-4);
}

TEST(TinyViT, RejectsNonImageInput) {
  TinyViT model;
  EXPECT_THROW(model->forward(torch::zeros({3, 64, 64})), Error);
  EXPECT_THROW(model->forward(torch::zeros({1, 1, 64, 64})), Error);
}

TEST(TinyViT, FollowsTheParametersDtype) {
  // Nothing in forward is created with a fixed dtype/device: after .to(kFloat64) a float64 input
  // runs end to end and agrees with the float32 model to float32 rounding.
  torch::NoGradGuard no_grad;
  torch::manual_seed(9);
  TinyViT model;
  for (auto& p : model->parameters()) p.copy_(torch::randn(p.sizes()) * 0.05);
  auto x = torch::randn({1, 3, 64, 64});
  auto y32 = model->forward(x);
  model->to(torch::kFloat64);
  auto y64 = model->forward(x.to(torch::kFloat64));
  EXPECT_EQ(y64.scalar_type(), torch::kFloat64);
  EXPECT_LT((y64 - y32.to(torch::kFloat64)).abs().max().item<double>(), 1e-3);
}
