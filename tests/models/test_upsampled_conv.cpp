// conv3x3 of a bilinear enlargement without the enlarged map (models/upsampled_conv.h): a known
// answer by hand, values and gradients against the direct form, and the U-Net3+ decoder that uses
// it against the textbook decoder (enlarge, then per-branch conv -> BN -> ReLU).
#include "sam/cpu_kernel_support.h"
#include "models/network_blocks.h"
#include "models/networks.h"
#include "models/upsampled_conv.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace nucleisam;
using namespace nucleisam::models;

namespace F = torch::nn::functional;

namespace {

torch::Tensor enlarge(const torch::Tensor& x, int64_t h, int64_t w) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max() /
          b.to(torch::kDouble).abs().max().clamp_min(1e-30))
      .item<double>();
}

}  // namespace

TEST(UpsampledConv, ShiftSumOfAOnePixelMapByHand) {
  // A 1x1 map enlarged to 2x2 is constant, so each output pixel is the sum of the taps whose
  // shifted position stays inside: at (0,0) taps (ty,tx) in {1,2}^2 -> t = 4,5,7,8.
  auto z = torch::arange(1, 10, torch::kDouble).view({1, 9, 1, 1});  // tap t holds t + 1
  auto out = enlarge_shift_sum(z, 2, 2);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_DOUBLE_EQ(out[0][0][0][0].item<double>(), 5 + 6 + 8 + 9);
  EXPECT_DOUBLE_EQ(out[0][0][0][1].item<double>(), 4 + 5 + 7 + 8);  // taps 3,4,6,7
  EXPECT_DOUBLE_EQ(out[0][0][1][0].item<double>(), 2 + 3 + 5 + 6);  // taps 1,2,4,5
  EXPECT_DOUBLE_EQ(out[0][0][1][1].item<double>(), 1 + 2 + 4 + 5);  // taps 0,1,3,4
  // A bias is added to every pixel; its gradient is the sum of the output gradient.
  auto bias = torch::full({1}, 10.0, torch::kDouble).requires_grad_();
  auto with_bias = enlarge_shift_sum(z, 2, 2, bias);
  EXPECT_DOUBLE_EQ(with_bias[0][0][0][0].item<double>(), 10 + 5 + 6 + 8 + 9);
  EXPECT_DOUBLE_EQ(with_bias[0][0][1][1].item<double>(), 10 + 1 + 2 + 4 + 5);
  auto grad =
      torch::autograd::grad({with_bias}, {bias}, {torch::arange(1, 5, torch::kDouble).view({1, 1, 2, 2})});
  EXPECT_DOUBLE_EQ(grad[0].item<double>(), 1 + 2 + 3 + 4);
  EXPECT_THROW(enlarge_shift_sum(z, 2, 2, torch::zeros({2}, torch::kDouble)), ModelError);  // not C values
}

TEST(UpsampledConv, EqualsTheDirectFormInValueAndGradient) {
  torch::manual_seed(3);
  struct Case {
    int64_t n, cin, cout, h0, w0, h, w;
    bool channels_last;
  };
  // 2x, 4x and 16x enlargements, unequal axes, a size that is not a multiple, NCHW and NHWC; one
  // image of 12 and 16 small rows, which backward splits into blocks of rows (items of their own);
  // the channel counts the kernel unrolls (16, 32, 64); one axis not enlarged, and 9 -> 10 rows.
  for (const Case& c :
       {Case{2, 5, 3, 4, 4, 8, 8, true}, Case{1, 7, 4, 2, 3, 8, 12, false}, Case{3, 4, 2, 1, 1, 16, 16, true},
        Case{1, 3, 5, 3, 5, 7, 11, true}, Case{1, 3, 4, 12, 9, 48, 20, true},
        Case{1, 2, 3, 16, 5, 37, 5, true}, Case{2, 3, 16, 4, 4, 16, 16, true},
        Case{1, 2, 32, 3, 5, 12, 10, true}, Case{1, 2, 64, 2, 2, 8, 8, false},
                        Case{1, 3, 2, 5, 3, 5, 9, true}, Case{2, 2, 3, 9, 4, 10, 4, true}}) {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(c.cin, c.cout, 3).padding(1));
    conv->to(torch::kDouble);
    auto x = torch::randn({c.n, c.cin, c.h0, c.w0}, torch::kDouble);
    if (c.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    x.requires_grad_();
    auto g = torch::randn({c.n, c.cout, c.h, c.w}, torch::kDouble);
    auto fast = conv3x3_of_enlarged(*conv, x, c.h, c.w);
    auto direct = conv->forward(enlarge(x, c.h, c.w));
    ASSERT_EQ(fast.sizes(), direct.sizes());
    EXPECT_LT(max_rel(fast, direct), 1e-12) << c.h0 << "x" << c.w0 << " -> " << c.h << "x" << c.w;
    auto gf = torch::autograd::grad({fast}, {x, conv->weight, conv->bias}, {g});
    auto gd = torch::autograd::grad({direct}, {x, conv->weight, conv->bias}, {g});
    for (size_t i = 0; i < 3; ++i) EXPECT_LT(max_rel(gf[i], gd[i]), 1e-12) << "gradient " << i;
  }
}

