// SAM's ViT image encoder. Follows the official ImageEncoderViT arithmetic step by step (scaled q
// for the logits, unscaled q for the decomposed relative positions, (logits + rel_h) + rel_w), with
// two deliberate differences that do not change results beyond float rounding:
//  - global attention is evaluated a few heads at a time, so a 64x64 grid never materialises all
//    heads' 4096x4096 logits at once (ViT-B: 805 MB -> 67 MB per step);
//  - inputs that are not img_size x img_size are accepted by resampling the absolute position
//    embedding (bicubic, align_corners=False, as timm/SAM fine-tuning code does) and the global
//    rel-pos tables (linear, exactly what the official get_rel_pos already does for other sizes).
#include "nucleisam/sam/image_encoder_vit.h"

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/sam/cpu_linear.h"
#include "nucleisam/weights/state_dict.h"
#include "sam/attention_softmax.h"

namespace nucleisam::sam {
namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------------------------
// Configs

ImageEncoderViTConfig ImageEncoderViTConfig::vit_b() { return ImageEncoderViTConfig{}; }

ImageEncoderViTConfig ImageEncoderViTConfig::vit_l() {
  ImageEncoderViTConfig c;
  c.embed_dim = 1024;
  c.depth = 24;
  c.num_heads = 16;
  c.global_attn_indexes = {5, 11, 17, 23};
  return c;
}

ImageEncoderViTConfig ImageEncoderViTConfig::vit_h() {
  ImageEncoderViTConfig c;
  c.embed_dim = 1280;
  c.depth = 32;
  c.num_heads = 16;
  c.global_attn_indexes = {7, 15, 23, 31};
  return c;
}

bool ImageEncoderViTConfig::operator==(const ImageEncoderViTConfig& o) const {
  return img_size == o.img_size && patch_size == o.patch_size && in_chans == o.in_chans &&
         embed_dim == o.embed_dim && depth == o.depth && num_heads == o.num_heads &&
         mlp_ratio == o.mlp_ratio && out_chans == o.out_chans && window_size == o.window_size &&
         global_attn_indexes == o.global_attn_indexes;
}

std::string ImageEncoderViTConfig::name() const {
  if (*this == vit_b()) return "vit_b";
  if (*this == vit_l()) return "vit_l";
  if (*this == vit_h()) return "vit_h";
  std::ostringstream s;
  s << "vit(E=" << embed_dim << ",depth=" << depth << ",heads=" << num_heads << ",global=[";
  for (size_t i = 0; i < global_attn_indexes.size(); ++i) s << (i ? "," : "") << global_attn_indexes[i];
  s << "])";
  return s.str();
}

namespace {

const torch::Tensor& require(const weights::StateDict& state, const std::string& key, int64_t dims,
                             const std::string& source) {
  if (!state.contains(key)) throw CheckpointError(source + ": not a SAM ViT checkpoint: missing " + key);
  const auto& t = state.at(key);
  if (t.dim() != dims)
    throw CheckpointError(source + ": " + key + " has shape " + weights::shape_string(t.sizes()) + ", expected " +
                          std::to_string(dims) + " dimensions");
  return t;
}

}  // namespace

ImageEncoderViTConfig ImageEncoderViTConfig::from_state_dict(const weights::StateDict& state,
                                                             const std::string& source,
                                                             const std::string& prefix) {
  ImageEncoderViTConfig c;
  const auto& proj = require(state, prefix + "patch_embed.proj.weight", 4, source);
  c.embed_dim = static_cast<int>(proj.size(0));
  c.in_chans = static_cast<int>(proj.size(1));
  c.patch_size = static_cast<int>(proj.size(2));
  const auto& pos = require(state, prefix + "pos_embed", 4, source);
  const int grid = static_cast<int>(pos.size(1));
  c.img_size = grid * c.patch_size;
  c.depth = 0;
  while (state.contains(prefix + "blocks." + std::to_string(c.depth) + ".attn.qkv.weight")) ++c.depth;
  if (c.depth == 0) throw CheckpointError(source + ": not a SAM ViT checkpoint: no " + prefix + "blocks.*");

  int head_dim = 0;
  int window = 0;
  c.global_attn_indexes.clear();
  for (int i = 0; i < c.depth; ++i) {
    const std::string key = prefix + "blocks." + std::to_string(i) + ".attn.rel_pos_h";
    const auto& rel = require(state, key, 2, source);
    const int rows = static_cast<int>(rel.size(0));
    const int width = static_cast<int>(rel.size(1));
    if (head_dim != 0 && width != head_dim)
      throw CheckpointError(source + ": " + key + " has head dim " + std::to_string(width) +
                            ", other blocks have " + std::to_string(head_dim));
    head_dim = width;
    if (rows == 2 * grid - 1) {
      c.global_attn_indexes.push_back(i);
    } else {
      if (rows % 2 == 0 || (window != 0 && (rows + 1) / 2 != window))
        throw CheckpointError(source + ": " + key + " has " + std::to_string(rows) +
                              " rows, which fits neither the " + std::to_string(grid) +
                              "-token grid nor the window of the other blocks");
      window = (rows + 1) / 2;
    }
  }
  if (window != 0) c.window_size = window;
  if (head_dim <= 0 || c.embed_dim % head_dim != 0)
    throw CheckpointError(source + ": embed dim " + std::to_string(c.embed_dim) +
                          " is not a multiple of the rel-pos head dim " + std::to_string(head_dim));
  c.num_heads = c.embed_dim / head_dim;
  const auto& lin1 = require(state, prefix + "blocks.0.mlp.lin1.weight", 2, source);
  c.mlp_ratio = static_cast<double>(lin1.size(0)) / c.embed_dim;
  const auto& neck0 = require(state, prefix + "neck.0.weight", 4, source);
  c.out_chans = static_cast<int>(neck0.size(0));
  return c;
}

// ---------------------------------------------------------------------------------------------
// Relative positions

torch::Tensor relative_position_table(int q_size, int k_size, const torch::Tensor& rel_pos) {
  const int64_t max_rel_dist = 2 * std::max(q_size, k_size) - 1;
  torch::Tensor table = rel_pos;
  if (rel_pos.size(0) != max_rel_dist) {
    // (L, C) -> (1, C, L) for a 1-D linear resample along L, then back to (L', C).
    auto resized = F::interpolate(rel_pos.reshape({1, rel_pos.size(0), -1}).permute({0, 2, 1}),
                                  F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{max_rel_dist})
                                      .mode(torch::kLinear)
                                      .align_corners(false));
    table = resized.reshape({-1, max_rel_dist}).permute({1, 0});
  }
  // Index arithmetic of get_rel_pos, in double as Python does it, truncated like .long().
  const double q_scale = std::max(static_cast<double>(k_size) / q_size, 1.0);
  const double k_scale = std::max(static_cast<double>(q_size) / k_size, 1.0);
  std::vector<int64_t> index(static_cast<size_t>(q_size) * k_size);
  for (int i = 0; i < q_size; ++i)
    for (int j = 0; j < k_size; ++j)
      index[static_cast<size_t>(i) * k_size + j] =
          static_cast<int64_t>(i * q_scale - j * k_scale + (k_size - 1) * k_scale);
  // clone(): on the CPU .to() is a no-op, and autograd keeps the index for the backward pass of
  // a trainable rel_pos table, long after `index` is gone.
  auto idx = torch::from_blob(index.data(), {q_size, k_size}, torch::kInt64).clone().to(rel_pos.device());
  return table.index({idx});
}

