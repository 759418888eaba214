// The one-pass GLU kernels (models/glu_kernel.h): values against LibTorch's GLU and against double
// arithmetic, the float exponential's accuracy over its whole range, gradients against autograd,
// both kernel builds, layouts and bad input.
#include "models/glu_kernel.h"
#include "models/network_blocks.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

using namespace nucleisam;
using namespace nucleisam::models;

namespace {

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max() /
          b.to(torch::kDouble).abs().max().clamp_min(1e-30))
      .item<double>();
}

torch::Tensor in_layout(const torch::Tensor& t, bool channels_last) {
  return t.contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

// The reference: GLU of (x * scale + shift) in double.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& shift) {
  auto y = x.to(torch::kDouble);
  if (scale.defined())
    y = y * scale.to(torch::kDouble).view({1, -1, 1, 1}) + shift.to(torch::kDouble).view({1, -1, 1, 1});
  return at::glu(y, 1);
}

}  // namespace

TEST(GluKernel, ForwardEqualsLibTorchsGluInEveryTypeAndLayout) {
  torch::manual_seed(11);
  for (const bool cl : {false, true})
    for (const int64_t C : {13, 16, 32, 64}) {  // any count, and the three the kernel unrolls
      const auto x = in_layout(torch::randn({3, 2 * C, 7, 5}, torch::kDouble) * 3, cl);
      const auto d = glu_channels_forward(x);
      ASSERT_EQ(d.sizes(), (std::vector<int64_t>{3, C, 7, 5}));
      EXPECT_EQ(d.is_contiguous(at::MemoryFormat::ChannelsLast), cl);
      EXPECT_LT(max_rel(d, at::glu(x, 1)), 1e-15);
      const auto f = glu_channels_forward(x.to(torch::kFloat));
      EXPECT_EQ(f.scalar_type(), torch::kFloat);
      EXPECT_LT(max_rel(f, reference(x.to(torch::kFloat), {}, {})), 1e-6);
      // bfloat16: computed in float and rounded once, so within half a bfloat16 step of the exact
      // result of the same (rounded) inputs.
      const auto xb = x.to(torch::kBFloat16);
      const auto b = glu_channels_forward(xb);
      EXPECT_EQ(b.scalar_type(), torch::kBFloat16);
      EXPECT_EQ(b.is_contiguous(at::MemoryFormat::ChannelsLast), cl);
      const auto exact = reference(xb, {}, {});
      EXPECT_TRUE(
          ((b.to(torch::kDouble) - exact).abs() <= exact.abs() * (1.0 / 256) + 1e-30).all().item<bool>());
    }
}

TEST(GluKernel, FloatSigmoidIsAccurateOverItsWholeRangeAndAtTheExtremes) {
  // The float kernel's sigmoid, read through backward: with y = [a, v] and g = 1, dy[:, 0] = sigmoid(v).
  // Every float v on a fine grid of [-90, 90] against double arithmetic.
  const int64_t n = 180001;
  auto v = torch::linspace(-90, 90, n, torch::kFloat).view({1, 1, 1, n});
  auto x = torch::cat({torch::ones_like(v), v}, 1);
  auto s = glu_channels_backward(torch::ones_like(v), x, {}, {}).narrow(1, 0, 1).to(torch::kDouble);
  auto exact = torch::sigmoid(v.to(torch::kDouble));
  // Relative error down to 1e-30, absolute below (exp(-87) = 1.6e-38 and less are flushed to 0).
  auto err = (s - exact).abs() / exact.clamp_min(1e-30);
  EXPECT_LT(err.max().item<double>(), 1e-6);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  auto special =
      torch::tensor({1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 100.0f, -100.0f, inf, -inf, nan}).view({1, 10, 1, 1});
  auto d = glu_channels_backward(torch::ones({1, 5, 1, 1}), special, {}, {});
  EXPECT_FLOAT_EQ(d[0][0][0][0].item<float>(), 1.0f);  // sigmoid(100)
  EXPECT_EQ(d[0][1][0][0].item<float>(), 0.0f);        // sigmoid(-100), below exp's range
  EXPECT_FLOAT_EQ(d[0][2][0][0].item<float>(), 1.0f);  // sigmoid(inf) = 1
  EXPECT_EQ(d[0][3][0][0].item<float>(), 0.0f);        // sigmoid(-inf) = 0
  EXPECT_TRUE(std::isnan(d[0][4][0][0].item<float>()));
}

