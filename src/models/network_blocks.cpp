// Building blocks of the U-Net family (see network_blocks.h).
#include "models/network_blocks.h"

#include "nucleisam/errors.h"

namespace nucleisam::models {

namespace F = torch::nn::functional;

MaxBlurPoolImpl::MaxBlurPoolImpl() {
  auto k = torch::tensor({1.0f, 2.0f, 1.0f});
  blur = register_buffer("blur", (k.unsqueeze(1) * k.unsqueeze(0) / 16.0f).view({1, 1, 3, 3}));
}

torch::Tensor MaxBlurPoolImpl::forward(const torch::Tensor& x) {
  auto pooled = F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2));
  const int64_t channels = pooled.size(1);
  auto kernel = blur.to(pooled.dtype()).expand({channels, 1, 3, 3});
  return F::conv2d(pooled, kernel, F::Conv2dFuncOptions().padding(1).groups(channels));
}

DownsampleImpl::DownsampleImpl(Pooling kind_) : kind(kind_) {
  if (kind == Pooling::maxblur) blur_pool = register_module("blur_pool", MaxBlurPool());
}

torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) {
  if (kind == Pooling::maxblur) return blur_pool(x);
  return F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2));
}

ConvNormActImpl::ConvNormActImpl(int64_t in_channels, int64_t out_channels, Activation activation_)
    : activation(activation_) {
  const int64_t conv_out = activation == Activation::glu ? 2 * out_channels : out_channels;
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, conv_out, 3).padding(1)));
  norm = register_module("norm", torch::nn::BatchNorm2d(conv_out));
}

torch::Tensor ConvNormActImpl::forward(const torch::Tensor& x) {
  auto y = norm(conv(x));
  // In place: BatchNorm's backward needs its input, not its output, so ReLU may overwrite it.
  return activation == Activation::glu ? F::glu(y, F::GLUFuncOptions(1)) : torch::relu_(y);
}

ConvBlockImpl::ConvBlockImpl(int64_t in_channels, int64_t out_channels, Activation activation) {
  first = register_module("first", ConvNormAct(in_channels, out_channels, activation));
  second = register_module("second", ConvNormAct(out_channels, out_channels, activation));
}

torch::Tensor ConvBlockImpl::forward(const torch::Tensor& x) { return second(first(x)); }

EncoderImpl::EncoderImpl(int64_t width, int64_t depth, Activation activation, Pooling pooling,
                         double dropout_p) {
  int64_t in = 3;
  for (int64_t level = 0; level < depth; ++level) {
    channels.push_back(width << level);
    blocks->push_back(ConvBlock(in, channels.back(), activation));
    in = channels.back();
  }
  register_module("blocks", blocks);
  down = register_module("down", Downsample(pooling));
  if (dropout_p > 0) dropout = register_module("dropout", torch::nn::Dropout2d(dropout_p));
}

std::vector<torch::Tensor> EncoderImpl::forward(const torch::Tensor& images) {
  std::vector<torch::Tensor> features;
  torch::Tensor x = images;
  for (size_t level = 0; level < blocks->size(); ++level) {
    if (level > 0) x = down(x);
    x = blocks[level]->as<ConvBlockImpl>()->forward(x);
    features.push_back(x);
  }
  if (dropout) features.back() = dropout(features.back());
  return features;
}

void check_images(const torch::Tensor& images, int64_t multiple, const std::string& arch) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3)
    throw ModelError(arch + ": expected images N x 3 x H x W, got " +
                     (images.defined() ? c10::str(images.sizes()) : std::string("no tensor")));
  const int64_t h = images.size(2), w = images.size(3);
  if (h <= 0 || w <= 0 || h % multiple != 0 || w % multiple != 0)
    throw ModelError(arch + ": image size " + std::to_string(h) + "x" + std::to_string(w) +
                     " is not a multiple of " + std::to_string(multiple) +
                     " (2^(depth-1)); pad or crop the tile, or lower the model's depth");
}

}  // namespace nucleisam::models
