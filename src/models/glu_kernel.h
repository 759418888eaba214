// GLU over channels as one pass over memory, forward and backward (the eU-Net3+ units' gate).
// LibTorch 1.13's own GLU evaluates bfloat16 one rounded operation at a time (2-2.5x slower than
// its float GLU here) and its backward returns NCHW gradients for channels-last inputs; these
// kernels read and write each map once, in the input's memory layout, with every intermediate in
// float (double for double). Built for AVX2 and for AVX-512 (cpu_kernel_support.h); a CPU with
// neither takes LibTorch's operations, which are faster there.
#pragma once

#include <torch/torch.h>

namespace nucleisam::models {

// out[:, c] = y[:, c] * sigmoid(y[:, C + c]) for c < C, y of N x 2C x H x W, returned in y's type
// and memory layout (channels-last or contiguous). CPU bfloat16 maps take the kernel; float,
// double, other devices (and CPUs without AVX2) at::glu. The kernel's sigmoid uses a polynomial
// exponential (relative error below 1e-6; exp(x) = 0 below x = -87).
torch::Tensor glu_channels_forward(const torch::Tensor& y);

// The gradient with respect to y of glu_channels_forward(y) where y = x * scale + shift per
// channel (scale, shift: 2C values; both undefined for y = x), given the output gradient g
// (N x C x H x W):
//   dy[:, c] = g * s,   dy[:, C + c] = g * a * s * (1 - s),   a = y[:, c], s = sigmoid(y[:, C + c]).
// y is recomputed from x, never stored. Returns dy in x's type and memory layout.
torch::Tensor glu_channels_backward(const torch::Tensor& g, const torch::Tensor& x,
                                    const torch::Tensor& scale, const torch::Tensor& shift);

}  // namespace nucleisam::models
