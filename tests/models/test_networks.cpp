// Networks: shapes for every architecture, hand-counted parameters, MaxBlurPool and GLU known
// answers, option parsing and the errors a user sees.
#include "models/network_blocks.h"
#include "models/networks.h"
#include "nucleisam/errors.h"
#include "nucleisam/models/segmentation_model.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cmath>

using namespace nucleisam;
using namespace nucleisam::models;

namespace F = torch::nn::functional;

namespace {

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

ModelOptions opts(std::map<std::string, std::string> values) { return ModelOptions(std::move(values)); }

ModelOptions small(std::map<std::string, std::string> extra = {}) {
  extra.emplace("width", "4");
  return ModelOptions(extra);
}

// How many BatchNorm operators a call runs, counted by LibTorch's profiler.
int batch_norm_calls(const std::function<void()>& f) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  f();
  int calls = 0;
  for (const auto& events : prof::disableProfilerLegacy())
    for (const auto& e : events)
      if (e.kindStr() == "push" && std::string(e.name()) == "aten::batch_norm") ++calls;
  return calls;
}

}  // namespace

TEST(ModelOptions, StrictTypedGetters) {
  ModelOptions o({{"width", "12"}, {"bad", "12abc"}, {"p", "0.25"}, {"on", "1"}, {"off", "false"},
                  {"flag", "yes"}, {"neg", "-3"}});
  EXPECT_EQ(o.integer("width", 1), 12);
  EXPECT_EQ(o.integer("neg", 1), -3);
  EXPECT_EQ(o.integer("absent", 7), 7);
  EXPECT_DOUBLE_EQ(o.number("p", 0), 0.25);
  EXPECT_TRUE(o.flag("on", false));
  EXPECT_FALSE(o.flag("off", true));
  EXPECT_NE(error_of([&] { o.integer("bad", 0); }).find("'bad'"), std::string::npos);
  EXPECT_NE(error_of([&] { o.number("bad", 0); }).find("12abc"), std::string::npos);
  EXPECT_NE(error_of([&] { o.flag("flag", false); }).find("'flag'"), std::string::npos);
  EXPECT_NE(error_of([&] { o.choice("p", "x", {"x", "y"}); }).find("x, y"), std::string::npos);
}

TEST(ModelOptions, UnusedListsKeysNoGetterRead) {
  ModelOptions o({{"width", "8"}, {"widht", "8"}});
  o.integer("width", 32);
  EXPECT_EQ(o.unused(), std::vector<std::string>{"widht"});
}

TEST(Networks, EveryArchitectureGivesLogitsAtInputSize) {
  torch::manual_seed(0);
  ASSERT_EQ(network_architectures().size(), 5u);
  for (const auto& arch : network_architectures()) {
    if (arch == "category-sam") continue;  // a SAM: tests/models/test_category_sam.cpp
    std::map<std::string, std::string> o{{"width", "4"}};
    if (arch == "sam-eunet3plus") o["guidance_channels"] = "8";
    auto net = build_network(arch, 3, ModelOptions(o));
    EXPECT_EQ(net->input_multiple(), 16) << arch;
    EXPECT_EQ(net->out_channels(), 3) << arch;
    EXPECT_EQ(net->needs_guidance(), arch == "sam-eunet3plus") << arch;
    for (auto shape : {std::vector<int64_t>{2, 3, 64, 64}, std::vector<int64_t>{1, 3, 96, 128}}) {
      torch::Tensor guidance;
      if (net->needs_guidance()) guidance = torch::randn({shape[0], 8, 64, 64});
      auto out = net->forward(torch::randn(shape), guidance);
      EXPECT_EQ(out.sizes(), torch::IntArrayRef({shape[0], 3, shape[2], shape[3]})) << arch;
      EXPECT_TRUE(out.isfinite().all().item<bool>()) << arch;
    }
  }
}

TEST(Networks, UNetParameterCountByHand) {
  // width 4, depth 3, 2 outputs; conv k x k (in -> out, bias) = in*out*k*k + out, BN(c) = 2c.
  // encoder  3->4: (3*4*9+4) + 8 + (4*4*9+4) + 8          =  276
  //          4->8: (4*8*9+8) + 16 + (8*8*9+8) + 16        =  912
  //         8->16: (8*16*9+16) + 32 + (16*16*9+16) + 32   = 3552
  // up 16->8 ConvT 2x2: 16*8*4+8 = 520; block 16->8: (16*8*9+8)+16+(8*8*9+8)+16 = 1776
  // up  8->4 ConvT 2x2:  8*4*4+4 = 132; block  8->4: (8*4*9+4)+8+(4*4*9+4)+8    =  456
  // head conv1x1 4->2: 4*2+2 = 10.                                        total = 7634
  auto net = build_network("unet", 2, opts({{"width", "4"}, {"depth", "3"}}));
  EXPECT_EQ(count_parameters(*net), 7634);
  EXPECT_EQ(net->input_multiple(), 4);
  EXPECT_EQ(net->forward(torch::randn({1, 3, 12, 8}), {}).sizes(), torch::IntArrayRef({1, 2, 12, 8}));
}