TEST(UpsampledConv, FloatAndBfloat16StayCloseToTheDirectForm) {
  torch::manual_seed(4);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(16, 8, 3).padding(1));
  auto x = torch::randn({2, 16, 8, 8}).contiguous(at::MemoryFormat::ChannelsLast);
  auto direct = conv->forward(enlarge(x, 32, 32));
  EXPECT_LT(max_rel(conv3x3_of_enlarged(*conv, x, 32, 32), direct), 1e-5);
  torch::nn::Conv2d half(torch::nn::Conv2dOptions(16, 8, 3).padding(1));
  half->to(torch::kBFloat16);
  auto xb = x.to(torch::kBFloat16);
  auto fast_b = conv3x3_of_enlarged(*half, xb, 32, 32);
  EXPECT_EQ(fast_b.scalar_type(), torch::kBFloat16);
  // bf16 keeps 8 bits of mantissa: both forms round differently, each within ~1% of the exact.
  half->to(torch::kDouble);
  auto exact = half->forward(enlarge(xb.to(torch::kDouble), 32, 32));
  EXPECT_LT(max_rel(fast_b, exact), 0.03);
}

TEST(UpsampledConv, AllKernelBuildsAgree) {
  if (kernel_isa() == KernelIsa::baseline) GTEST_SKIP() << "this CPU runs only the baseline kernels";
  torch::manual_seed(5);
  for (const auto type : {torch::kFloat, torch::kBFloat16})
    for (const int64_t C : {21, 16, 32}) {
      auto z =
          torch::randn({2, 9 * C, 6, 7}).to(type).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
      auto bias = torch::randn({C}, type).requires_grad_();
      auto g = torch::randn({2, C, 23, 29}).to(type);
      auto run = [&](const char* isa) {
        if (isa) setenv("NUCLEISAM_KERNEL_ISA", isa, 1);
        auto out = enlarge_shift_sum(z, 23, 29, bias);
        auto grads = torch::autograd::grad({out}, {z, bias}, {g});
        unsetenv("NUCLEISAM_KERNEL_ISA");
        return std::vector<torch::Tensor>{out, grads[0], grads[1]};
      };
      auto wide = run(nullptr), avx2 = run("avx2"), base = run("baseline");
      // Same sums in the same order; the builds differ only in fused multiply-adds (float) and
      // hence at most in the last bit of a bfloat16 result.
      const double tol = type == torch::kFloat ? 1e-6 : 1e-2;
      for (size_t i = 0; i < 3; ++i)
        EXPECT_LT(max_rel(wide[i], base[i]), tol) << i << " " << type << " " << C;
    }
}

TEST(UpsampledConv, KernelBfloat16ConversionsAreLibTorchs) {
  // Every 16-bit pattern widens to the float LibTorch gives, and narrowing a sweep of floats
  // (ties, halfway points, infinities, NaN, subnormals) rounds as c10::BFloat16 does.
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<uint16_t>(b);
    const float mine = Elem<c10::BFloat16>::widen(bits);
    const float theirs = static_cast<float>(c10::BFloat16(bits, c10::BFloat16::from_bits()));
    if (std::isnan(theirs))
      EXPECT_TRUE(std::isnan(mine));
    else
      ASSERT_EQ(mine, theirs) << b;
  }
  std::vector<float> probes = {0.0f,          -0.0f,     1.0f,     1.00390625f, 1.01171875f,
                               3.14159265f,   -2.71828f, 65504.0f, 1e-40f,      -1e-39f,
                               3.3895314e38f, 3.4e38f,   INFINITY, -INFINITY,   NAN};
  for (uint32_t u = 0x3f800000u; u < 0x3f800000u + 70000u; u += 7) {  // consecutive floats near 1
    float f;
    std::memcpy(&f, &u, sizeof f);
    probes.push_back(f);
  }
  for (const float f : probes) {
    const uint16_t mine = Elem<c10::BFloat16>::narrow(f);
    const uint16_t theirs = c10::BFloat16(f).x;
    ASSERT_EQ(mine, theirs) << f;
  }
}

