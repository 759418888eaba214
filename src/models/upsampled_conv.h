// A 3x3 convolution (stride 1, zero padding 1) of a bilinearly enlarged map, computed without the
// enlarged map. U-Net3+ decoders enlarge every deeper map to the level's size and convolve it to
// `width` channels: at the shallowest level that is a 3x3 convolution over 160-512 channels at full
// size, about half of the network's multiply-adds, and the enlarged input kept for backward is
// most of its training memory.
//
// Bilinear resizing is linear and acts on each channel alone, so it commutes with mixing
// channels. With W_t the kernel's channel mix at tap t = (ty, tx) and shift_t the move by
// (ty - 1, tx - 1) with zeros outside the map:
//
//     conv3x3(up(x)) = bias + sum_t shift_t(up(W_t x))
//
// Z = [W_0 x, ..., W_8 x] is a 1x1 convolution at the SMALL size (k^2 fewer multiply-adds for a
// k-fold enlargement), and the enlarge-shift-sum is one pass over the output, separable into a
// rows pass and a columns pass (6 multiply-adds per output value plus 18 per small column,
// instead of 9 taps x 4 neighbours). Only x and Z (small) are kept for backward. The result equals
// conv(up(x)) up to floating-point rounding (tests/models/test_upsampled_conv.cpp checks values
// and gradients against the direct form).
#pragma once

#include <torch/torch.h>

namespace nucleisam::models {

// conv(interpolate(x, {h, w}, bilinear, align_corners = false)) for a Conv2d with a 3x3 kernel,
// stride 1, padding 1, dilation 1, one group (bias optional). x is N x C_in x h0 x w0 with
// h >= h0, w >= w0. On the CPU (float, double, bfloat16) the enlarge-shift-sum runs as one
// vectorised kernel (built for the baseline, AVX2 and AVX-512, chosen at run time); other devices
// and dtypes take the direct form.
torch::Tensor conv3x3_of_enlarged(torch::nn::Conv2dImpl& conv, const torch::Tensor& x,
                                  int64_t h, int64_t w);
// The same for a kernel given as tensors (weight O x C x 3 x 3, bias O values or undefined), as a
// BatchNorm-folded convolution has them.
torch::Tensor conv3x3_of_enlarged(const torch::Tensor& weight, const torch::Tensor& bias,
                                  const torch::Tensor& x, int64_t h, int64_t w);

// The enlarge-shift-sum alone (exposed for tests): z is N x 9C x h0 x w0 (tap-major channels:
// tap t = 3 * ty + tx holds channels t*C .. t*C + C - 1); returns N x C x h x w (channels-last) with
//   out[n, c, i, j] = bias[c] + sum_t up(z[:, t*C + c])[n, i + ty - 1, j + tx - 1]
// (zero outside h x w; bias optional, C values, added before the result is rounded to z's type).
// Differentiable with respect to z and the bias.
torch::Tensor enlarge_shift_sum(const torch::Tensor& z, int64_t h, int64_t w,
                                const torch::Tensor& bias = {});

}  // namespace nucleisam::models
