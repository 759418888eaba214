// The fp32 linear through oneDNN (sam/cpu_linear.h): same products as LibTorch's linear for every
// input layout, LibTorch's own path wherever autograd or autocast is involved, and the process-wide
// choice honouring NUCLEISAM_FP32_GEMM; the 2 x 2 transposed convolution as a matrix product; GELU
// on every dense layout.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <cmath>
#include <cstdlib>

#include "nucleisam/models/autocast.h"
#include "nucleisam/sam/cpu_linear.h"

using namespace nucleisam::sam;
namespace F = torch::nn::functional;

namespace {

double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

TEST(CpuLinear, OneDnnMatchesLibTorchLinearForEveryLayout) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  const auto w = torch::randn({5, 33});
  const auto b = torch::randn({5});
  // 2-D, 4-D tokens (B, H, W, C), a transposed (non-contiguous) input, a single token.
  const std::vector<torch::Tensor> inputs = {torch::randn({7, 33}), torch::randn({2, 3, 4, 33}),
                                             torch::randn({33, 6}).t(), torch::randn({33})};
  for (const auto& x : inputs) {
    const auto expected = F::linear(x, w, b);
    const auto got = linear_onednn(x, w, b);
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_LT(max_rel_diff(got, expected), 1e-5) << x.sizes();
    EXPECT_LT(max_rel_diff(linear_onednn(x, w, torch::Tensor()), F::linear(x, w)), 1e-5) << "no bias";
  }
  // Known answer by hand: [1 2] . [[1 0] [1 1] [0 2]]^T + [0 1 2] = [1 4 6].
  const auto y = linear_onednn(torch::tensor({1.f, 2.f}), torch::tensor({1.f, 0.f, 1.f, 1.f, 0.f, 2.f}).view({3, 2}),
                               torch::tensor({0.f, 1.f, 2.f}));
  EXPECT_TRUE(torch::allclose(y, torch::tensor({1.f, 4.f, 6.f}))) << y;
}

TEST(CpuLinear, KeepsLibTorchsPathWhenGradientsAreNeeded) {
  torch::manual_seed(4);
  torch::nn::Linear layer(8, 3);
  const auto x = torch::randn({4, 8}, torch::requires_grad());
  const auto y = linear(layer, x);
  // Bit-identical to LibTorch (the same kernel), and differentiable.
  EXPECT_TRUE(torch::equal(y, layer(x)));
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), layer->weight.sum(0).expand({4, 8})));
}

TEST(CpuLinear, LeavesBf16AutocastToLibTorch) {
  torch::manual_seed(5);
  torch::NoGradGuard no_grad;
  torch::nn::Linear layer(16, 8);
  const auto x = torch::randn({10, 16});
  nucleisam::models::Bf16AutocastScope autocast(true);
  const auto y = linear(layer, x);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y, layer(x)));
}

TEST(CpuLinear, WithoutGradientsFollowsTheProcessChoice) {
  torch::manual_seed(6);
  torch::NoGradGuard no_grad;
  const auto w = torch::randn({6, 12}), b = torch::randn({6}), x = torch::randn({9, 12});
  const auto& choice = fp32_gemm_choice();
  EXPECT_FALSE(choice.reason.empty());
  const auto expected = choice.path == Fp32GemmPath::onednn ? linear_onednn(x, w, b) : F::linear(x, w, b);
  EXPECT_TRUE(torch::equal(linear(x, w, b), expected)) << to_string(choice.path) << ": " << choice.reason;
}

// The environment variable decides before any probe; each case in a fresh process.
TEST(CpuLinearDeathTest, EnvironmentOverridesTheProbe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  if (!at::hasMKLDNN()) GTEST_SKIP() << "LibTorch without oneDNN always uses the BLAS";
  EXPECT_EXIT(
      {
        setenv("NUCLEISAM_FP32_GEMM", "blas", 1);
        std::exit(fp32_gemm_choice().path == Fp32GemmPath::blas ? 7 : 8);
      },
      testing::ExitedWithCode(7), "");
  EXPECT_EXIT(
      {
        setenv("NUCLEISAM_FP32_GEMM", "onednn", 1);
        std::exit(fp32_gemm_choice().path == Fp32GemmPath::onednn &&
                          fp32_gemm_choice().reason == "NUCLEISAM_FP32_GEMM=onednn"
                      ? 7
                      : 8);
      },
      testing::ExitedWithCode(7), "");
}

}  // namespace

