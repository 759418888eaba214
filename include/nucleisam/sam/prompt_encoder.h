// SAM's prompt encoder: points, boxes and a low-res mask become sparse tokens and a dense
// embedding. Submodule names equal the official state-dict keys after "prompt_encoder.".
#pragma once

#include <torch/torch.h>

#include "nucleisam/sam/layer_norm_2d.h"

namespace nucleisam::sam {

// Random Fourier features of normalised (x, y) in [0,1]: [sin(2pi (2c-1) G), cos(...)] with the
// gaussian matrix G (2 x C/2) stored in the checkpoint.
struct PositionEmbeddingRandomImpl : torch::nn::Module {
  explicit PositionEmbeddingRandomImpl(int num_pos_feats = 128);
  // coords: ... x 2 in [0,1] -> ... x 2*num_pos_feats.
  torch::Tensor encode(const torch::Tensor& coords) const;
  // Dense encoding of an h x w grid at pixel centres -> 2*num_pos_feats x h x w.
  torch::Tensor grid(int64_t h, int64_t w) const;
  // coords in pixels of an image_h x image_w frame (x, y order) -> ... x 2*num_pos_feats.
  torch::Tensor forward_with_coords(const torch::Tensor& coords, int64_t image_h, int64_t image_w) const;

  torch::Tensor positional_encoding_gaussian_matrix;
};
TORCH_MODULE(PositionEmbeddingRandom);

struct PromptEncoderImpl : torch::nn::Module {
  // input_size: side of the (square, padded) encoder input in pixels; the embedding grid is
  // input_size / 16 and the mask input 4x the grid (256 for 1024).
  explicit PromptEncoderImpl(int64_t embed_dim = 256, int64_t input_size = 1024, int64_t mask_in_chans = 16);

  // Changes the frame prompts are given in (the predictor's input size). Weights are unaffected.
  void set_input_size(int64_t input_size);
  int64_t input_size() const { return input_size_; }
  int64_t grid_size() const { return input_size_ / 16; }

  // points: B x N x 2 (x, y) in the input frame, labels: B x N (1 fg, 0 bg, -1 padding);
  // boxes: B x 4; masks: B x 1 x 4g x 4g logits. Any may be undefined. Returns
  // (sparse B x T x embed_dim, dense B x embed_dim x g x g). As in the official code, a padding
  // point is appended to points when no box is given.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& points, const torch::Tensor& labels,
                                                  const torch::Tensor& boxes, const torch::Tensor& masks);
  // 1 x embed_dim x g x g positional encoding of the image embedding grid.
  torch::Tensor dense_pe() const;
  // The dense embedding used when no mask is given: no_mask_embed broadcast to batch x C x g x g.
  torch::Tensor no_mask_dense(int64_t batch) const;

  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings{nullptr};  // 4 x Embedding(1, C): bg, fg, box corner 1, 2
  torch::nn::Embedding not_a_point_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};
  torch::nn::Embedding no_mask_embed{nullptr};
  int64_t embed_dim;

 private:
  torch::Tensor point_weight(int i) const;
  int64_t input_size_;
};
TORCH_MODULE(PromptEncoder);

}  // namespace nucleisam::sam
