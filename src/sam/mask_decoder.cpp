// SAM mask decoder and its two-way transformer, in the official operation order (the first
// layer's self-attention replaces the tokens without positional encoding or residual; every
// other attention adds its residual before the LayerNorm). LayerNorm inputs are float32 (a no-op
// in fp32): under bf16 autocast the attention and MLP outputs are bf16, which LibTorch 1.13's CPU
// LayerNorm with float32 weights refuses.
#include "nucleisam/sam/mask_decoder.h"

#include <cmath>

#include "nucleisam/sam/cpu_linear.h"

namespace nucleisam::sam {

DecoderAttentionImpl::DecoderAttentionImpl(int64_t dim, int64_t heads, int64_t downsample_rate)
    : num_heads(heads) {
  const int64_t internal = dim / downsample_rate;
  TORCH_CHECK(internal % heads == 0, "num_heads must divide the attention's internal dim");
  q_proj = register_module("q_proj", torch::nn::Linear(dim, internal));
  k_proj = register_module("k_proj", torch::nn::Linear(dim, internal));
  v_proj = register_module("v_proj", torch::nn::Linear(dim, internal));
  out_proj = register_module("out_proj", torch::nn::Linear(internal, dim));
}

namespace {

torch::Tensor separate_heads(const torch::Tensor& x, int64_t heads) {
  return x.reshape({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

torch::Tensor recombine_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                            const torch::Tensor& v_in) {
  auto q = separate_heads(linear(q_proj, q_in), num_heads);
  auto k = separate_heads(linear(k_proj, k_in), num_heads);
  auto v = separate_heads(linear(v_proj, v_in), num_heads);
  auto attn = torch::matmul(q, k.permute({0, 1, 3, 2}));
  attn = attn / std::sqrt(static_cast<double>(q.size(3)));
  attn = torch::softmax(attn, -1);
  return linear(out_proj, recombine_heads(torch::matmul(attn, v)));
}

DecoderMLPBlockImpl::DecoderMLPBlockImpl(int64_t dim, int64_t hidden) {
  lin1 = register_module("lin1", torch::nn::Linear(dim, hidden));
  lin2 = register_module("lin2", torch::nn::Linear(hidden, dim));
}

torch::Tensor DecoderMLPBlockImpl::forward(const torch::Tensor& x) { return linear(lin2, torch::relu(linear(lin1, x))); }

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, bool skip_pe)
    : skip_first_layer_pe(skip_pe) {
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); };
  self_attn = register_module("self_attn", DecoderAttention(dim, heads));
  norm1 = register_module("norm1", ln());
  cross_attn_token_to_image = register_module("cross_attn_token_to_image", DecoderAttention(dim, heads, 2));
  norm2 = register_module("norm2", ln());
  mlp = register_module("mlp", DecoderMLPBlock(dim, mlp_dim));
  norm3 = register_module("norm3", ln());
  norm4 = register_module("norm4", ln());
  cross_attn_image_to_token = register_module("cross_attn_image_to_token", DecoderAttention(dim, heads, 2));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayAttentionBlockImpl::forward(torch::Tensor queries,
                                                                          torch::Tensor keys,
                                                                          const torch::Tensor& query_pe,
                                                                          const torch::Tensor& key_pe) {
  if (skip_first_layer_pe) {
    queries = self_attn(queries, queries, queries);
  } else {
    auto q = queries + query_pe;
    queries = queries + self_attn(q, q, queries);
  }
  queries = norm1(queries.to(torch::kFloat32));

  auto q = queries + query_pe;
  auto k = keys + key_pe;
  queries = norm2((queries + cross_attn_token_to_image(q, k, keys)).to(torch::kFloat32));

  queries = norm3((queries + mlp(queries)).to(torch::kFloat32));

  q = queries + query_pe;
  k = keys + key_pe;
  keys = norm4((keys + cross_attn_image_to_token(k, q, queries)).to(torch::kFloat32));
  return {queries, keys};
}

TwoWayTransformerImpl::TwoWayTransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t mlp_dim) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < depth; ++i) layers->push_back(TwoWayAttentionBlock(dim, heads, mlp_dim, i == 0));
  final_attn_token_to_image = register_module("final_attn_token_to_image", DecoderAttention(dim, heads, 2));
  norm_final_attn =
      register_module("norm_final_attn", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayTransformerImpl::forward(const torch::Tensor& image_embedding,
                                                                       const torch::Tensor& image_pe,
                                                                       const torch::Tensor& point_embedding) {
  auto keys = image_embedding.flatten(2).permute({0, 2, 1});
  auto key_pe = image_pe.flatten(2).permute({0, 2, 1});
  auto queries = point_embedding;
  for (const auto& layer : *layers)
    std::tie(queries, keys) =
        layer->as<TwoWayAttentionBlockImpl>()->forward(queries, keys, point_embedding, key_pe);
  auto q = queries + point_embedding;
  auto k = keys + key_pe;
  queries = norm_final_attn((queries + final_attn_token_to_image(q, k, keys)).to(torch::kFloat32));
  return {queries, keys};
}

DecoderMLPImpl::DecoderMLPImpl(int64_t in, int64_t hidden, int64_t out, int64_t num_layers) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(torch::nn::Linear(i == 0 ? in : hidden, i == num_layers - 1 ? out : hidden));
}