// The 2 x 2, stride 2 transposed convolution as a matrix product: in double, the same values as
// LibTorch's conv_transpose2d (a hand-computed pixel too), with and without bias, from NCHW and
// channels-last inputs, and the same gradients; under bf16 autocast the decoder's path takes it
// (a channels-last bf16 result within bf16 rounding of fp32); fp32 keeps LibTorch's operation.
TEST(ConvTranspose2x2, MatrixProductFormEqualsLibTorchsTransposedConvolution) {
  torch::manual_seed(9);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto x = torch::randn({2, 6, 3, 5}, opts), w = torch::randn({6, 4, 2, 2}, opts), b = torch::randn({4}, opts);
  for (bool channels_last : {false, true}) {
    const auto xin = channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
    for (bool with_bias : {true, false}) {
      const auto bias = with_bias ? b : torch::Tensor();
      const auto got = conv_transpose_2x2_as_product(xin, w, bias);
      const auto want = at::conv_transpose2d(x, w, bias, {2, 2});
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT((got - want).abs().max().item<double>(), 1e-12);
      // Output pixel (2i + a, 2j + b) of channel o: sum over c of x[c, i, j] w[c, o, a, b], plus bias.
      const int64_t n = 1, o = 2, i = 1, j = 3, a = 1, bb = 0;
      double by_hand = with_bias ? b[o].item<double>() : 0;
      for (int64_t c = 0; c < 6; ++c) by_hand += x[n][c][i][j].item<double>() * w[c][o][a][bb].item<double>();
      EXPECT_NEAR(got[n][o][2 * i + a][2 * j + bb].item<double>(), by_hand, 1e-12);
    }
  }
  // Gradients through the product form equal those through the convolution.
  auto xa = x.clone().requires_grad_(), wa = w.clone().requires_grad_(), ba = b.clone().requires_grad_();
  auto xb = x.clone().requires_grad_(), wb = w.clone().requires_grad_(), bb = b.clone().requires_grad_();
  const auto up = torch::randn({2, 4, 6, 10}, opts);
  (conv_transpose_2x2_as_product(xa, wa, ba) * up).sum().backward();
  (at::conv_transpose2d(xb, wb, bb, {2, 2}) * up).sum().backward();
  EXPECT_LT((xa.grad() - xb.grad()).abs().max().item<double>(), 1e-12);
  EXPECT_LT((wa.grad() - wb.grad()).abs().max().item<double>(), 1e-12);
  EXPECT_LT((ba.grad() - bb.grad()).abs().max().item<double>(), 1e-12);
  EXPECT_THROW(conv_transpose_2x2_as_product(x, torch::randn({6, 4, 3, 3}, opts), b), c10::Error);
}

TEST(ConvTranspose2x2, Bf16AutocastTakesTheProductFp32KeepsLibTorch) {
  torch::manual_seed(10);
  torch::NoGradGuard no_grad;
  torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(32, 8, 2).stride(2));
  const auto x = torch::randn({2, 32, 16, 16});
  const auto reference = layer(x);
  EXPECT_TRUE(torch::equal(conv_transpose_2x2(*layer, x), reference));  // fp32: LibTorch's own operation
  nucleisam::models::Bf16AutocastScope autocast(true);
  const auto y = conv_transpose_2x2(*layer, x);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(y.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_EQ(y.sizes(), reference.sizes());
  // Products of bf16-rounded operands over 32 channels, one rounding of the result: within 2%.
  EXPECT_LT(max_rel_diff(y.to(torch::kFloat32), reference), 0.02);
  torch::nn::ConvTranspose2d padded(torch::nn::ConvTranspose2dOptions(32, 8, 2).stride(2).padding(1));
  EXPECT_THROW(conv_transpose_2x2(*padded, x), c10::Error);
}