TEST(Networks, GluEncoderBlockParameterCountByHand) {
  // GLU doubles each conv's outputs: conv 3->8 (3*8*9+8=224) + BN(8) 16 + conv 4->8 (4*8*9+8=296)
  // + BN(8) 16 = 552. The ReLU block 3->4 has 276 (see the U-Net count).
  EXPECT_EQ(count_parameters(*ConvBlock(3, 4, Activation::glu)), 552);
  EXPECT_EQ(count_parameters(*ConvBlock(3, 4, Activation::relu)), 276);
}

TEST(Networks, EUNet3PlusWithReluAndMaxIsUNet3Plus) {
  // The ablation switch: same tree, same parameter count as the plain U-Net3+.
  auto plain = build_network("unet3plus", 2, small({{"depth", "3"}}));
  auto ablated = build_network(
      "eunet3plus", 2, small({{"depth", "3"}, {"activation", "relu"}, {"pool", "max"}, {"dropout", "0"}}));
  auto enhanced = build_network("eunet3plus", 2, small({{"depth", "3"}}));
  EXPECT_EQ(count_parameters(*plain), count_parameters(*ablated));
  // GLU adds per encoder level l (width w_l, input c_l): first conv w_l*(9c_l+1) + BN 2w_l,
  // second conv w_l*(9w_l+1) + BN 2w_l; with c = (3,4,8), w = (4,8,16): 276 + 912 + 3552 = 4740.
  EXPECT_EQ(count_parameters(*enhanced) - count_parameters(*plain), 4740);
}

TEST(Networks, MaxBlurPoolKnownAnswerAndKernelIsNotAParameter) {
  // channel 0 = 1..16 row-major; max pool 2x2 -> [[6,8],[14,16]]; blur with zero padding:
  // (0,0) = (4*6 + 2*8 + 2*14 + 16)/16 = 5.25      (0,1) = (4*8 + 2*6 + 2*16 + 14)/16 = 5.625
  // (1,0) = (4*14 + 2*16 + 2*6 + 8)/16 = 6.75      (1,1) = (4*16 + 2*14 + 2*8 + 6)/16 = 7.125
  // channel 1 = 2 * channel 0 (depthwise: no mixing between channels).
  auto ramp = torch::arange(1, 17, torch::kFloat).view({1, 1, 4, 4});
  MaxBlurPool pool;
  auto out = pool(torch::cat({ramp, 2 * ramp}, 1));
  auto expected = torch::tensor({5.25f, 5.625f, 6.75f, 7.125f}).view({1, 1, 2, 2});
  EXPECT_TRUE(torch::allclose(out, torch::cat({expected, 2 * expected}, 1)));
  EXPECT_TRUE(pool->parameters().empty());
  EXPECT_EQ(pool->buffers().size(), 1u);
  auto net = build_network("eunet3plus", 1, small({{"depth", "2"}}));
  for (const auto& p : net->named_parameters()) EXPECT_EQ(p.key().find("blur"), std::string::npos) << p.key();
  bool found = false;
  for (const auto& b : net->named_buffers()) found |= b.key() == "encoder.down.blur_pool.blur";
  EXPECT_TRUE(found);
}

TEST(Networks, GluUnitKnownAnswer) {
  // 1x1 input x = 2, only the centre tap matters. Linear half: 1.5*2 + 0.5 = 3.5; gate half:
  // 0*2 + ln 3 -> sigmoid = 0.75. Eval BatchNorm with fresh statistics divides by sqrt(1 + 1e-5).
  ConvNormAct unit(1, 1, Activation::glu);
  unit->eval();
  torch::NoGradGuard no_grad;
  unit->conv->weight.zero_();
  unit->conv->weight[0][0][1][1] = 1.5;
  unit->conv->bias.copy_(torch::tensor({0.5f, static_cast<float>(std::log(3.0))}));
  const double s = std::sqrt(1.0 + 1e-5);
  const double expected = 3.5 / s / (1.0 + std::exp(-std::log(3.0) / s));
  EXPECT_NEAR(unit(torch::full({1, 1, 1, 1}, 2.0f)).item<double>(), expected, 1e-6);
  EXPECT_NEAR(expected, 2.625, 1e-4);
}

