// Channel-wise LayerNorm over an NCHW tensor, as SAM's necks, mask downscaling and output upscaling
// use it. Parameters are named weight/bias so checkpoint keys map directly.
#pragma once

#include <torch/torch.h>

namespace nucleisam::sam {

struct LayerNorm2dImpl : torch::nn::Module {
  explicit LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm2d);

}  // namespace nucleisam::sam