// ---------------------------------------------------------------------------------------------
// Modules

PatchEmbedImpl::PatchEmbedImpl(int in_chans, int embed_dim, int patch_size) {
  proj = register_module(
      "proj",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, patch_size).stride(patch_size)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) { return proj(x).permute({0, 2, 3, 1}); }

ViTAttentionImpl::ViTAttentionImpl(int dim, int heads, int input_size)
    : num_heads(heads), head_dim(dim / heads) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, dim * 3).bias(true)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_size - 1, head_dim}));
  rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * input_size - 1, head_dim}));
}

torch::Tensor ViTAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t N = H * W;
  const int64_t BH = B * num_heads;
  // (B, N, 3, heads, hd) -> (3, B*heads, N, hd): q | k | v.
  auto qkv_t =
      linear(qkv, x).reshape({B, N, 3, num_heads, head_dim}).permute({2, 0, 3, 1, 4}).reshape({3, BH, N, head_dim});
  auto q = qkv_t[0], k = qkv_t[1], v = qkv_t[2];
  const double scale = std::pow(static_cast<double>(head_dim), -0.5);
  auto Rh = relative_position_table(static_cast<int>(H), static_cast<int>(H), rel_pos_h);
  auto Rw = relative_position_table(static_cast<int>(W), static_cast<int>(W), rel_pos_w);

  // Heads per step, and query rows (whole rows of the token grid) per step, so that one step's
  // logits stay within 16 MiB: blocks up to 32 MiB are reused by malloc (threads.h:
  // keep_freed_memory_in_process) instead of being mapped and faulted in again at every step. A
  // query's logits, softmax and output depend on its own row only, so the split changes nothing.
  const int64_t elem = static_cast<int64_t>(
      at::autocast::is_cpu_enabled() ? 2 : torch::elementSize(torch::typeMetaToScalarType(q.dtype())));
  const int64_t budget = int64_t{16} << 20;
  const int64_t step = std::max<int64_t>(1, budget / (N * N * elem));
  const int64_t rows = std::clamp<int64_t>(budget / (step * W * N * elem), 1, H);  // token-grid rows per step
  auto out = torch::empty({BH, N, head_dim}, x.options());
  const bool fp32_cpu = q.device().is_cpu() && q.scalar_type() == torch::kFloat32 && !at::autocast::is_cpu_enabled();
  for (int64_t s = 0; s < BH; s += step) {
    const int64_t n = std::min(step, BH - s);
    auto ks = k.narrow(0, s, n), vs = v.narrow(0, s, n);
    const bool one_head = n == 1 && fp32_cpu;
    torch::Tensor vt = one_head ? vs[0].t().contiguous() : torch::Tensor();
    for (int64_t h0 = 0; h0 < H; h0 += rows) {
      const int64_t hc = std::min(rows, H - h0);
      auto qs = q.narrow(0, s, n).narrow(1, h0 * W, hc * W);
      // One head at a time (global attention) in fp32 on a CPU: both products are linear layers with k
      // and v^T as the weights, so they take the faster matrix-product path too (cpu_linear.h). Under
      // bf16 autocast, matmul's own bf16 route is faster than linear's for these shapes (measured).
      auto attn = one_head ? linear(qs[0] * scale, ks[0], torch::Tensor()).unsqueeze(0)
                           : torch::matmul(qs * scale, ks.transpose(-2, -1));
      auto r_q = qs.reshape({n, hc, W, head_dim});
      auto rel_h = torch::einsum("bhwc,hkc->bhwk", {r_q, Rh.narrow(0, h0, hc)});
      auto rel_w = torch::einsum("bhwc,wkc->bhwk", {r_q, Rw});
      if (attn.device().is_cpu() && attn.scalar_type() == torch::kBFloat16 && attn.is_contiguous()) {
        // bf16 (autocast) on a CPU: positions and softmax in one pass, in float (attention_softmax.h).
        // fp32 keeps LibTorch's operations, the official code's arithmetic (parity tests).
        add_rel_pos_softmax_(attn, rel_h, rel_w, H, W);
      } else {
        attn.view({n, hc, W, H, W}).add_(rel_h.unsqueeze(-1)).add_(rel_w.unsqueeze(-2));
        attn = torch::softmax(attn, -1);
      }
      out.narrow(0, s, n).narrow(1, h0 * W, hc * W)
          .copy_(one_head ? linear(attn[0], vt, torch::Tensor()).unsqueeze(0) : torch::matmul(attn, vs));
    }
  }
  auto y = out.view({B, num_heads, H, W, head_dim}).permute({0, 2, 3, 1, 4}).reshape({B, H, W, C});
  return linear(proj, y);
}

