// The softmax of SAM's image-encoder attention with its decomposed relative positions, as one pass
// over the logits (CPU). The official code adds rel_h and rel_w to the logits as two broadcast
// passes and then takes a softmax: under bf16 that is five passes over the largest tensors of
// the encoder (4096 x 4096 logits per head in ViT-B's global blocks), each rounded to bf16, and
// measured as 40% of the bf16 encoder's time. Here each row of logits is read once, summed with
// its two position terms, normalised in float and written back once, rounded once.
#pragma once

#include <torch/torch.h>

namespace nucleisam::sam {

// In place, for every query row r of `attn` (R x H*W keys on an H x W grid, rows contiguous):
//   attn[r, kh * W + kw] <- softmax over the row of (attn[r, .] + rel_h[r, kh] + rel_w[r, kw]).
// rel_h: R x H, rel_w: R x W (any float type; read as float). attn: CPU float or bfloat16;
// the sums, the maximum and the exponentials are in float. Built for AVX-512; other CPUs take
// LibTorch's operations (the official arithmetic), which are faster there.
void add_rel_pos_softmax_(torch::Tensor& attn, const torch::Tensor& rel_h, const torch::Tensor& rel_w,
                          int64_t H, int64_t W);

}  // namespace nucleisam::sam