TEST(UpsampledConv, SameSizeIsThePlainConvolutionAndOtherKernelsAreRefused) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 2, 3).padding(1));
  auto x = torch::randn({1, 2, 4, 4});
  EXPECT_TRUE(torch::equal(conv3x3_of_enlarged(*conv, x, 4, 4), conv->forward(x)));
  torch::nn::Conv2d five(torch::nn::Conv2dOptions(2, 2, 5).padding(2));
  EXPECT_THROW(conv3x3_of_enlarged(*five, x, 8, 8), ModelError);
  EXPECT_THROW(enlarge_shift_sum(torch::zeros({1, 8, 2, 2}), 4, 4), ModelError);  // not 9C
  EXPECT_THROW(enlarge_shift_sum(torch::zeros({1, 9, 4, 4}), 2, 2), ModelError);  // shrinks
}

namespace {

// The decoder as the paper draws it: every source brought to the level's size (max pooling or
// bilinear enlargement), then each branch's own conv -> BN -> ReLU, concatenated, fused.
torch::Tensor textbook_forward(UNet3PlusImpl& net, const torch::Tensor& images, int64_t depth) {
  auto features = net.encoder(images);
  std::vector<torch::Tensor> decoded(depth);
  decoded[depth - 1] = features[depth - 1];
  for (int64_t k = 0; k + 1 < depth; ++k) {
    const int64_t d = depth - 2 - k;
    auto& level = *net.decoder[k];
    auto branches = level.named_children()[0].value()->children();
    const int64_t h = features[d].size(2), w = features[d].size(3);
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < depth; ++s) {
      torch::Tensor src = s <= d ? features[s] : decoded[s];
      if (s < d) src = F::max_pool2d(src, F::MaxPool2dFuncOptions(src.size(2) / h));
      if (s > d) src = enlarge(src, h, w);
      parts.push_back(branches[s]->as<ConvNormActImpl>()->forward(src));
    }
    decoded[d] = level.named_children()[1].value()->as<ConvNormActImpl>()->forward(torch::cat(parts, 1));
  }
  return net.head(decoded[0]);
}

}  // namespace

TEST(UpsampledConv, UNet3PlusDecoderEqualsTheTextbookDecoder) {
  UNet3PlusConfig config;
  config.width = 3;
  config.depth = 4;
  torch::manual_seed(5);
  UNet3PlusImpl fast("unet3plus", 2, config);
  UNet3PlusImpl textbook("unet3plus", 2, config);
  fast.to(torch::kDouble);
  textbook.to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    auto src = fast.named_parameters(), dst = textbook.named_parameters();
    for (const auto& p : src) dst[p.key()].copy_(p.value());
  }
  auto images = torch::randn({2, 3, 16, 16}, torch::kDouble);
  auto g = torch::randn({2, 2, 16, 16}, torch::kDouble);
  for (bool training : {true, false}) {
    fast.train(training);
    textbook.train(training);
    auto a = fast.forward(images, {});
    auto b = textbook_forward(textbook, images, config.depth);
    EXPECT_LT(max_rel(a, b), 1e-10) << (training ? "train" : "eval");
    if (!training) continue;
    auto pa = fast.parameters(), pb = textbook.parameters();
    auto ga = torch::autograd::grad({a}, pa, {g});
    auto gb = torch::autograd::grad({b}, pb, {g});
    // (Biases of convolutions followed by BatchNorm get gradients that are zero up to rounding,
    // so each difference is taken relative to at least 1e-3.)
    for (size_t i = 0; i < ga.size(); ++i)
      EXPECT_LT((ga[i] - gb[i]).abs().max().item<double>() / std::max(gb[i].abs().max().item<double>(), 1e-3),
                1e-9)
          << "parameter " << i;
    // Running statistics and batch counts written back to every branch's BatchNorm.
    auto ba = fast.named_buffers(), bb = textbook.named_buffers();
    ASSERT_EQ(ba.size(), bb.size());
    for (const auto& buf : ba) {
      EXPECT_LT(max_rel(buf.value(), bb[buf.key()]), 1e-12) << buf.key();
      EXPECT_FALSE(torch::equal(buf.value(), torch::zeros_like(buf.value())) &&
                   buf.key().find("running_mean") != std::string::npos)
          << buf.key() << " was not updated";
    }
  }
}
