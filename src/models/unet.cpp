// Classic U-Net (Ronneberger et al. 2015) with BatchNorm, as the baseline of the paper's table.
#include "models/networks.h"

#include "nucleisam/errors.h"

namespace nucleisam::models {

UNetImpl::UNetImpl(int64_t out_channels, int64_t width, int64_t depth)
    : out_channels_(out_channels), depth_(depth) {
  encoder = register_module("encoder", Encoder(width, depth, Activation::relu, Pooling::max, 0.0));
  const auto& ch = encoder->channels;
  for (int64_t level = depth - 2; level >= 0; --level) {
    up->push_back(torch::nn::ConvTranspose2d(
        torch::nn::ConvTranspose2dOptions(ch[level + 1], ch[level], 2).stride(2)));
    decode->push_back(ConvBlock(2 * ch[level], ch[level], Activation::relu));
  }
  register_module("up", up);
  register_module("decode", decode);
  head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch[0], out_channels, 1)));
}

torch::Tensor UNetImpl::forward(const torch::Tensor& images, const torch::Tensor&) {
  check_images(images, input_multiple(), "unet");
  auto skips = encoder(images);
  torch::Tensor x = skips.back();
  for (size_t i = 0; i < up->size(); ++i) {
    const size_t level = skips.size() - 2 - i;
    x = up[i]->as<torch::nn::ConvTranspose2dImpl>()->forward(x);
    x = decode[i]->as<ConvBlockImpl>()->forward(torch::cat({skips[level], x}, 1));
  }
  return head(x);
}

}  // namespace nucleisam::models