TEST(Networks, FusedBatchNormGluEqualsGluOfBatchNorm) {
  // The fused unit against LibTorch's own BatchNorm2d then GLU, in double: outputs, gradients of
  // input, scale and shift, running statistics and batch counts, in training and eval mode, for
  // NCHW and channels-last inputs (whose input gradient must stay channels-last).
  for (bool channels_last : {false, true}) {
    torch::manual_seed(7);
    torch::nn::BatchNorm2d fused(6), plain(6);
    fused->to(torch::kDouble);
    plain->to(torch::kDouble);
    {
      torch::NoGradGuard no_grad;
      auto w = torch::rand({6}, torch::kDouble) + 0.5, b = torch::randn({6}, torch::kDouble);
      fused->weight.copy_(w), plain->weight.copy_(w), fused->bias.copy_(b), plain->bias.copy_(b);
    }
    for (bool training : {true, true, false}) {
      fused->train(training);
      plain->train(training);
      auto x = torch::randn({3, 6, 5, 4}, torch::kDouble) * 2 + 1;
      if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      auto xa = x.clone().requires_grad_(), xb = x.clone().requires_grad_();
      auto a = batch_norm_glu(*fused, xa);
      auto b = F::glu(plain->forward(xb), F::GLUFuncOptions(1));
      EXPECT_LT((a - b).abs().max().item<double>(), 1e-12);
      auto g = torch::randn_like(a);
      auto ga = torch::autograd::grad({a}, {xa, fused->weight, fused->bias}, {g});
      auto gb = torch::autograd::grad({b}, {xb, plain->weight, plain->bias}, {g});
      for (size_t i = 0; i < 3; ++i)
        EXPECT_LT((ga[i] - gb[i]).abs().max().item<double>(), 1e-10) << "gradient " << i;
      if (channels_last) {
        EXPECT_TRUE(ga[0].is_contiguous(at::MemoryFormat::ChannelsLast));
      }
      EXPECT_LT((fused->running_mean - plain->running_mean).abs().max().item<double>(), 1e-14);
      EXPECT_LT((fused->running_var - plain->running_var).abs().max().item<double>(), 1e-14);
      EXPECT_EQ(fused->num_batches_tracked.item<int64_t>(), plain->num_batches_tracked.item<int64_t>());
    }
    EXPECT_EQ(fused->num_batches_tracked.item<int64_t>(), 2);
  }
}

TEST(Networks, BatchNormFoldKnownAnswer) {
  // conv: every weight 1, bias 2; BN: mean 1, var 15, eps 1, gamma 2, beta 0.5, so
  // s = 2 / sqrt(16) = 0.5, folded weight 0.5 and bias (2 - 1) * 0.5 + 0.5 = 1.
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 1, 3).padding(1));
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(1).eps(1.0));
  {
    torch::NoGradGuard no_grad;
    conv->weight.fill_(1.0), conv->bias.fill_(2.0);
    bn->running_mean.fill_(1.0), bn->running_var.fill_(15.0);
    bn->weight.fill_(2.0), bn->bias.fill_(0.5);
  }
  bn->eval();
  {
    torch::NoGradGuard no_grad;
    const auto k = fold_batch_norm(*conv, *bn);
    ASSERT_TRUE(k.has_value());
    EXPECT_TRUE(k->weight.eq(0.5).all().item<bool>());
    EXPECT_EQ(k->weight.sizes(), conv->weight.sizes());
    EXPECT_FLOAT_EQ(k->bias.item<float>(), 1.0f);
  }
  // Gradients recorded, or BatchNorm training: no fold.
  EXPECT_FALSE(fold_batch_norm(*conv, *bn).has_value());
  bn->train();
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(fold_batch_norm(*conv, *bn).has_value());
}

