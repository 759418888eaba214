// Building blocks shared by the U-Net family: conv3x3 + BatchNorm + activation units, the
// two-unit encoder block, MaxBlurPool and the encoder itself. Internal to src/models (tests reach
// it through the src include path).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace nucleisam::models {

enum class Activation { relu, glu };
enum class Pooling { max, maxblur };

// Max pooling 2x2 (stride 2) followed by a fixed depthwise 3x3 blur [[1,2,1],[2,4,2],[1,2,1]]/16,
// stride 1, ZERO padding 1. Zero padding works for any map size (reflect needs >= 2 pixels per
// side, and a deepest map can be 1x1); it darkens the one-pixel border, which the following
// convolutions (also zero padded) see anyway. The kernel is a buffer: it moves with .to() and is
// saved with the module, but it is not in parameters() and never trains.
struct MaxBlurPoolImpl : torch::nn::Module {
  MaxBlurPoolImpl();
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor blur;  // 1 x 1 x 3 x 3, expanded to the channel count at run time
};
TORCH_MODULE(MaxBlurPool);

// 2x downsampling: plain max pooling or MaxBlurPool.
struct DownsampleImpl : torch::nn::Module {
  explicit DownsampleImpl(Pooling kind);
  torch::Tensor forward(const torch::Tensor& x);
  Pooling kind;
  MaxBlurPool blur_pool{nullptr};
};
TORCH_MODULE(Downsample);

// conv3x3 (bias) -> BatchNorm -> activation. With GLU the convolution produces 2*out channels,
// BatchNorm normalises all of them and GLU returns first half * sigmoid(second half). Inference
// (eval mode, no gradient) folds BatchNorm into the convolution (fold_batch_norm).
struct ConvNormActImpl : torch::nn::Module {
  ConvNormActImpl(int64_t in_channels, int64_t out_channels, Activation activation);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
  Activation activation;
};
TORCH_MODULE(ConvNormAct);

// What BatchNorm2d's own forward does before normalising: in training with running statistics,
// count the batch (num_batches_tracked += 1); returns the factor for the running averages
// (the momentum, or 1 / batches seen when momentum is unset).
double count_batch_and_average_factor(torch::nn::BatchNorm2dImpl& bn);

// glu(bn(x)) over channels (first half * sigmoid(second half)) with bn's training/eval behaviour
// and running-statistics update, as one autograd step that keeps only x for backward and hands
// BatchNorm's backward a gradient in x's memory layout.
torch::Tensor batch_norm_glu(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

// A convolution's kernel and bias (bias may be undefined).
struct ConvKernel {
  torch::Tensor weight, bias;
};

// conv -> BatchNorm as one convolution, for inference. When bn is in eval mode with running
// statistics and no gradient is being recorded, BatchNorm is a per-channel affine map
// y = s * (x - mean) + beta with s = gamma / sqrt(running_var + eps), so
//   bn(conv(x; w, b)) = conv(x; s * w, s * (b - mean) + beta)
// and this returns that kernel (computed in the parameters' type; the weight keeps w's memory
// layout). Otherwise (training normalises by the batch; recorded gradients take the unfolded
// form) it returns nothing. The modules are not changed: the fold is recomputed per call (a few
// thousand multiplications), so a network folds only while it is used for inference.
std::optional<ConvKernel> fold_batch_norm(const torch::nn::Conv2dImpl& conv,
                                          const torch::nn::BatchNorm2dImpl& bn);

// GLU over channels (first half * sigmoid(second half)) in the given memory layout. LibTorch's
// GLU kernel evaluates bfloat16 in float and rounds once, in one pass (a separate convert,
// sigmoid, multiply and convert back took 3-8x longer for bf16 channels-last maps, same values).
torch::Tensor glu_channels(const torch::Tensor& y, at::MemoryFormat layout);

// The encoder block of U-Net and (e)U-Net3+: two ConvNormAct units.
struct ConvBlockImpl : torch::nn::Module {
  ConvBlockImpl(int64_t in_channels, int64_t out_channels, Activation activation);
  torch::Tensor forward(const torch::Tensor& x);
  ConvNormAct first{nullptr}, second{nullptr};
};
TORCH_MODULE(ConvBlock);

// `depth` levels of widths width * 2^level; level 0 sees the image, every later level is
// downsampled 2x first. Dropout2d (when > 0) applies to the deepest level's output only: it
// regularises the bottleneck that every decoder level reads without blanking the fine skips.
struct EncoderImpl : torch::nn::Module {
  EncoderImpl(int64_t width, int64_t depth, Activation activation, Pooling pooling, double dropout);
  // One feature map per level, shallowest first.
  std::vector<torch::Tensor> forward(const torch::Tensor& images);
  std::vector<int64_t> channels;
  torch::nn::ModuleList blocks;
  Downsample down{nullptr};
  torch::nn::Dropout2d dropout{nullptr};
};
TORCH_MODULE(Encoder);

// Throws ModelError unless images is N x 3 x H x W with H, W positive multiples of `multiple`.
void check_images(const torch::Tensor& images, int64_t multiple, const std::string& arch);

}  // namespace nucleisam::models
