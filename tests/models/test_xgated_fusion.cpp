// X-Gated Fusion Block: gradient flow (everything trainable, never the guidance), the excitation
// switch, attention with gated queries and ungated keys/values, and guidance of any size.
#include "models/networks.h"
#include "models/xgated_fusion.h"
#include "nucleisam/models/segmentation_model.h"

#include <gtest/gtest.h>

using namespace nucleisam::models;

namespace {

XGatedFusionOptions tiny(Excitation e = Excitation::glu) {
  XGatedFusionOptions o;
  o.feature_channels = 8;
  o.guidance_channels = 4;
  o.reduction_channels = 3;
  o.heads = 2;
  o.excitation = e;
  return o;
}

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST(XGatedFusion, GradientReachesEveryParameterButNeverTheGuidance) {
  torch::manual_seed(1);
  XGatedFusion block(tiny());
  auto features = torch::randn({2, 8, 4, 4}, torch::requires_grad());
  auto guidance = torch::randn({2, 4, 16, 16}, torch::requires_grad());
  block(features, guidance).pow(2).sum().backward();
  EXPECT_FALSE(guidance.grad().defined());
  EXPECT_TRUE(features.grad().defined());
  for (const auto& p : block->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(XGatedFusion, WholeNetworkKeepsTheGuidanceConstant) {
  torch::manual_seed(2);
  auto net = build_network("sam-eunet3plus", 2,
                           ModelOptions({{"width", "4"}, {"depth", "3"}, {"guidance_channels", "4"},
                                         {"advanced", "true"}}));
  auto guidance = torch::randn({2, 4, 64, 64}, torch::requires_grad());
  net->forward(torch::randn({2, 3, 32, 32}), guidance).pow(2).sum().backward();
  EXPECT_FALSE(guidance.grad().defined());
  int fused = 0;
  for (const auto& p : net->named_parameters()) {
    if (p.key().rfind("fusion.", 0) != 0 && p.key().rfind("sam_gates.", 0) != 0) continue;
    ++fused;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  // excite_in/out (w, b), attention in_proj (w, b), out_proj (w, b), 2 advanced gates (w, b).
  EXPECT_EQ(fused, 12);
}

TEST(XGatedFusion, ExcitationSwitchChangesTheParameterSet) {
  // C = 8, C_s = 4, r = 3, C_z = 12. glu: excite_in 12 -> 6 (12*6+6 = 78); sigmoid: 12 -> 3 (39).
  // Both: excite_out 3 -> 8 (32), attention in_proj 3*8*8 + 24 = 216, out_proj 64 + 8 = 72.
  XGatedFusion glu(tiny(Excitation::glu)), sig(tiny(Excitation::sigmoid));
  EXPECT_EQ(count_parameters(*glu), 78 + 32 + 216 + 72);
  EXPECT_EQ(count_parameters(*sig), 39 + 32 + 216 + 72);
  EXPECT_EQ(glu->excite_in->weight.sizes(), torch::IntArrayRef({6, 12, 1, 1}));
  EXPECT_EQ(sig->excite_in->weight.sizes(), torch::IntArrayRef({3, 12, 1, 1}));
}

TEST(XGatedFusion, ClosedGateLeavesUniformAttentionOverUngatedValues) {
  // Gate 0 -> queries are the query bias (set to 0) -> equal scores -> every position receives
  // out_proj(W_v * mean_j(x_j) + b_v). Had the values been gated too, it would be out_proj(b_v).
  torch::manual_seed(3);
  XGatedFusion block(tiny());
  block->eval();
  torch::NoGradGuard no_grad;
  block->excite_out->weight.zero_();
  block->excite_out->bias.fill_(-1e4);  // sigmoid -> exactly 0
  auto& mha = block->attention;
  mha->in_proj_bias.normal_();
  mha->in_proj_bias.narrow(0, 0, 8).zero_();
  mha->out_proj->bias.normal_();
  auto x = torch::randn({2, 8, 4, 4});
  auto out = block(x, torch::randn({2, 4, 8, 8}));
  auto wv = mha->in_proj_weight.narrow(0, 16, 8), bv = mha->in_proj_bias.narrow(0, 16, 8);
  auto mean = x.mean({2, 3});  // N x C
  auto expected = torch::matmul(torch::matmul(mean, wv.t()) + bv, mha->out_proj->weight.t()) +
                  mha->out_proj->bias;
  EXPECT_TRUE(torch::allclose(out, expected.view({2, 8, 1, 1}).expand_as(out), 1e-4, 1e-5));
  auto gated_values = torch::matmul(bv, mha->out_proj->weight.t()) + mha->out_proj->bias;
  EXPECT_FALSE(torch::allclose(out, gated_values.view({1, 8, 1, 1}).expand_as(out), 1e-2, 1e-3));
}

TEST(XGatedFusion, OpenGateIsSelfAttentionAndResidualAddsTheInput) {
  torch::manual_seed(4);
  auto opts = tiny();
  XGatedFusion block(opts);
  opts.residual = true;
  XGatedFusion with_residual(opts);
  block->eval();
  with_residual->eval();
  torch::NoGradGuard no_grad;
  for (auto* b : {&block, &with_residual}) {
    (*b)->excite_out->weight.zero_();
    (*b)->excite_out->bias.fill_(1e4);  // sigmoid -> exactly 1
  }
  with_residual->attention->in_proj_weight.copy_(block->attention->in_proj_weight);
  with_residual->attention->out_proj->weight.copy_(block->attention->out_proj->weight);
  auto x = torch::randn({1, 8, 2, 3});
  auto tokens = x.flatten(2).permute({2, 0, 1});
  auto self = std::get<0>(block->attention->forward(tokens, tokens, tokens));
  auto out = block(x, torch::randn({1, 4, 2, 3}));
  EXPECT_TRUE(torch::allclose(out, self.permute({1, 2, 0}).reshape({1, 8, 2, 3}), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(with_residual(x, torch::randn({1, 4, 5, 5})), out + x, 1e-5, 1e-6));
}

TEST(XGatedFusion, GuidanceOfAnySizeIsResampledToTheDeepestMap) {
  MaxBlurPool pool;
  EXPECT_EQ(resample_guidance(torch::ones({1, 2, 64, 64}), 4, 4, pool).sizes(), torch::IntArrayRef({1, 2, 4, 4}));
  EXPECT_EQ(resample_guidance(torch::ones({1, 2, 32, 48}), 4, 4, pool).sizes(), torch::IntArrayRef({1, 2, 4, 4}));
  EXPECT_EQ(resample_guidance(torch::ones({1, 2, 2, 2}), 4, 4, pool).sizes(), torch::IntArrayRef({1, 2, 4, 4}));
  // Two MaxBlurPools of a 16x16 map of ones: a zero-padded blur of ones gives 9/16 at a corner.
  auto corner = resample_guidance(torch::ones({1, 1, 16, 16}), 4, 4, pool)[0][0][0][0].item<double>();
  EXPECT_LT(corner, 9.0 / 16 + 1e-6);
  torch::manual_seed(5);
  auto net = build_network("sam-eunet3plus", 2, ModelOptions({{"width", "4"}, {"guidance_channels", "4"}}));
  net->eval();
  for (auto size : {std::vector<int64_t>{64, 64}, {16, 16}, {32, 48}}) {
    auto out = net->forward(torch::randn({1, 3, 64, 64}), torch::randn({1, 4, size[0], size[1]}));
    EXPECT_EQ(out.sizes(), torch::IntArrayRef({1, 2, 64, 64}));
  }
}
