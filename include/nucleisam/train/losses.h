// Training losses for the segmentation networks: soft Dice (standard and the eU-Net3+ authors'
// variant), softmax focal loss, their equal-weight sum (the eU-Net3+ recipe), the federated
// per-category BCE with a hinge margin (category-descriptor SAM), and a masked MSE for a distance
// map head. Every loss validates its shapes and throws ModelError naming the argument.
#pragma once

#include <torch/types.h>

#include <vector>

namespace nucleisam::train {

enum class DiceVariant {
  standard,  // 1 - (2I + eps) / (P + T + eps)
  authors,   // 1 - (2I + eps) / (P + T - I + eps): the public eU-Net3+ code; = 1 - 2 * soft IoU,
             // so it ranges over [-1, 1] (-1 for a perfect prediction), not [0, 1]
};

// logits N x C x H x W (softmax over C), target N x H x W int64 in [0, C). Per-class soft Dice
// over the whole batch, then the mean over classes weighted by class_weights (C non-negative
// values with a positive sum; empty = equal weights): sum_c w_c d_c / sum_c w_c.
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target,
                        const std::vector<double>& class_weights, DiceVariant variant,
                        double eps = 1e-6);

// Multi-class softmax focal loss -(1 - p_t)^gamma log p_t, mean over pixels. gamma 0 is
// cross-entropy.
torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& target, double gamma = 2.0);

// 0.5 * dice + 0.5 * focal (the eU-Net3+ paper's equal weights).
torch::Tensor dice_focal_loss(const torch::Tensor& logits, const torch::Tensor& target,
                              const std::vector<double>& class_weights, DiceVariant variant,
                              double gamma = 2.0);

// logits N x K x H x W (one sigmoid map per category), target N x H x W in [0, K), present N x K
// bool. A binary cross-entropy per category, only for the categories present in each image
// (categories that occur in `target` count as present whatever `present` says). Hinge margin:
// a pixel whose target probability beats every other present category's by at least `margin`
// is confident and contributes nothing; margin 0 disables the hinge. See losses.cpp.
torch::Tensor federated_bce_hinge_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                       const torch::Tensor& present, double margin = 0.2);

// pred, target, mask N x H x W float: mean of (pred - target)^2 over the pixels with mask > 0;
// zero (still attached to pred's graph) when no pixel is selected.
torch::Tensor weighted_mse(const torch::Tensor& pred, const torch::Tensor& target,
                           const torch::Tensor& mask);

}  // namespace nucleisam::train
