// U-Net3+ (Huang et al. 2020) and its variants: eU-Net3+ (GLU encoder, MaxBlurPool, dropout) and
// SAM-guided eU-Net3+ (X-Gated Fusion on the deepest level), one class configured by UNet3PlusConfig.
#include "models/networks.h"
#include "models/upsampled_conv.h"

#include "nucleisam/errors.h"

#include <utility>

namespace nucleisam::models {

namespace F = torch::nn::functional;

namespace {

// One decoder level: `depth` branches (conv3x3 -> BN -> ReLU to width) and the fusing unit.
struct DecoderLevelImpl : torch::nn::Module {
  DecoderLevelImpl(const std::vector<int64_t>& in_channels, int64_t width) {
    for (int64_t c : in_channels) branches->push_back(ConvNormAct(c, width, Activation::relu));
    register_module("branches", branches);
    const int64_t cat = width * static_cast<int64_t>(in_channels.size());
    fuse = register_module("fuse", ConvNormAct(cat, cat, Activation::relu));
  }
  torch::nn::ModuleList branches;
  ConvNormAct fuse{nullptr};

  ConvNormActImpl& branch(size_t s) { return *branches[s]->as<ConvNormActImpl>(); }

  // Branch s's kernel: its convolution's, or for inference with its BatchNorm folded in (then
  // `folded` is set and norm_act must not normalise again).
  ConvKernel kernel(size_t s, bool& folded) {
    auto& unit = branch(s);
    auto k = fold_batch_norm(*unit.conv, *unit.norm);
    folded = k.has_value();
    return k ? *k : ConvKernel{unit.conv->weight, unit.conv->bias};
  }

  // BN -> ReLU of every branch's convolution, concatenated. BatchNorm works per channel, so one
  // batch_norm over the concatenated convolutions with the branches' parameters side by side is
  // the same as one per branch; backward then keeps one copy of the level's branch outputs, not
  // the per-branch activations and their concatenation. Running statistics are written back to
  // each branch's buffers, so checkpoints are the same as with per-branch BatchNorm modules.
  torch::Tensor norm_act(const std::vector<torch::Tensor>& convs) {
    std::vector<torch::Tensor> weight, bias, mean, var;
    for (size_t s = 0; s < convs.size(); ++s) {
      auto& bn = *branch(s).norm;
      weight.push_back(bn.weight);
      bias.push_back(bn.bias);
      mean.push_back(bn.running_mean);
      var.push_back(bn.running_var);
    }
    // Every branch counts the batch; all share one configuration, so the first gives the factor.
    const double factor = count_batch_and_average_factor(*branch(0).norm);
    for (size_t s = 1; s < convs.size(); ++s) count_batch_and_average_factor(*branch(s).norm);
    const auto& opt = branch(0).norm->options;
    const bool update = is_training() && opt.track_running_stats();
    auto running_mean = torch::cat(mean), running_var = torch::cat(var);
    auto y = torch::batch_norm(torch::cat(convs, 1), torch::cat(weight), torch::cat(bias),
                               running_mean, running_var, is_training() || !opt.track_running_stats(),
                               factor, opt.eps(), false);
    if (update) {
      torch::NoGradGuard no_grad;
      int64_t at = 0;
      for (size_t s = 0; s < convs.size(); ++s) {
        const int64_t c = mean[s].size(0);
        mean[s].copy_(running_mean.narrow(0, at, c));
        var[s].copy_(running_var.narrow(0, at, c));
        at += c;
      }
    }
    return torch::relu_(y);
  }
};
TORCH_MODULE(DecoderLevel);

// A shallower (or same-level) encoder map brought to h x w: max pooled by the scale factor.
torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return F::max_pool2d(x, F::MaxPool2dFuncOptions(x.size(2) / h).stride(x.size(2) / h));
}

}  // namespace

UNet3PlusImpl::UNet3PlusImpl(std::string arch, int64_t out_channels, const UNet3PlusConfig& config)
    : arch_(std::move(arch)), out_channels_(out_channels), config_(config) {
  const int64_t depth = config.depth, width = config.width;
  encoder = register_module(
      "encoder", Encoder(width, depth, config.activation, config.pooling, config.dropout));
  const auto& ch = encoder->channels;
  const int64_t cat = width * depth;
  for (int64_t d = depth - 2; d >= 0; --d) {
    std::vector<int64_t> in;
    for (int64_t s = 0; s < depth; ++s) in.push_back(s <= d || s == depth - 1 ? ch[s] : cat);
    decoder->push_back(DecoderLevel(in, width));
  }
  register_module("decoder", decoder);
  head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(cat, out_channels, 3).padding(1)));
  if (config.fusion) {
    XGatedFusionOptions fo = *config.fusion;
    fo.feature_channels = ch.back();
    fusion = register_module("fusion", XGatedFusion(fo));
    if (config.advanced) {
      for (int64_t s = 0; s + 1 < depth; ++s)
        sam_gates->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(fo.guidance_channels, ch[s], 1)));
      register_module("sam_gates", sam_gates);
      guidance_pool = register_module("guidance_pool", MaxBlurPool());
    }
  }
}

torch::Tensor UNet3PlusImpl::forward(const torch::Tensor& images, const torch::Tensor& guidance) {
  check_images(images, input_multiple(), arch_);
  auto features = encoder(images);
  const int64_t depth = config_.depth;
  if (fusion) {
    if (!guidance.defined())
      throw ModelError(arch_ + ": needs a SAM image embedding as guidance, none was given");
    // The SAM embedding is a frozen input: detach so that no gradient reaches it or SAM.
    torch::Tensor sam = guidance.detach();
    features.back() = fusion(features.back(), sam);
    if (config_.advanced) {
      // Gate the skip features the decoder reads; the encoder path itself is left ungated.
      for (int64_t s = 0; s + 1 < depth; ++s) {
        auto& h = features[s];
        auto g = resample_guidance(sam.to(h.dtype()), h.size(2), h.size(3), guidance_pool);
        h = h * torch::sigmoid(sam_gates[s]->as<torch::nn::Conv2dImpl>()->forward(g));
      }
    }
  }
  // decoded[s]: the map that scale s contributes to shallower levels (the deepest is the encoder's).
  std::vector<torch::Tensor> decoded(depth);
  decoded[depth - 1] = features[depth - 1];
  for (int64_t k = 0; k + 1 < depth; ++k) {
    const int64_t d = depth - 2 - k;
    auto* level = decoder[k]->as<DecoderLevelImpl>();
    const int64_t h = features[d].size(2), w = features[d].size(3);
    std::vector<torch::Tensor> convs;
    bool folded = false;
    for (int64_t s = 0; s < depth; ++s) {
      const ConvKernel k = level->kernel(static_cast<size_t>(s), folded);
      // Deeper maps are enlarged to this level; the enlargement is folded into the convolution.
      convs.push_back(s > d ? conv3x3_of_enlarged(k.weight, k.bias, decoded[s], h, w)
                            : F::conv2d(resize_to(features[s], h, w), k.weight,
                                        F::Conv2dFuncOptions().padding(1).bias(k.bias)));
    }
    torch::Tensor normed = folded ? torch::cat(convs, 1).relu_() : level->norm_act(convs);
    decoded[d] = level->fuse(normed);
  }
  return head(decoded[0]);
}

}  // namespace nucleisam::models