ViTMLPImpl::ViTMLPImpl(int dim, int hidden) {
  lin1 = register_module("lin1", torch::nn::Linear(dim, hidden));
  lin2 = register_module("lin2", torch::nn::Linear(hidden, dim));
}

torch::Tensor ViTMLPImpl::forward(const torch::Tensor& x) {
  return linear(lin2, gelu_owned(linear(lin1, x)));
}

ViTBlockImpl::ViTBlockImpl(int dim, int heads, double mlp_ratio, int window, int grid_size)
    : window_size(window) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  attn = register_module("attn", ViTAttention(dim, heads, window > 0 ? window : grid_size));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  mlp = register_module("mlp", ViTMLP(dim, static_cast<int>(dim * mlp_ratio)));
}

namespace {

// Non-overlapping ws x ws windows with zero padding at the bottom/right (official window_partition).
torch::Tensor partition_windows(const torch::Tensor& x, int64_t ws, int64_t& Hp, int64_t& Wp) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t pad_h = (ws - H % ws) % ws, pad_w = (ws - W % ws) % ws;
  torch::Tensor padded = x;
  if (pad_h > 0 || pad_w > 0) padded = F::pad(x, F::PadFuncOptions({0, 0, 0, pad_w, 0, pad_h}));
  Hp = H + pad_h;
  Wp = W + pad_w;
  return padded.view({B, Hp / ws, ws, Wp / ws, ws, C})
      .permute({0, 1, 3, 2, 4, 5})
      .contiguous()
      .view({-1, ws, ws, C});
}