TEST(GluKernel, BackwardOfTheAffineMapEqualsAutograd) {
  torch::manual_seed(12);
  for (const bool cl : {false, true})
    for (const bool affine : {false, true})
      for (const int64_t C : {9, 16}) {  // any count, and one the kernel unrolls
        auto x = in_layout(torch::randn({2, 2 * C, 6, 4}, torch::kDouble) * 2, cl);
        torch::Tensor scale, shift;
        if (affine) {
          scale = torch::rand({2 * C}, torch::kDouble) + 0.5;
          shift = torch::randn({2 * C}, torch::kDouble);
        }
        auto g = torch::randn({2, C, 6, 4}, torch::kDouble);
        auto xr = x.clone().requires_grad_();
        auto y = affine ? xr * scale.view({1, -1, 1, 1}) + shift.view({1, -1, 1, 1}) : xr * 1.0;
        y.retain_grad();
        at::glu(y, 1).backward(g);
        auto dy = glu_channels_backward(g, x, scale, shift);
        EXPECT_EQ(dy.is_contiguous(at::MemoryFormat::ChannelsLast), cl);
        EXPECT_LT(max_rel(dy, y.grad()), 1e-13) << cl << affine;
        // float and bfloat16: the same gradient computed in float, rounded once.
        auto df = glu_channels_backward(g.to(torch::kFloat), x.to(torch::kFloat),
                                        affine ? scale.to(torch::kFloat) : scale,
                                        affine ? shift.to(torch::kFloat) : shift);
        EXPECT_LT(max_rel(df, y.grad()), 1e-5);
        auto xb = x.to(torch::kBFloat16), gb = g.to(torch::kBFloat16);
        auto db = glu_channels_backward(gb, xb, scale, shift);
        EXPECT_EQ(db.scalar_type(), torch::kBFloat16);
        auto xbr = xb.to(torch::kDouble).requires_grad_();
        auto yb = affine ? xbr * scale.view({1, -1, 1, 1}) + shift.view({1, -1, 1, 1}) : xbr * 1.0;
        yb.retain_grad();
        at::glu(yb, 1).backward(gb.to(torch::kDouble));
        EXPECT_TRUE(((db.to(torch::kDouble) - yb.grad()).abs() <= yb.grad().abs() * (1.0 / 256) + 1e-30)
                        .all()
                        .item<bool>());
      }
}

TEST(GluKernel, AllKernelBuildsAgree) {
  // The widest build against the narrower ones (the baseline is LibTorch's operations).
  if (kernel_isa() == KernelIsa::baseline) GTEST_SKIP() << "this CPU runs only the baseline";
  torch::manual_seed(13);
  for (const auto type : {torch::kFloat, torch::kBFloat16})
    for (const bool cl : {false, true})
      for (const int64_t C : {37, 16, 32}) {  // any count, and two the kernel unrolls
        auto x = in_layout(torch::randn({2, 2 * C, 5, 9}) * 4, cl).to(type);
        auto g = in_layout(torch::randn({2, C, 5, 9}), cl).to(type);
        auto scale = torch::rand({2 * C}) + 0.5, shift = torch::randn({2 * C});
        auto wide_f = glu_channels_forward(x);
        auto wide_b = glu_channels_backward(g, x, scale, shift);
        for (const char* isa : {"avx2", "baseline"}) {
          setenv("NUCLEISAM_KERNEL_ISA", isa, 1);
          auto other_f = glu_channels_forward(x);
          auto other_b = glu_channels_backward(g, x, scale, shift);
          unsetenv("NUCLEISAM_KERNEL_ISA");
          // float: rounding only; bfloat16: LibTorch's GLU rounds after each operation.
          const double tol = type == torch::kFloat ? 1e-6 : 1e-2;
          EXPECT_LT(max_rel(wide_f, other_f), tol) << isa;
          EXPECT_LT(max_rel(wide_b, other_b), tol) << isa;
        }
      }
}

TEST(GluKernel, GluChannelsKeepsAutogradAndRefusesBadInput) {
  // A map that needs a gradient goes through LibTorch's GLU, so autograd still sees it.
  auto y = torch::randn({1, 4, 3, 3}, torch::kDouble).requires_grad_();
  auto out = glu_channels(y, at::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(out.requires_grad());
  EXPECT_TRUE(out.is_contiguous(at::MemoryFormat::ChannelsLast));
  out.sum().backward();
  EXPECT_TRUE(y.grad().defined());
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT(max_rel(glu_channels(y, at::MemoryFormat::Contiguous), at::glu(y, 1)), 1e-15);
  }
  auto x = torch::randn({1, 4, 3, 3});
  EXPECT_THROW(glu_channels_backward(torch::randn({1, 4, 3, 3}), x, {}, {}), ModelError);  // not half
  EXPECT_THROW(glu_channels_backward(torch::randn({1, 2, 3, 2}), x, {}, {}), ModelError);  // other size
  EXPECT_THROW(glu_channels_backward(torch::randn({1, 2, 3, 3}), x, torch::ones({4}), {}), ModelError);
  EXPECT_THROW(glu_channels_backward(torch::randn({1, 2, 3, 3}), x, torch::ones({3}), torch::ones({3})),
               ModelError);
}
