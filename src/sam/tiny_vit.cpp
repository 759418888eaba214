// MobileSAM's TinyViT image encoder. The arithmetic follows the official tiny_vit_sam.py step by
// step (same op order) so that float32 results match the reference to rounding noise:
//  - window attention pads RAW tokens with zeros and normalises inside the attention, so padded
//    tokens become LayerNorm(0) = bias and take part, unmasked, as keys of the real tokens;
//  - qkv is laid out per head as [q | k | v] (not [all q | all k | all v] as in SAM's ViT);
//  - the attention bias is attention_biases[:, idxs] from the weights (never a stale cache);
//  - GELU is the exact (erf) form, as nn.GELU;
//  - the last PatchMerging keeps the resolution (stride 1), so the output grid is H/16.
// Unlike the official code, spatial sizes come from the input, so any input size works.
#include "nucleisam/sam/tiny_vit.h"

#include "nucleisam/errors.h"
#include "nucleisam/sam/cpu_linear.h"
#include "nucleisam/sam/layer_norm_2d.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace nucleisam::sam {

namespace F = torch::nn::functional;

namespace {

std::string shape_text(const torch::Tensor& x) {
  std::string s = "[";
  for (int64_t i = 0; i < x.dim(); ++i) s += (i ? "," : "") + std::to_string(x.size(i));
  return s + "]";
}

}  // namespace

TinyViTConfig TinyViTConfig::mobile_sam() {
  TinyViTConfig c;
  c.embed_dims = {64, 128, 160, 320};
  c.depths = {2, 2, 6, 2};
  c.num_heads = {2, 4, 5, 10};
  c.window_sizes = {7, 7, 14, 7};
  c.mlp_ratio = 4.0;
  c.mbconv_expand_ratio = 4.0;
  c.local_conv_size = 3;
  c.img_size = 1024;
  c.out_chans = 256;
  c.num_classes = 1000;
  return c;
}

// ---- Conv2d_BN -------------------------------------------------------------------------------

Conv2dBNImpl::Conv2dBNImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                           int64_t groups)
    : stride(stride), padding(pad), groups(groups) {
  c = register_module(
      "c",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(pad).groups(groups).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(1e-5)));
}

torch::Tensor Conv2dBNImpl::forward(const torch::Tensor& x) {
  if (is_training()) return bn->forward(c->forward(x));
  // Eval: fold the BatchNorm into the convolution's weight and bias (recomputed each call from
  // the current weights, so loading new weights needs no extra step). This saves a full pass
  // over the activations per conv; it reorders float rounding by ~1e-7 relative.
  auto scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  auto weight = c->weight * scale.view({-1, 1, 1, 1});
  auto bias = bn->bias - bn->running_mean * scale;
  return torch::conv2d(x, weight, bias, stride, padding, /*dilation=*/1, groups);
}

// ---- attention -------------------------------------------------------------------------------

namespace {
// Offsets (|dr|, |dc|) numbered in order of first appearance, scanning query positions then key
// positions row-major; returns the (N*N) index list and the number of distinct offsets.
std::pair<std::vector<int64_t>, int64_t> bias_index_list(int64_t ws) {
  if (ws <= 0) throw std::invalid_argument("TinyViT window size must be positive");
  const int64_t n = ws * ws;
  std::map<std::pair<int64_t, int64_t>, int64_t> numbering;
  std::vector<int64_t> idxs;
  idxs.reserve(static_cast<size_t>(n * n));
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t q = 0; q < n; ++q) {
      const std::pair<int64_t, int64_t> offset{std::abs(p / ws - q / ws), std::abs(p % ws - q % ws)};
      auto it = numbering.find(offset);
      if (it == numbering.end()) it = numbering.emplace(offset, static_cast<int64_t>(numbering.size())).first;
      idxs.push_back(it->second);
    }
  }
  return {std::move(idxs), static_cast<int64_t>(numbering.size())};
}
}  // namespace

torch::Tensor attention_bias_indices(int64_t window_size) {
  auto list = bias_index_list(window_size).first;
  const int64_t n = window_size * window_size;
  return torch::tensor(list, torch::kInt64).view({n, n});
}

int64_t attention_bias_count(int64_t window_size) { return bias_index_list(window_size).second; }

