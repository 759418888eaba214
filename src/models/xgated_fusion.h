// X-Gated Fusion Block (Swain et al., MICCAI 2024, section 2.3): fuses a frozen SAM image
// embedding into the deepest eU-Net3+ feature map with a gated squeeze-and-excitation followed by
// multi-head attention. See docs/models.md for where this follows the paper and where the
// public code.
#pragma once

#include "models/network_blocks.h"

#include <torch/torch.h>

namespace nucleisam::models {

enum class Excitation {
  glu,      // paper: conv1x1(C_z -> 2r), GLU (-> r), conv1x1(r -> C), sigmoid
  sigmoid,  // public code: conv1x1(C_z -> r), ReLU, conv1x1(r -> C), sigmoid
};

struct XGatedFusionOptions {
  int64_t feature_channels = 512;   // C: channels of the deepest feature map
  int64_t guidance_channels = 256;  // C_s: channels of the SAM embedding
  int64_t reduction_channels = 48;  // r
  int64_t heads = 1;
  Excitation excitation = Excitation::glu;
  bool residual = false;  // add the ungated features back after attention
  double dropout = 0.3;   // Dropout2d on the block's output
};

// Brings a guidance map (any spatial size) to exactly `height` x `width`: MaxBlurPool while it is
// at least twice as large in both dimensions, then bilinear resize (align_corners false).
torch::Tensor resample_guidance(const torch::Tensor& guidance, int64_t height, int64_t width,
                                MaxBlurPool& pool);

struct XGatedFusionImpl : torch::nn::Module {
  explicit XGatedFusionImpl(const XGatedFusionOptions& options);
  // features N x C x h x w, guidance N x C_s x h' x w'. The guidance is detached: no gradient
  // ever flows into the SAM embedding. Returns N x C x h x w.
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& guidance);
  // The channel gate g (N x C x 1 x 1, in (0, 1)) from features and guidance already resampled
  // to the features' size.
  torch::Tensor gate(const torch::Tensor& features, const torch::Tensor& resampled_guidance);

  XGatedFusionOptions options;
  torch::nn::Conv2d excite_in{nullptr}, excite_out{nullptr};
  torch::nn::MultiheadAttention attention{nullptr};
  torch::nn::Dropout2d dropout{nullptr};
  MaxBlurPool guidance_pool{nullptr};
};
TORCH_MODULE(XGatedFusion);

}  // namespace nucleisam::models
