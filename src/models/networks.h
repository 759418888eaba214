// The concrete networks behind build_network (internal; tests construct them directly).
#pragma once

#include "models/network_blocks.h"
#include "models/xgated_fusion.h"
#include "nucleisam/models/segmentation_model.h"

#include <optional>

namespace nucleisam::models {

// Classic U-Net: ReLU encoder with max pooling, transposed-conv (2x2, stride 2) upsampling that
// halves the channels, concatenation with the skip, a ReLU ConvBlock, conv1x1 to the outputs.
struct UNetImpl : SegmentationNetworkImpl {
  UNetImpl(int64_t out_channels, int64_t width, int64_t depth);
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& guidance) override;
  int64_t input_multiple() const override { return int64_t{1} << (depth_ - 1); }
  int64_t out_channels() const override { return out_channels_; }

  Encoder encoder{nullptr};
  torch::nn::ModuleList up, decode;
  torch::nn::Conv2d head{nullptr};

 private:
  int64_t out_channels_, depth_;
};

struct UNet3PlusConfig {
  int64_t width = 32;  // encoder widths width * 2^level; also the channels of every decoder branch
  int64_t depth = 5;
  Activation activation = Activation::relu;
  Pooling pooling = Pooling::max;
  double dropout = 0.0;
  // SAM guidance through the X-Gated Fusion Block on the deepest level (sam-eunet3plus).
  std::optional<XGatedFusionOptions> fusion;
  bool advanced = false;  // also gate encoder levels 1..depth-1 with the SAM embedding
};

// U-Net3+ with full-scale skips (no deep supervision, no classification-guided module: neither is
// in the public eU-Net3+ code). Decoder level d reads every scale: shallower encoder maps max
// pooled down, the same-level encoder map as is, deeper decoder maps (and the deepest encoder
// map) bilinearly upsampled; each branch is conv3x3 -> BN -> ReLU to `width` channels, the depth
// branches are concatenated and fused by conv3x3 -> BN -> ReLU. Logits: conv3x3 at full size.
struct UNet3PlusImpl : SegmentationNetworkImpl {
  UNet3PlusImpl(std::string arch, int64_t out_channels, const UNet3PlusConfig& config);
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& guidance) override;
  bool needs_guidance() const override { return config_.fusion.has_value(); }
  int64_t input_multiple() const override { return int64_t{1} << (config_.depth - 1); }
  int64_t out_channels() const override { return out_channels_; }

  Encoder encoder{nullptr};
  // decoder[k] builds decoder level depth-1-k (deepest first); each holds `branches` and `fuse`.
  torch::nn::ModuleList decoder;
  torch::nn::Conv2d head{nullptr};
  XGatedFusion fusion{nullptr};
  torch::nn::ModuleList sam_gates;  // advanced: conv1x1 C_s -> channels of levels 0..depth-2
  MaxBlurPool guidance_pool{nullptr};

 private:
  std::string arch_;
  int64_t out_channels_;
  UNet3PlusConfig config_;
};

}  // namespace nucleisam::models