TinyViTAttentionImpl::TinyViTAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size)
    : num_heads(num_heads), head_dim(dim / num_heads), window_size(window_size) {
  if (num_heads <= 0 || dim % num_heads != 0)
    throw std::invalid_argument("TinyViT attention: dim " + std::to_string(dim) + " is not divisible by " +
                                std::to_string(num_heads) + " heads");
  bias_indices_ = attention_bias_indices(window_size);
  attention_biases =
      register_parameter("attention_biases", torch::zeros({num_heads, attention_bias_count(window_size)}));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor TinyViTAttentionImpl::bias_matrix() {
  if (bias_indices_.device() != attention_biases.device())
    bias_indices_ = bias_indices_.to(attention_biases.device());
  const int64_t n = window_size * window_size;
  return attention_biases.index_select(1, bias_indices_.view({-1})).view({num_heads, n, n});
}

torch::Tensor TinyViTAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1);
  // LayerNorm in the parameters' dtype under bf16 autocast (a no-op otherwise).
  auto h = linear(qkv, norm->forward(x.to(norm->weight.scalar_type())));
  // Per head the 3*head_dim features are [q | k | v].
  auto parts = h.view({b, n, num_heads, 3 * head_dim}).split(head_dim, /*dim=*/3);
  auto q = parts[0].permute({0, 2, 1, 3});
  auto k = parts[1].permute({0, 2, 1, 3});
  auto v = parts[2].permute({0, 2, 1, 3});
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  auto attn = torch::matmul(q, k.transpose(-2, -1)) * scale + bias_matrix();
  attn = attn.softmax(-1);
  auto out = torch::matmul(attn, v).transpose(1, 2).reshape({b, n, num_heads * head_dim});
  return linear(proj, out);
}

// ---- windows ---------------------------------------------------------------------------------

torch::Tensor window_partition(const torch::Tensor& x, int64_t ws) {
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const int64_t pad_b = (ws - h % ws) % ws, pad_r = (ws - w % ws) % ws;
  auto padded = (pad_b > 0 || pad_r > 0) ? F::pad(x, F::PadFuncOptions({0, 0, 0, pad_r, 0, pad_b})) : x;
  const int64_t nh = (h + pad_b) / ws, nw = (w + pad_r) / ws;
  return padded.view({b, nh, ws, nw, ws, c}).transpose(2, 3).reshape({b * nh * nw, ws * ws, c});
}

torch::Tensor window_merge(const torch::Tensor& windows, int64_t ws, int64_t batch, int64_t height,
                           int64_t width) {
  const int64_t ph = (height + ws - 1) / ws * ws, pw = (width + ws - 1) / ws * ws;
  const int64_t c = windows.size(-1);
  auto x = windows.view({batch, ph / ws, pw / ws, ws, ws, c}).transpose(2, 3).reshape({batch, ph, pw, c});
  if (ph != height || pw != width) x = x.slice(1, 0, height).slice(2, 0, width).contiguous();
  return x;
}

// ---- MLP and block ---------------------------------------------------------------------------

TinyViTMlpImpl::TinyViTMlpImpl(int64_t dim, int64_t hidden) {
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor TinyViTMlpImpl::forward(const torch::Tensor& x) {
  return linear(fc2, gelu_owned(linear(fc1, norm->forward(x.to(norm->weight.scalar_type())))));
}

TinyViTBlockImpl::TinyViTBlockImpl(int64_t dim, int64_t num_heads, int64_t window_size, double mlp_ratio,
                                   int64_t local_conv_size)
    : window_size(window_size) {
  attn = register_module("attn", TinyViTAttention(dim, num_heads, window_size));
  mlp = register_module("mlp", TinyViTMlp(dim, static_cast<int64_t>(dim * mlp_ratio)));
  local_conv = register_module("local_conv",
                               Conv2dBN(dim, dim, local_conv_size, 1, local_conv_size / 2, /*groups=*/dim));
}

torch::Tensor TinyViTBlockImpl::forward(const torch::Tensor& tokens, int64_t height, int64_t width) {
  const int64_t b = tokens.size(0), l = tokens.size(1), c = tokens.size(2);
  if (l != height * width)
    throw std::invalid_argument("TinyViT block: " + std::to_string(l) + " tokens for a " +
                                std::to_string(height) + "x" + std::to_string(width) + " grid");
  torch::Tensor attended;
  if (height == window_size && width == window_size) {
    attended = attn->forward(tokens);
  } else {
    auto windows = window_partition(tokens.view({b, height, width, c}), window_size);
    attended = window_merge(attn->forward(windows), window_size, b, height, width).view({b, l, c});
  }
  auto x = tokens + attended;
  x = local_conv->forward(x.transpose(1, 2).reshape({b, c, height, width}));
  // Row-major tokens again: one copy here instead of one in the MLP's LayerNorm and a strided
  // residual sum (the values are the same).
  x = x.view({b, c, l}).transpose(1, 2).contiguous();
  return x + mlp->forward(x);
}

// ---- convolutional parts ---------------------------------------------------------------------

MBConvImpl::MBConvImpl(int64_t dim, double expand_ratio) {
  const auto hidden = static_cast<int64_t>(dim * expand_ratio);
  conv1 = register_module("conv1", Conv2dBN(dim, hidden, 1));
  conv2 = register_module("conv2", Conv2dBN(hidden, hidden, 3, 1, 1, /*groups=*/hidden));
  conv3 = register_module("conv3", Conv2dBN(hidden, dim, 1));
}

torch::Tensor MBConvImpl::forward(const torch::Tensor& x) {
  auto y = gelu_owned(conv1->forward(x));
  y = gelu_owned(conv2->forward(y));
  y = conv3->forward(y);
  if (torch::GradMode::is_enabled()) return torch::gelu(y + x);
  return gelu_owned(y.add_(x));
}

PatchMergingImpl::PatchMergingImpl(int64_t dim, int64_t out_dim, int64_t stride) {
  conv1 = register_module("conv1", Conv2dBN(dim, out_dim, 1));
  conv2 = register_module("conv2", Conv2dBN(out_dim, out_dim, 3, stride, 1, /*groups=*/out_dim));
  conv3 = register_module("conv3", Conv2dBN(out_dim, out_dim, 1));
}

torch::Tensor PatchMergingImpl::forward(const torch::Tensor& x) {
  auto y = gelu_owned(conv1->forward(x));
  y = gelu_owned(conv2->forward(y));
  return conv3->forward(y);
}

// ---- stages and encoder ----------------------------------------------------------------------

TinyViTStageImpl::TinyViTStageImpl(const TinyViTConfig& config, size_t stage) {
  const int64_t dim = config.embed_dims.at(stage);
  const size_t n_stages = config.embed_dims.size();
  torch::nn::ModuleList blocks;
  for (int64_t i = 0; i < config.depths.at(stage); ++i) {
    if (stage == 0) {
      conv_blocks.push_back(MBConv(dim, config.mbconv_expand_ratio));
      blocks->push_back(conv_blocks.back());
    } else {
      attention_blocks.push_back(TinyViTBlock(dim, config.num_heads.at(stage), config.window_sizes.at(stage),
                                              config.mlp_ratio, config.local_conv_size));
      blocks->push_back(attention_blocks.back());
    }
  }
  register_module("blocks", blocks);
  if (stage + 1 < n_stages) {
    // MobileSAM keeps the 1/16 grid: the merge into the last stage does not downsample (the
    // official code decides this from the output width 320/448/576; here it is the position).
    const int64_t stride = (stage + 2 == n_stages) ? 1 : 2;
    downsample = register_module("downsample", PatchMerging(dim, config.embed_dims.at(stage + 1), stride));
  }
}

torch::Tensor TinyViTStageImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = x;
  for (auto& block : conv_blocks) y = block->forward(y);
  if (!attention_blocks.empty()) {
    const int64_t b = y.size(0), c = y.size(1), h = y.size(2), w = y.size(3);
    auto tokens = y.flatten(2).transpose(1, 2);
    for (auto& block : attention_blocks) tokens = block->forward(tokens, h, w);
    y = tokens.transpose(1, 2).reshape({b, c, h, w});
  }
  if (!downsample.is_empty()) y = downsample->forward(y);
  return y;
}

