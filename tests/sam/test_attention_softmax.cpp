// The one-pass relative-position softmax (sam/attention_softmax.h): a known answer by hand, values
// against the official arithmetic in double for float and bfloat16 logits (grids with and without
// a remainder of the 16-lane reductions), both kernel builds, and bad input.
#include "sam/attention_softmax.h"

#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

using namespace nucleisam;

namespace {

// The official encoder's arithmetic: attn.view(R, H, W) + rel_h[..., None] + rel_w[..., None, :],
// softmax over the H * W keys, in double.
torch::Tensor reference(const torch::Tensor& attn, const torch::Tensor& rel_h, const torch::Tensor& rel_w,
                        int64_t H, int64_t W) {
  const int64_t R = attn.numel() / (H * W);
  auto a = attn.to(torch::kDouble).reshape({R, H, W}) + rel_h.to(torch::kDouble).reshape({R, H, 1}) +
           rel_w.to(torch::kDouble).reshape({R, 1, W});
  return torch::softmax(a.reshape({R, H * W}), -1).reshape(attn.sizes());
}

}  // namespace

TEST(AttentionSoftmax, TwoKeysByHand) {
  // Logits 0 and 0, rel_h 5 (the same for both keys: cancels), rel_w 0 and ln 3: softmax 1/4, 3/4.
  auto attn = torch::zeros({1, 2});
  sam::add_rel_pos_softmax_(attn, torch::full({1, 1}, 5.0f),
                            torch::tensor({0.0f, std::log(3.0f)}).view({1, 2}), 1, 2);
  EXPECT_NEAR(attn[0][0].item<float>(), 0.25f, 1e-7);
  EXPECT_NEAR(attn[0][1].item<float>(), 0.75f, 1e-7);
}

TEST(AttentionSoftmax, EqualsTheOfficialArithmeticForFloatAndBfloat16) {
  torch::manual_seed(21);
  struct Grid {
    int64_t rows, H, W;
  };
  // 4096 keys (ViT-B's global attention at 1024: whole lanes), 14 x 14 (a window: 196 keys, a
  // remainder of 4), and a small odd grid.
  for (const Grid g : {Grid{6, 64, 64}, Grid{10, 14, 14}, Grid{3, 5, 7}}) {
    auto logits = torch::randn({2, g.rows, g.H * g.W}) * 4;
    auto rel_h = torch::randn({2, g.rows, g.H}) * 2;
    auto rel_w = torch::randn({2, g.rows, g.W}) * 2;
    auto exact = reference(logits, rel_h, rel_w, g.H, g.W);
    auto f = logits.clone();
    sam::add_rel_pos_softmax_(f, rel_h, rel_w, g.H, g.W);
    EXPECT_LT((f.to(torch::kDouble) - exact).abs().max().item<double>(), 1e-6) << g.H << "x" << g.W;
    EXPECT_NEAR(f.sum(-1).mean().item<double>(), 1.0, 1e-5);
    // bfloat16 logits and position terms (as under autocast): the kernel computes in float and
    // rounds once, so within half a bfloat16 step of the exact softmax of the same rounded inputs.
    auto lb = logits.to(torch::kBFloat16), hb = rel_h.to(torch::kBFloat16), wb = rel_w.to(torch::kBFloat16);
    auto exact_b = reference(lb, hb, wb, g.H, g.W);
    sam::add_rel_pos_softmax_(lb, hb, wb, g.H, g.W);
    EXPECT_EQ(lb.scalar_type(), torch::kBFloat16);
    if (kernel_isa() == KernelIsa::avx512) {
      EXPECT_TRUE(((lb.to(torch::kDouble) - exact_b).abs() <= exact_b * (1.0 / 256) + 1e-12).all().item<bool>())
          << g.H << "x" << g.W;
    } else {  // LibTorch's operations round the logits to bfloat16 after each addition
      EXPECT_LT((lb.to(torch::kDouble) - exact_b).abs().max().item<double>(), 0.05) << g.H << "x" << g.W;
    }
  }
}

TEST(AttentionSoftmax, AllKernelBuildsAgree) {
  // The widest build against the narrower ones (the baseline is LibTorch's operations).
  if (kernel_isa() == KernelIsa::baseline) GTEST_SKIP() << "this CPU runs only the baseline";
  torch::manual_seed(22);
  auto logits = torch::randn({5, 14 * 14}) * 3, rel_h = torch::randn({5, 14}), rel_w = torch::randn({5, 14});
  auto wide = logits.clone();
  sam::add_rel_pos_softmax_(wide, rel_h, rel_w, 14, 14);
  for (const char* isa : {"avx2", "baseline"}) {
    auto other = logits.clone();
    setenv("NUCLEISAM_KERNEL_ISA", isa, 1);
    sam::add_rel_pos_softmax_(other, rel_h, rel_w, 14, 14);
    unsetenv("NUCLEISAM_KERNEL_ISA");
    EXPECT_LT((wide - other).abs().max().item<double>(), 1e-6) << isa;
  }
}

TEST(AttentionSoftmax, RefusesWhatItCannotRead) {
  auto attn = torch::zeros({2, 6});
  EXPECT_THROW(sam::add_rel_pos_softmax_(attn, torch::zeros({2, 2}), torch::zeros({2, 3}), 2, 4), ModelError);
  EXPECT_THROW(sam::add_rel_pos_softmax_(attn, torch::zeros({2, 1}), torch::zeros({2, 3}), 2, 3), ModelError);
  auto dbl = torch::zeros({2, 6}, torch::kDouble);
  EXPECT_THROW(sam::add_rel_pos_softmax_(dbl, torch::zeros({2, 2}), torch::zeros({2, 3}), 2, 3), ModelError);
  auto strided = torch::zeros({6, 2}).t();
  EXPECT_THROW(sam::add_rel_pos_softmax_(strided, torch::zeros({2, 2}), torch::zeros({2, 3}), 2, 3),
               ModelError);
}