// GELU on any dense layout (sam::gelu_dense): the erf form's values, computed here in double with
// std::erf, for channels-last and permuted tensors in fp32 and bf16 (the result keeps the input's
// strides, and the values a contiguous copy gets bit for bit), non-dense inputs (LibTorch's own
// path), size-1 dimensions, and the derivative Phi(x) + x phi(x) through the views.
namespace {

double gelu_by_hand(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// Largest |got - gelu(x)| over the elements, each allowed `rel` of its own magnitude plus `abs`.
void expect_gelu_values(const torch::Tensor& x, const torch::Tensor& got, double rel, double abs) {
  ASSERT_EQ(got.sizes(), x.sizes());
  const auto xs = x.to(torch::kFloat64).contiguous(), gs = got.to(torch::kFloat64).contiguous();
  const double* xp = xs.data_ptr<double>();
  const double* gp = gs.data_ptr<double>();
  int64_t bad = 0;
  for (int64_t i = 0; i < xs.numel(); ++i) {
    const double want = gelu_by_hand(xp[i]);
    if (std::abs(gp[i] - want) > rel * std::abs(want) + abs) ++bad;
  }
  EXPECT_EQ(bad, 0) << "of " << xs.numel() << " elements";
}

}  // namespace

TEST(DenseGelu, ValuesAndStridesForEveryDenseLayout) {
  torch::manual_seed(11);
  const auto x = 3 * torch::randn({2, 5, 6, 7});
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // bf16: the result rounded to bf16 (2^-8 relative); LibTorch's own bf16 loop (the non-dense
    // case) also rounds inside, 1 + erf(x / sqrt 2) cancelling for x < -2: absolute 1e-2 there.
    const double rel = dtype == torch::kBFloat16 ? 1.0 / 128 : 1e-5;
    const double abs = dtype == torch::kBFloat16 ? 1e-2 : 1e-6;
    const auto xd = x.to(dtype);
    const std::vector<torch::Tensor> layouts = {
        xd, xd.contiguous(torch::MemoryFormat::ChannelsLast),
        xd.permute({3, 1, 0, 2}).contiguous().permute({2, 1, 3, 0}),  // an arbitrary memory order
        xd.transpose(1, 3)};                                         // a view of a contiguous tensor
    for (const auto& in : layouts) {
      const auto got = gelu_dense(in);
      EXPECT_EQ(got.scalar_type(), dtype);
      EXPECT_EQ(got.strides(), in.strides());
      expect_gelu_values(in, got, rel, abs);
      // Bit for bit what a contiguous copy gets (oneDNN's GELU, fp32 arithmetic inside).
      EXPECT_TRUE(torch::equal(got, torch::gelu(in.contiguous())));
    }
    // Not dense (every other column): LibTorch's own path, same values.
    const auto sparse = xd.slice(3, 0, 7, 2);
    expect_gelu_values(sparse, gelu_dense(sparse), rel, abs);
    // Size-1 dimensions whose strides tie with others.
    const auto one_channel = xd.slice(1, 0, 1).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto got = gelu_dense(one_channel);
    expect_gelu_values(one_channel, got, rel, abs);
  }
}

TEST(DenseGelu, GradientThroughTheViewsIsTheDerivative) {
  torch::manual_seed(12);
  const auto x =
      (3 * torch::randn({2, 4, 5, 3}, torch::kFloat64)).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto leaf = x.clone().requires_grad_();
  const auto up = torch::randn({2, 4, 5, 3}, torch::kFloat64);
  (gelu_dense(leaf) * up).sum().backward();
  const auto xs = x.contiguous(), us = up.contiguous(), gs = leaf.grad().contiguous();
  double worst = 0;
  for (int64_t i = 0; i < xs.numel(); ++i) {
    const double v = xs.data_ptr<double>()[i];
    const double phi = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
    const double want = us.data_ptr<double>()[i] * (0.5 * (1.0 + std::erf(v / std::sqrt(2.0))) + v * phi);
    worst = std::max(worst, std::abs(gs.data_ptr<double>()[i] - want));
  }
  EXPECT_LT(worst, 1e-12);
}

// gelu_owned: in place (the input's own storage, GELU's values) when no graph is recorded; a new
// tensor with the GELU gradient when one is, the input untouched.
TEST(GeluOwned, InPlaceOnlyWithoutAGraph) {
  torch::manual_seed(13);
  const auto x = 3 * torch::randn({4, 6, 5});
  {
    torch::NoGradGuard no_grad;
    auto owned = x.clone();
    const auto y = gelu_owned(owned);
    EXPECT_EQ(y.data_ptr(), owned.data_ptr());
    EXPECT_TRUE(torch::equal(y, torch::gelu(x)));
  }
  auto leaf = x.clone().requires_grad_();
  auto intermediate = leaf * 1.0;
  const auto y = gelu_owned(intermediate);
  EXPECT_NE(y.data_ptr(), intermediate.data_ptr());
  EXPECT_TRUE(torch::equal(intermediate, x));
  EXPECT_TRUE(torch::equal(y, torch::gelu(x)));
  y.sum().backward();
  const auto by_formula =
      0.5 * (1 + torch::erf(x / std::sqrt(2.0))) + x * torch::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
  EXPECT_LT((leaf.grad() - by_formula).abs().max().item<double>(), 1e-5);
}