TinyViTImpl::TinyViTImpl(const TinyViTConfig& cfg) : config(cfg) {
  const size_t n = config.embed_dims.size();
  if (n < 2 || config.depths.size() != n || config.num_heads.size() != n || config.window_sizes.size() != n)
    throw std::invalid_argument(
        "TinyViT config: embed_dims, depths, num_heads and window_sizes "
        "must have the same length (at least 2)");
  const int64_t d0 = config.embed_dims[0];

  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  patch_embed_seq = torch::nn::Sequential();
  patch_embed_seq->push_back("0", Conv2dBN(3, d0 / 2, 3, 2, 1));
  patch_embed_seq->push_back("1", torch::nn::GELU());
  patch_embed_seq->push_back("2", Conv2dBN(d0 / 2, d0, 3, 2, 1));
  patch_embed->register_module("seq", patch_embed_seq);

  torch::nn::ModuleList layer_list;
  for (size_t i = 0; i < n; ++i) {
    layers.push_back(TinyViTStage(config, i));
    layer_list->push_back(layers.back());
  }
  register_module("layers", layer_list);

  const int64_t last = config.embed_dims.back();
  norm_head =
      register_module("norm_head", torch::nn::LayerNorm(torch::nn::LayerNormOptions({last}).eps(1e-5)));
  head = register_module("head", torch::nn::Linear(last, config.num_classes));

  neck = torch::nn::Sequential();
  neck->push_back("0", torch::nn::Conv2d(torch::nn::Conv2dOptions(last, config.out_chans, 1).bias(false)));
  neck->push_back("1", LayerNorm2d(config.out_chans));
  neck->push_back(
      "2", torch::nn::Conv2d(
               torch::nn::Conv2dOptions(config.out_chans, config.out_chans, 3).padding(1).bias(false)));
  neck->push_back("3", LayerNorm2d(config.out_chans));
  register_module("neck", neck);

  eval();  // inference module: BatchNorm must use the running statistics from the checkpoint
}

torch::Tensor TinyViTImpl::embed_patches(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != 3)
    throw Error("TinyViT image encoder expects a (B,3,H,W) tensor, got " + shape_text(x));
  return patch_embed_seq->forward(x);
}

torch::Tensor TinyViTImpl::run_layers(torch::Tensor x) {
  for (auto& layer : layers) x = layer->forward(x);
  return neck->forward(x);
}

torch::Tensor TinyViTImpl::forward(torch::Tensor x) { return run_layers(embed_patches(x)); }

}  // namespace nucleisam::sam