TEST(Networks, InferenceWithFoldedBatchNormsEqualsTheUnfoldedNetwork) {
  // Every U-Net-family network in eval mode with random running statistics and affine
  // parameters, in double: the forward without gradients (BatchNorms folded into the
  // convolutions, branch BatchNorms of the U-Net3+ decoder included) against the same forward
  // recording gradients (BatchNorm applied), for NCHW and channels-last weights and input.
  for (const std::string arch : {"unet", "unet3plus", "eunet3plus", "sam-eunet3plus"}) {
    for (bool channels_last : {false, true}) {
      torch::manual_seed(11);
      std::map<std::string, std::string> o{{"width", "4"}};
      if (arch == "sam-eunet3plus") o["guidance_channels"] = "8";
      auto net = build_network(arch, 4, ModelOptions(o));
      net->to(torch::kDouble);
      int norms = 0;
      {
        torch::NoGradGuard no_grad;
        for (auto& m : net->modules(false)) {
          auto* bn = m->as<torch::nn::BatchNorm2dImpl>();
          if (!bn) continue;
          ++norms;
          bn->running_mean.copy_(torch::randn_like(bn->running_mean));
          bn->running_var.copy_(torch::rand_like(bn->running_var) * 3 + 0.2);
          bn->weight.copy_(torch::rand_like(bn->weight) + 0.5);
          bn->bias.copy_(torch::randn_like(bn->bias));
        }
        if (channels_last)
          for (auto& p : net->parameters())
            if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
      }
      EXPECT_GT(norms, 10) << arch;
      net->eval();
      auto x = torch::randn({2, 3, 32, 48}, torch::kDouble);
      if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      torch::Tensor guidance;
      if (net->needs_guidance()) guidance = torch::randn({2, 8, 16, 16}, torch::kDouble);
      torch::Tensor unfolded, folded;
      EXPECT_GT(batch_norm_calls([&] { unfolded = net->forward(x, guidance); }), 0) << arch;
      ASSERT_TRUE(unfolded.requires_grad()) << arch;
      EXPECT_EQ(batch_norm_calls([&] {
                  torch::NoGradGuard no_grad;
                  folded = net->forward(x, guidance);
                }),
                0)
          << arch;
      const double scale = unfolded.abs().max().item<double>();
      EXPECT_GT(scale, 0.1) << arch;
      EXPECT_LT((folded - unfolded).abs().max().item<double>(), 1e-12 * scale)
          << arch << (channels_last ? " channels-last" : " NCHW");
    }
  }
}

TEST(Networks, InputNotAMultipleIsAModelError) {
  auto net = build_network("unet3plus", 1, small());
  EXPECT_NE(error_of([&] { net->forward(torch::randn({1, 3, 60, 64}), {}); }).find("multiple of 16"),
            std::string::npos);
  EXPECT_NE(error_of([&] { net->forward(torch::randn({1, 1, 64, 64}), {}); }).find("N x 3 x H x W"),
            std::string::npos);
}

TEST(Networks, SamGuidedNetworkRejectsMissingOrWrongGuidance) {
  auto net = build_network("sam-eunet3plus", 1, small({{"depth", "2"}, {"guidance_channels", "8"}}));
  EXPECT_NE(error_of([&] { net->forward(torch::randn({1, 3, 16, 16}), {}); }).find("guidance"),
            std::string::npos);
  EXPECT_NE(error_of([&] { net->forward(torch::randn({1, 3, 16, 16}), torch::randn({1, 4, 8, 8})); })
                .find("guidance_channels"),
            std::string::npos);
}

TEST(Networks, BuildErrorsNameTheCause) {
  EXPECT_NE(error_of([] { build_network("unet", 1, opts({{"widht", "8"}})); }).find("'widht'"),
            std::string::npos);
  // An option of another architecture is as wrong as a misspelt one.
  EXPECT_NE(error_of([] { build_network("unet3plus", 1, opts({{"activation", "glu"}})); })
                .find("'activation'"),
            std::string::npos);
  EXPECT_NE(error_of([] { build_network("unet", 1, opts({{"width", "12abc"}})); }).find("'width'"),
            std::string::npos);
  EXPECT_NE(error_of([] { build_network("eunet3plus", 1, opts({{"pool", "avg"}})); }).find("maxblur"),
            std::string::npos);
  EXPECT_NE(error_of([] { build_network("unet", 1, opts({{"depth", "1"}})); }).find("'depth'"),
            std::string::npos);
  EXPECT_NE(error_of([] { build_network("sam-eunet3plus", 1, opts({{"attention_heads", "3"}})); })
                .find("attention_heads"),
            std::string::npos);
  EXPECT_NE(error_of([] { build_network("unet", 0, ModelOptions()); }).find("out_channels"), std::string::npos);
  EXPECT_NE(error_of([] { build_network("segnet", 1, ModelOptions()); }).find("unet3plus"), std::string::npos);
}