torch::Tensor DecoderMLPImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    {
      auto* l = layers[i]->as<torch::nn::LinearImpl>();
      x = linear(x, l->weight, l->bias);
    }
    if (i + 1 < n) x = torch::relu(x);
  }
  return x;
}

MaskDecoderImpl::MaskDecoderImpl(int64_t dim, int64_t num_multimask_outputs)
    : num_mask_tokens(num_multimask_outputs + 1) {
  transformer = register_module("transformer", TwoWayTransformer(2, dim, 8, 2048));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, dim));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, dim));
  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(
          torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(dim, dim / 4, 2).stride(2)),
          LayerNorm2d(dim / 4), torch::nn::GELU(),
          torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(dim / 4, dim / 8, 2).stride(2)),
          torch::nn::GELU()));
  output_hypernetworks_mlps = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    output_hypernetworks_mlps->push_back(DecoderMLP(dim, dim, dim / 8, 3));
  iou_prediction_head = register_module("iou_prediction_head", DecoderMLP(dim, 256, num_mask_tokens, 3));
}

std::pair<torch::Tensor, torch::Tensor> MaskDecoderImpl::predict_masks(const torch::Tensor& image_embeddings,
                                                                       const torch::Tensor& image_pe,
                                                                       const torch::Tensor& sparse,
                                                                       const torch::Tensor& dense) {
  auto output_tokens = torch::cat({iou_token->weight, mask_tokens->weight}, 0);
  output_tokens = output_tokens.unsqueeze(0).expand({sparse.size(0), -1, -1});
  auto tokens = torch::cat({output_tokens, sparse}, 1);
  const int64_t n = tokens.size(0);

  // The image embedding is shared by every prompt set in the batch.
  auto src =
      image_embeddings.size(0) == n ? image_embeddings : torch::repeat_interleave(image_embeddings, n, 0);
  src = src + dense;
  auto pos_src = image_pe.size(0) == n ? image_pe : torch::repeat_interleave(image_pe, n, 0);
  const int64_t b = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);

  torch::Tensor hs;
  std::tie(hs, src) = transformer(src, pos_src, tokens);
  auto iou_token_out = hs.select(1, 0);
  auto mask_tokens_out = hs.slice(1, 1, 1 + num_mask_tokens);

  src = src.transpose(1, 2).reshape({b, c, h, w});
  // output_upscaling's layers in turn, its transposed convolutions through conv_transpose_2x2 (a
  // matrix product under CPU bf16 autocast, LibTorch's operation otherwise) and its GELUs through
  // gelu_dense (the bf16 product form leaves the maps channels-last).
  torch::Tensor upscaled = src;
  for (auto& layer : *output_upscaling) {
    if (const auto* up = layer.ptr()->as<torch::nn::ConvTranspose2dImpl>())
      upscaled = conv_transpose_2x2(*up, upscaled);
    else if (const auto* gelu = layer.ptr()->as<torch::nn::GELUImpl>();
             gelu && gelu->options.approximate() == "none")
      upscaled = gelu_dense(upscaled);
    else
      upscaled = layer.forward(upscaled);
  }
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(
        output_hypernetworks_mlps[i]->as<DecoderMLPImpl>()->forward(mask_tokens_out.select(1, i)));
  auto hyper_in = torch::stack(hyper, 1);
  const int64_t uc = upscaled.size(1), uh = upscaled.size(2), uw = upscaled.size(3);
  auto masks = torch::matmul(hyper_in, upscaled.view({b, uc, uh * uw})).view({b, -1, uh, uw});
  auto iou_pred = iou_prediction_head(iou_token_out);
  return {masks, iou_pred};
}

std::pair<torch::Tensor, torch::Tensor> MaskDecoderImpl::forward(const torch::Tensor& image_embeddings,
                                                                 const torch::Tensor& image_pe,
                                                                 const torch::Tensor& sparse,
                                                                 const torch::Tensor& dense,
                                                                 bool multimask_output) {
  auto [masks, iou] = predict_masks(image_embeddings, image_pe, sparse, dense);
  if (multimask_output) return {masks.slice(1, 1), iou.slice(1, 1)};
  return {masks.slice(1, 0, 1), iou.slice(1, 0, 1)};
}

}  // namespace nucleisam::sam
