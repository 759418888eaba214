// SAM prompt encoder. The padding-point rule, the +0.5 pixel-centre shift and the order of the
// label-dependent additions follow the official PromptEncoder exactly, since each changes tokens.
#include "nucleisam/sam/prompt_encoder.h"

#include <cmath>

namespace nucleisam::sam {

PositionEmbeddingRandomImpl::PositionEmbeddingRandomImpl(int num_pos_feats) {
  positional_encoding_gaussian_matrix =
      register_buffer("positional_encoding_gaussian_matrix", torch::randn({2, num_pos_feats}));
}

torch::Tensor PositionEmbeddingRandomImpl::encode(const torch::Tensor& coords) const {
  auto c = 2 * coords - 1;
  c = torch::matmul(c, positional_encoding_gaussian_matrix);
  c = 2 * M_PI * c;
  return torch::cat({torch::sin(c), torch::cos(c)}, -1);
}

torch::Tensor PositionEmbeddingRandomImpl::grid(int64_t h, int64_t w) const {
  auto opts = positional_encoding_gaussian_matrix.options();
  auto ones = torch::ones({h, w}, opts);
  auto y = (ones.cumsum(0) - 0.5) / static_cast<double>(h);
  auto x = (ones.cumsum(1) - 0.5) / static_cast<double>(w);
  return encode(torch::stack({x, y}, -1)).permute({2, 0, 1});
}

torch::Tensor PositionEmbeddingRandomImpl::forward_with_coords(const torch::Tensor& coords, int64_t image_h,
                                                               int64_t image_w) const {
  auto c = coords.clone();
  c.select(-1, 0).div_(static_cast<double>(image_w));
  c.select(-1, 1).div_(static_cast<double>(image_h));
  return encode(c.to(torch::kFloat));
}

PromptEncoderImpl::PromptEncoderImpl(int64_t dim, int64_t input_size, int64_t mask_in_chans)
    : embed_dim(dim), input_size_(input_size) {
  pe_layer = register_module("pe_layer", PositionEmbeddingRandom(static_cast<int>(dim / 2)));
  point_embeddings = register_module("point_embeddings", torch::nn::ModuleList());
  for (int i = 0; i < 4; ++i) point_embeddings->push_back(torch::nn::Embedding(1, dim));
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, dim));
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(1, mask_in_chans / 4, 2).stride(2)),
          LayerNorm2d(mask_in_chans / 4), torch::nn::GELU(),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(mask_in_chans / 4, mask_in_chans, 2).stride(2)),
          LayerNorm2d(mask_in_chans), torch::nn::GELU(),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(mask_in_chans, dim, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, dim));
}

void PromptEncoderImpl::set_input_size(int64_t input_size) {
  TORCH_CHECK(input_size > 0 && input_size % 16 == 0,
              "prompt encoder input size must be a positive multiple of 16, got ", input_size);
  input_size_ = input_size;
}

torch::Tensor PromptEncoderImpl::point_weight(int i) const {
  return point_embeddings->ptr(i)->as<torch::nn::EmbeddingImpl>()->weight;
}

torch::Tensor PromptEncoderImpl::dense_pe() const {
  return pe_layer->grid(grid_size(), grid_size()).unsqueeze(0);
}

torch::Tensor PromptEncoderImpl::no_mask_dense(int64_t batch) const {
  return no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({batch, -1, grid_size(), grid_size()});
}

std::pair<torch::Tensor, torch::Tensor> PromptEncoderImpl::forward(const torch::Tensor& points,
                                                                   const torch::Tensor& labels,
                                                                   const torch::Tensor& boxes,
                                                                   const torch::Tensor& masks) {
  const auto opts = no_mask_embed->weight.options();
  int64_t batch = 1;
  if (points.defined())
    batch = points.size(0);
  else if (boxes.defined())
    batch = boxes.size(0);
  else if (masks.defined())
    batch = masks.size(0);

  auto sparse = torch::empty({batch, 0, embed_dim}, opts);
  if (points.defined()) {
    TORCH_CHECK(labels.defined() && labels.size(0) == points.size(0) && labels.size(1) == points.size(1),
                "point labels must be B x N for B x N x 2 points");
    auto p = points.to(opts) + 0.5;
    auto l = labels.to(opts.dtype(torch::kFloat));
    if (!boxes.defined()) {
      p = torch::cat({p, torch::zeros({batch, 1, 2}, opts)}, 1);
      l = torch::cat({l, -torch::ones({batch, 1}, opts)}, 1);
    }
    auto emb = pe_layer->forward_with_coords(p, input_size_, input_size_);
    auto is = [&](double v) { return (l == v).unsqueeze(-1); };
    emb = torch::where(is(-1), torch::zeros_like(emb), emb);
    emb = emb + is(-1).to(emb.dtype()) * not_a_point_embed->weight;
    emb = emb + is(0).to(emb.dtype()) * point_weight(0);
    emb = emb + is(1).to(emb.dtype()) * point_weight(1);
    sparse = torch::cat({sparse, emb}, 1);
  }
  if (boxes.defined()) {
    auto corners = (boxes.to(opts) + 0.5).reshape({-1, 2, 2});
    auto emb = pe_layer->forward_with_coords(corners, input_size_, input_size_);
    auto first = emb.select(1, 0) + point_weight(2);
    auto second = emb.select(1, 1) + point_weight(3);
    sparse = torch::cat({sparse, torch::stack({first, second}, 1)}, 1);
  }
  torch::Tensor dense;
  if (masks.defined()) {
    dense = mask_downscaling->forward(masks.to(opts));
  } else {
    dense = no_mask_dense(batch);
  }
  return {sparse, dense};
}

}  // namespace nucleisam::sam
