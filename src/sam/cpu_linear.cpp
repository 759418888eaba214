// Linear layers through oneDNN in fp32 on CPUs where that beats the BLAS (see the header).

#include "nucleisam/sam/cpu_linear.h"

#include <ATen/autocast_mode.h>
#include <ATen/ops/mkldnn_convolution.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "nucleisam/log.h"

namespace nucleisam::sam {
namespace {

bool onednn_usable() { return at::hasMKLDNN() && at::globalContext().userEnabledMkldnn(); }

// Milliseconds one call of f() takes.
template <typename F>
double time_ms(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Fp32GemmChoice choose() {
  Fp32GemmChoice c;
  if (!onednn_usable()) {
    c.reason = "LibTorch has no oneDNN";
    return c;
  }
  if (const char* env = std::getenv("NUCLEISAM_FP32_GEMM"); env && *env) {
    if (std::strcmp(env, "onednn") == 0 || std::strcmp(env, "blas") == 0) {
      c.path = std::strcmp(env, "onednn") == 0 ? Fp32GemmPath::onednn : Fp32GemmPath::blas;
      c.reason = std::string("NUCLEISAM_FP32_GEMM=") + env;
      return c;
    }
    log::warn("NUCLEISAM_FP32_GEMM='", env, "' is not blas or onednn; probing instead");
  }
  // A token matrix the size of one SAM window batch times a ViT-B projection: large enough to be
  // compute-bound, small enough to cost a few tens of milliseconds.
  // Deterministic values (the global random generator is not touched: training replays it).
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::arange(512 * 768, torch::kFloat32).mul_(0.37f).sin_().reshape({512, 768});
  const torch::Tensor w = torch::arange(768 * 768, torch::kFloat32).mul_(0.11f).cos_().mul_(0.03f).reshape({768, 768});
  const torch::Tensor b = torch::zeros({768}, torch::kFloat32);
  // A warm-up each, then alternate the two so that a burst of load elsewhere hits both alike.
  torch::nn::functional::linear(x, w, b);
  linear_onednn(x, w, b);
  std::vector<double> blas, onednn;
  for (int round = 0; round < 3; ++round) {
    blas.push_back(time_ms([&] { torch::nn::functional::linear(x, w, b); }));
    onednn.push_back(time_ms([&] { linear_onednn(x, w, b); }));
  }
  const double tb = *std::min_element(blas.begin(), blas.end());
  const double to = *std::min_element(onednn.begin(), onednn.end());
  c.path = to < tb ? Fp32GemmPath::onednn : Fp32GemmPath::blas;
  char buf[96];
  std::snprintf(buf, sizeof buf, "probe: oneDNN %.2f ms, BLAS %.2f ms", to, tb);
  c.reason = buf;
  log::debug("fp32 matrix products: ", to_string(c.path), " (", c.reason, ")");
  return c;
}

}  // namespace

const char* to_string(Fp32GemmPath path) { return path == Fp32GemmPath::onednn ? "oneDNN" : "BLAS"; }

const Fp32GemmChoice& fp32_gemm_choice() {
  static const Fp32GemmChoice choice = choose();
  return choice;
}

torch::Tensor linear_onednn(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t K = x.size(-1), N = weight.size(0);
  // Tokens (M, K) as a 1 x K x 1 x M image in channels-last memory: a view of contiguous tokens.
  const torch::Tensor image = x.reshape({1, 1, -1, K}).contiguous().permute({0, 3, 1, 2});
  const torch::Tensor out =
      at::mkldnn_convolution(image, weight.reshape({N, K, 1, 1}).contiguous(),
                             bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt, {0, 0}, {1, 1},
                             {1, 1}, 1);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  // The result is channels-last (1, N, 1, M): back to (M, N) tokens, again a view.
  return out.permute({0, 2, 3, 1}).reshape(shape);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool needs_grad =
      torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad() ||
                                        (bias.defined() && bias.requires_grad()));
  const bool fp32_cpu = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
                        weight.scalar_type() == torch::kFloat32 &&
                        (!bias.defined() || bias.scalar_type() == torch::kFloat32) && weight.dim() == 2;
  if (fp32_cpu && !needs_grad && x.dim() >= 1 && x.numel() > 0 && !at::autocast::is_cpu_enabled() &&
      fp32_gemm_choice().path == Fp32GemmPath::onednn)
    return linear_onednn(x, weight, bias);
  if (at::autocast::is_cpu_enabled() && x.device().is_cpu() && x.dim() >= 2 && weight.dim() == 2) {
    // Under bf16 autocast, the C++ frontend's linear (a matmul, then `out += bias` with the bias
    // still float32) adds the bias through a float32 copy of the whole bf16 output (67 ms for
    // one ViT-B qkv layer at 1024). at::linear is itself an autocast operation: it casts the bias
    // too, and on tokens flattened to a matrix the bias goes into the product (addmm).
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = weight.size(0);
    return at::linear(x.reshape({-1, x.size(-1)}), weight, bias).view(shape);
  }
  return torch::nn::functional::linear(x, weight, bias);
}

torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return linear(x, layer->weight, layer->bias);
}

