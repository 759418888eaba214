// Linear layers on the fastest exact fp32 path the CPU has (and, at the end, the 2x2 transposed
// convolution's bf16 path and GELU on channels-last tensors).
//
// LibTorch 1.13 sends fp32 `linear` to the BLAS it was built with (OpenBLAS on Debian), while its
// oneDNN convolution runs the same product 3-5x faster on AVX-512 machines (measured: docs/BENCHMARKS.md,
// "fp32 matrix products"). A linear layer over tokens laid out (..., C) is a 1x1 convolution over a
// channels-last image, with no copy either way, so `linear` here calls oneDNN's convolution directly
// (bypassing the convolution heuristics, which send 1x1 kernels on one thread back to the BLAS).
//
// Which path fp32 takes is decided once per process: NUCLEISAM_FP32_GEMM=blas|onednn, else a short probe
// that times both on a representative product and keeps the faster (machines differ: on some, OpenBLAS
// is as fast). Both are exact fp32 (the sums are only ordered differently, ~1e-6 relative).
//
// Everything else keeps LibTorch's own `linear`: inputs that need gradients (oneDNN's direct call has
// no autograd formula here), other dtypes, bf16 autocast (which already routes to oneDNN), GPUs.
#pragma once

#include <torch/torch.h>

#include <string>

namespace nucleisam::sam {

enum class Fp32GemmPath { blas, onednn };

struct Fp32GemmChoice {
  Fp32GemmPath path = Fp32GemmPath::blas;
  std::string reason;  // "NUCLEISAM_FP32_GEMM=onednn", "probe: oneDNN 1.2 ms, BLAS 4.8 ms", "no oneDNN"
};

// The process-wide choice (probed on first use, thread-safe).
const Fp32GemmChoice& fp32_gemm_choice();
const char* to_string(Fp32GemmPath path);

// torch::nn::functional::linear(x, weight, bias), through oneDNN where the choice says so and the
// call qualifies (see above). `bias` may be undefined.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x);

// The oneDNN route itself, unconditionally (fp32 CPU tensors; for tests and the probe).
torch::Tensor linear_onednn(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// A transposed convolution with kernel 2 and stride 2 (the mask decoder's upscaling): x (B, Ci, H, W),
// weight (Ci, Co, 2, 2), bias (Co) or undefined; result (B, Co, 2H, 2W). Under CPU bf16 autocast it
// is one matrix product (each input pixel writes its own 2 x 2 block: tokens (BHW, Ci) times
// (Ci, 4 Co)) and a pixel shuffle into a channels-last result: LibTorch 1.13 runs the bf16
// transposed convolution as slow_conv_transpose2d, whose bf16 GEMM is a plain loop. Elsewhere
// (fp32, GPUs) LibTorch's conv_transpose2d, the official arithmetic.
torch::Tensor conv_transpose_2x2(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
torch::Tensor conv_transpose_2x2(const torch::nn::ConvTranspose2dImpl& layer, const torch::Tensor& x);
// The matrix-product form itself, unconditionally (any dtype and device; for tests).
torch::Tensor conv_transpose_2x2_as_product(const torch::Tensor& x, const torch::Tensor& weight,
                                            const torch::Tensor& bias);

// torch::gelu(x) (the exact, erf form), as fast on a permuted dense tensor (channels-last) as on a
// contiguous one. LibTorch 1.13 sends a contiguous CPU tensor to oneDNN's GELU and any other layout
// to its own element loop, 5-7x slower on the mask decoder's channels-last upscaling (and its
// gradient 2-5x; docs/BENCHMARKS.md, C3). Here a dense tensor is viewed with its dimensions in
// memory order (contiguous), GELU runs on that view and the result is viewed back: same values,
// same strides as x, autograd through the views.
torch::Tensor gelu_dense(const torch::Tensor& x);

// GELU of an intermediate the caller owns (nothing else holds it): in place when no autograd graph
// is being recorded, which saves allocating and faulting in a fresh activation (ViT-B's MLP at
// 1024: 48 MB in fp32 a block, larger than the blocks malloc keeps for reuse), else torch::gelu.
torch::Tensor gelu_owned(torch::Tensor x);

}  // namespace nucleisam::sam