torch::Tensor merge_windows(const torch::Tensor& windows, int64_t ws, int64_t Hp, int64_t Wp, int64_t H,
                            int64_t W) {
  const int64_t B = windows.size(0) / (Hp * Wp / ws / ws);
  auto x = windows.view({B, Hp / ws, Wp / ws, ws, ws, -1})
               .permute({0, 1, 3, 2, 4, 5})
               .contiguous()
               .view({B, Hp, Wp, -1});
  if (Hp > H || Wp > W) x = x.slice(1, 0, H).slice(2, 0, W).contiguous();
  return x;
}

}  // namespace

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x_in) {
  // The residual stream and the LayerNorms stay in the parameters' dtype under bf16 autocast
  // (LibTorch 1.13's LayerNorm refuses a bf16 input with float32 weights); the linear layers run
  // in bf16. Without autocast the cast is a no-op (the same tensor): the official arithmetic.
  const torch::Tensor x = x_in.to(norm1->weight.scalar_type());
  auto h = norm1(x);
  if (window_size > 0) {
    const int64_t H = h.size(1), W = h.size(2);
    int64_t Hp = 0, Wp = 0;
    h = partition_windows(h, window_size, Hp, Wp);
    h = attn(h);
    h = merge_windows(h, window_size, Hp, Wp, H, W);
  } else {
    h = attn(h);
  }
  auto y = x + h;
  return y + mlp(norm2(y));  // float32 + bf16 promotes to float32
}

ImageEncoderViTImpl::ImageEncoderViTImpl(const ImageEncoderViTConfig& cfg) : config(cfg) {
  const int grid = cfg.img_size / cfg.patch_size;
  patch_embed = register_module("patch_embed", PatchEmbed(cfg.in_chans, cfg.embed_dim, cfg.patch_size));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, grid, grid, cfg.embed_dim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < cfg.depth; ++i) {
    const bool global = std::find(cfg.global_attn_indexes.begin(), cfg.global_attn_indexes.end(), i) !=
                        cfg.global_attn_indexes.end();
    blocks->push_back(
        ViTBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, global ? 0 : cfg.window_size, grid));
  }
  neck = register_module(
      "neck",
      torch::nn::Sequential(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(cfg.embed_dim, cfg.out_chans, 1).bias(false)),
          LayerNorm2d(cfg.out_chans, 1e-6),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(cfg.out_chans, cfg.out_chans, 3).padding(1).bias(false)),
          LayerNorm2d(cfg.out_chans, 1e-6)));
}

torch::Tensor ImageEncoderViTImpl::pos_embed_for_grid(int grid) const {
  if (grid == pos_embed.size(1) && grid == pos_embed.size(2)) return pos_embed;
  auto chw = pos_embed.permute({0, 3, 1, 2});
  auto resized = F::interpolate(chw, F::InterpolateFuncOptions()
                                         .size(std::vector<int64_t>{grid, grid})
                                         .mode(torch::kBicubic)
                                         .align_corners(false));
  return resized.permute({0, 2, 3, 1});
}

torch::Tensor ImageEncoderViTImpl::embed_patches(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == config.in_chans, "image encoder expects B x ", config.in_chans,
              " x H x W input, got ", x.sizes());
  TORCH_CHECK(x.size(2) == x.size(3) && x.size(2) % config.patch_size == 0,
              "image encoder expects a square input whose side is a multiple of ", config.patch_size,
              ", got ", x.sizes());
  // The tokens in row-major (B, H, W, C) order: patch_embed's result is a permuted view of the
  // convolution's NCHW map, and elementwise results keep their first input's layout, so without
  // this every residual sum down the blocks would carry that layout and each LayerNorm and
  // window partition would copy it (docs/BENCHMARKS.md, C3).
  auto h = patch_embed(x).contiguous();
  return h + pos_embed_for_grid(static_cast<int>(h.size(1)));
}

torch::Tensor ImageEncoderViTImpl::run_blocks(const torch::Tensor& tokens) {
  torch::Tensor h = tokens;
  for (const auto& block : *blocks) h = block->as<ViTBlockImpl>()->forward(h);
  return h;
}

torch::Tensor ImageEncoderViTImpl::apply_neck(const torch::Tensor& tokens) {
  return neck->forward(tokens.permute({0, 3, 1, 2}));
}

torch::Tensor ImageEncoderViTImpl::forward(const torch::Tensor& x) { return apply_neck(run_blocks(embed_patches(x))); }

}  // namespace nucleisam::sam
