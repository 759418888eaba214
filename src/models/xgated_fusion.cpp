// X-Gated Fusion Block: squeeze (global average pool of cat(features, SAM)), excitation into a
// channel gate, gated features as attention queries against the ungated features as keys and
// values, over the h*w positions of the deepest map.
#include "models/xgated_fusion.h"

#include "nucleisam/errors.h"

namespace nucleisam::models {

namespace F = torch::nn::functional;

torch::Tensor resample_guidance(const torch::Tensor& guidance, int64_t height, int64_t width,
                                MaxBlurPool& pool) {
  torch::Tensor g = guidance;
  while (g.size(2) >= 2 * height && g.size(3) >= 2 * width) g = pool(g);
  if (g.size(2) != height || g.size(3) != width)
    g = F::interpolate(g, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{height, width})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  return g;
}

XGatedFusionImpl::XGatedFusionImpl(const XGatedFusionOptions& options_) : options(options_) {
  const int64_t c = options.feature_channels, r = options.reduction_channels;
  if (c <= 0 || options.guidance_channels <= 0 || r <= 0 || options.heads <= 0)
    throw ModelError("X-Gated Fusion: channel counts and attention_heads must be positive");
  if (c % options.heads != 0)
    throw ModelError("X-Gated Fusion: attention_heads (" + std::to_string(options.heads) +
                     ") must divide the deepest feature channels (" + std::to_string(c) + ")");
  const int64_t z = c + options.guidance_channels;
  // GLU halves its input, so the paper's excitation first expands to 2r to leave r after the gate.
  const int64_t hidden = options.excitation == Excitation::glu ? 2 * r : r;
  excite_in = register_module("excite_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(z, hidden, 1)));
  excite_out = register_module("excite_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(r, c, 1)));
  attention = register_module("attention", torch::nn::MultiheadAttention(c, options.heads));
  dropout = register_module("dropout", torch::nn::Dropout2d(options.dropout));
  guidance_pool = register_module("guidance_pool", MaxBlurPool());
}

torch::Tensor XGatedFusionImpl::gate(const torch::Tensor& features,
                                     const torch::Tensor& resampled_guidance) {
  auto squeezed = F::adaptive_avg_pool2d(torch::cat({features, resampled_guidance}, 1),
                                         F::AdaptiveAvgPool2dFuncOptions(1));
  auto hidden = excite_in(squeezed);
  hidden = options.excitation == Excitation::glu ? F::glu(hidden, F::GLUFuncOptions(1))
                                                 : torch::relu(hidden);
  return torch::sigmoid(excite_out(hidden));
}

torch::Tensor XGatedFusionImpl::forward(const torch::Tensor& features,
                                        const torch::Tensor& guidance) {
  if (!guidance.defined() || guidance.dim() != 4 || guidance.size(0) != features.size(0) ||
      guidance.size(1) != options.guidance_channels)
    throw ModelError("X-Gated Fusion: expected a SAM embedding of " +
                     std::to_string(features.size(0)) + " x " +
                     std::to_string(options.guidance_channels) + " x h x w, got " +
                     (guidance.defined() ? c10::str(guidance.sizes()) : std::string("none")) +
                     " (set the model option guidance_channels to the embedding's channels)");
  const int64_t n = features.size(0), c = features.size(1);
  const int64_t h = features.size(2), w = features.size(3);
  auto sam = resample_guidance(guidance.detach().to(features.dtype()), h, w, guidance_pool);
  auto gated = gate(features, sam) * features;
  // N x C x h x w -> (h*w) x N x C: LibTorch's MultiheadAttention is sequence-first.
  auto tokens = [](const torch::Tensor& x) { return x.flatten(2).permute({2, 0, 1}); };
  auto ungated = tokens(features);
  auto attended = std::get<0>(attention->forward(tokens(gated), ungated, ungated, torch::Tensor(), false));
  // Back in the features' memory layout: the sequence-first view has the batch interleaved with
  // the pixels, which sent every later enlargement and convolution of this map through slow
  // strided paths and copies (bf16 inference of a SAM-guided network 2.6x slower).
  auto out = attended.permute({1, 2, 0}).reshape({n, c, h, w}).contiguous(features.suggest_memory_format());
  if (options.residual) out = out + features;
  return dropout(out);
}

}  // namespace nucleisam::models
