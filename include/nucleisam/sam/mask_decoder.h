// SAM's mask decoder: a two-way transformer between prompt tokens and the image embedding, then
// hypernetwork MLPs that turn mask tokens into 4x-upscaled mask logits, and an IoU head.
// Submodule names equal the official state-dict keys after "mask_decoder.".
#pragma once

#include <torch/torch.h>

#include "nucleisam/sam/layer_norm_2d.h"

namespace nucleisam::sam {

// Multi-head attention with an optional internal down-projection (SAM's decoder Attention).
struct DecoderAttentionImpl : torch::nn::Module {
  DecoderAttentionImpl(int64_t dim, int64_t num_heads, int64_t downsample_rate = 1);
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t num_heads;
};
TORCH_MODULE(DecoderAttention);

// Linear -> ReLU -> Linear (the decoder's MLPBlock, keys lin1/lin2).
struct DecoderMLPBlockImpl : torch::nn::Module {
  DecoderMLPBlockImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear lin1{nullptr}, lin2{nullptr};
};
TORCH_MODULE(DecoderMLPBlock);

struct TwoWayAttentionBlockImpl : torch::nn::Module {
  TwoWayAttentionBlockImpl(int64_t dim, int64_t num_heads, int64_t mlp_dim, bool skip_first_layer_pe);
  // Returns (queries, keys).
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor queries, torch::Tensor keys,
                                                  const torch::Tensor& query_pe, const torch::Tensor& key_pe);
  DecoderAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr}, cross_attn_image_to_token{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  DecoderMLPBlock mlp{nullptr};
  bool skip_first_layer_pe;
};
TORCH_MODULE(TwoWayAttentionBlock);

struct TwoWayTransformerImpl : torch::nn::Module {
  TwoWayTransformerImpl(int64_t depth = 2, int64_t dim = 256, int64_t num_heads = 8, int64_t mlp_dim = 2048);
  // image_embedding, image_pe: B x C x h x w; point_embedding: B x N x C. Returns
  // (tokens B x N x C, image B x hw x C).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embedding,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& point_embedding);
  torch::nn::ModuleList layers{nullptr};
  DecoderAttention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

// Stack of Linear layers with ReLU between them (the decoder's MLP, keys layers.N).
struct DecoderMLPImpl : torch::nn::Module {
  DecoderMLPImpl(int64_t in, int64_t hidden, int64_t out, int64_t num_layers);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(DecoderMLP);

struct MaskDecoderImpl : torch::nn::Module {
  explicit MaskDecoderImpl(int64_t transformer_dim = 256, int64_t num_multimask_outputs = 3);

  // image_embeddings: 1 x C x g x g (or B); image_pe: 1 x C x g x g; sparse: B x N x C;
  // dense: B x C x g x g. Returns (masks B x M x 4g x 4g, iou B x M) with M = 3 (tokens 1..3) when
  // multimask, else 1 (token 0).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embeddings,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& sparse_prompt_embeddings,
                                                  const torch::Tensor& dense_prompt_embeddings,
                                                  bool multimask_output);
  // All 1 + num_multimask_outputs masks and IoU scores, before selection.
  std::pair<torch::Tensor, torch::Tensor> predict_masks(const torch::Tensor& image_embeddings,
                                                        const torch::Tensor& image_pe,
                                                        const torch::Tensor& sparse_prompt_embeddings,
                                                        const torch::Tensor& dense_prompt_embeddings);

  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps{nullptr};
  DecoderMLP iou_prediction_head{nullptr};
  int64_t num_mask_tokens;
};
TORCH_MODULE(MaskDecoder);

}  // namespace nucleisam::sam