torch::Tensor conv_transpose_2x2_as_product(const torch::Tensor& x, const torch::Tensor& weight,
                                            const torch::Tensor& bias) {
  TORCH_CHECK(x.dim() == 4 && weight.dim() == 4 && weight.size(0) == x.size(1) && weight.size(2) == 2 &&
                  weight.size(3) == 2,
              "conv_transpose_2x2: expected x (B, Ci, H, W) and weight (Ci, Co, 2, 2)");
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = weight.size(1);
  // Columns of the product: (co, a, b) for output pixel (2i + a, 2j + b), the weight's own order,
  // so (Ci, 4 Co) is a view; at::linear takes its transpose without a copy.
  const torch::Tensor bias4 = bias.defined() ? bias.repeat_interleave(4) : torch::Tensor();
  const torch::Tensor tokens = x.permute({0, 2, 3, 1}).reshape({B * H * W, Ci});  // a view if channels-last
  const torch::Tensor y = at::linear(tokens, weight.reshape({Ci, Co * 4}).t(), bias4);
  // (B, H, W, Co, a, b) -> (B, H, a, W, b, Co): channels-last storage of (B, Co, 2H, 2W).
  return y.view({B, H, W, Co, 2, 2})
      .permute({0, 1, 4, 2, 5, 3})
      .contiguous()
      .view({B, 2 * H, 2 * W, Co})
      .permute({0, 3, 1, 2});
}

torch::Tensor conv_transpose_2x2(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16 &&
      x.device().is_cpu())
    return conv_transpose_2x2_as_product(x, weight, bias);
  return at::conv_transpose2d(x, weight, bias, {2, 2});
}

torch::Tensor conv_transpose_2x2(const torch::nn::ConvTranspose2dImpl& layer, const torch::Tensor& x) {
  const auto& o = layer.options;
  const auto all = [](c10::IntArrayRef a, int64_t v) { return a.size() == 2 && a[0] == v && a[1] == v; };
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  TORCH_CHECK(all(o.kernel_size(), 2) && all(o.stride(), 2) && padding && all(*padding, 0) &&
                  all(o.output_padding(), 0) && all(o.dilation(), 1) && o.groups() == 1,
              "conv_transpose_2x2: the layer is not a plain 2 x 2, stride 2 transposed convolution");
  return conv_transpose_2x2(x, layer.weight, layer.bias);
}

torch::Tensor gelu_dense(const torch::Tensor& x) {
  if (x.is_contiguous() || !x.is_non_overlapping_and_dense()) return torch::gelu(x);
  // Dimensions from the largest stride to the smallest: the order of x in memory.
  std::vector<int64_t> order(static_cast<size_t>(x.dim()));
  std::iota(order.begin(), order.end(), int64_t{0});
  const auto strides = x.strides();
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return strides[a] > strides[b]; });
  const torch::Tensor in_memory_order = x.permute(order);
  if (!in_memory_order.is_contiguous()) return torch::gelu(x);
  std::vector<int64_t> back(order.size());
  for (size_t i = 0; i < order.size(); ++i) back[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
  return torch::gelu(in_memory_order).permute(back);
}

torch::Tensor gelu_owned(torch::Tensor x) {
  if (torch::GradMode::is_enabled()) return torch::gelu(x);
  return torch::gelu_(x);
}

}  // namespace nucleisam::sam
