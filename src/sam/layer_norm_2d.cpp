// LayerNorm2d: normalises each pixel over the channel axis. The arithmetic follows the official
// order (mean, centred square mean, divide by sqrt(var + eps), then scale and shift) so that float32
// results match the reference to rounding.
#include "nucleisam/sam/layer_norm_2d.h"

namespace nucleisam::sam {

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  auto u = x.mean(1, /*keepdim=*/true);
  auto centred = x - u;
  auto s = centred.pow(2).mean(1, /*keepdim=*/true);
  auto normed = centred / torch::sqrt(s + eps);
  return weight.view({-1, 1, 1}) * normed + bias.view({-1, 1, 1});
}

}  // namespace nucleisam::sam
