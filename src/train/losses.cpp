// Loss functions (see include/nucleisam/train/losses.h).
#include "nucleisam/train/losses.h"

#include "nucleisam/errors.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

namespace nucleisam::train {
namespace {

namespace F = torch::nn::functional;

std::string shape(const torch::Tensor& t) {
  return t.defined() ? c10::str(t.sizes()) : std::string("an undefined tensor");
}

// logits N x C x H x W float, target N x H x W int64 with ids in [0, C).
void check_class_map(const char* loss, const torch::Tensor& logits, const torch::Tensor& target) {
  if (!logits.defined() || logits.dim() != 4 || !logits.is_floating_point())
    throw ModelError(std::string(loss) + ": 'logits' must be a float N x C x H x W tensor, got " + shape(logits));
  if (!target.defined() || target.dim() != 3 || target.scalar_type() != torch::kLong ||
      target.size(0) != logits.size(0) || target.size(1) != logits.size(2) ||
      target.size(2) != logits.size(3))
    throw ModelError(std::string(loss) + ": 'target' must be an int64 N x H x W tensor matching logits " +
                     shape(logits) + ", got " + shape(target));
  if (target.numel() > 0) {
    const int64_t lo = target.min().item<int64_t>(), hi = target.max().item<int64_t>();
    if (lo < 0 || hi >= logits.size(1))
      throw ModelError(std::string(loss) + ": 'target' holds class ids " + std::to_string(lo) + ".." +
                       std::to_string(hi) + " but logits have " + std::to_string(logits.size(1)) +
                       " channels");
  }
}

// N x H x W ids -> N x C x H x W one-hot in `dtype`.
torch::Tensor one_hot(const torch::Tensor& target, int64_t classes, torch::ScalarType dtype) {
  return F::one_hot(target, classes).permute({0, 3, 1, 2}).to(dtype);
}

}  // namespace

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target,
                        const std::vector<double>& class_weights, DiceVariant variant, double eps) {
  check_class_map("dice_loss", logits, target);
  const int64_t classes = logits.size(1);
  torch::Tensor weights = torch::ones({classes}, logits.options());
  if (!class_weights.empty()) {
    if (static_cast<int64_t>(class_weights.size()) != classes)
      throw ModelError("dice_loss: 'class_weights' has " + std::to_string(class_weights.size()) +
                       " values for " + std::to_string(classes) + " classes");
    double sum = 0;
    for (double w : class_weights) {
      if (!(w >= 0) || !std::isfinite(w))
        throw ModelError("dice_loss: 'class_weights' must be finite and non-negative");
      sum += w;
    }
    if (!(sum > 0)) throw ModelError("dice_loss: 'class_weights' must not all be zero");
    weights = torch::tensor(class_weights, torch::kDouble).to(logits.options());
  }
  auto probs = torch::softmax(logits, 1);
  auto truth = one_hot(target, classes, probs.scalar_type());
  const std::vector<int64_t> reduce{0, 2, 3};
  auto intersection = (probs * truth).sum(reduce);
  auto denominator = probs.sum(reduce) + truth.sum(reduce);
  if (variant == DiceVariant::authors) denominator = denominator - intersection;
  auto per_class = 1 - (2 * intersection + eps) / (denominator + eps);
  return (per_class * weights).sum() / weights.sum();
}

torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& target, double gamma) {
  check_class_map("focal_loss", logits, target);
  if (!(gamma >= 0)) throw ModelError("focal_loss: 'gamma' must be >= 0, got " + std::to_string(gamma));
  auto log_pt = torch::log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1);
  auto modulation = gamma == 0 ? torch::ones_like(log_pt) : (1 - log_pt.exp()).pow(gamma);
  return -(modulation * log_pt).mean();
}

torch::Tensor dice_focal_loss(const torch::Tensor& logits, const torch::Tensor& target,
                              const std::vector<double>& class_weights, DiceVariant variant,
                              double gamma) {
  return 0.5 * dice_loss(logits, target, class_weights, variant) + 0.5 * focal_loss(logits, target, gamma);
}

// Reading of the category-descriptor paper (its section on the loss): "a separate binary cross
// entropy loss for each category that is only applied to cell types present in the image" and
// "a margin gamma that compares predictions across all categories and only back-propagates
// gradients for ambiguous samples ignoring confident pixels ... the minimum prediction
// probability gap between the target category and other categories". Implemented as:
//  - terms: BCE(sigmoid(logit_k), [target == k]) for every pixel and every category k present in
//    that image (the federated rule: an absent category gets no negative gradient at all);
//  - a pixel is confident when p_target - max_{k present, k != target} p_k >= margin; confident
//    pixels drop all their terms. The comparison runs over present categories only, so an absent
//    category's logits cannot change the loss through the hinge either. A pixel whose target is
//    the only present category has nothing to be ambiguous with and keeps its terms (dropping it
//    would freeze its probability at `margin`);
//  - the selection is not differentiated (like a hinge's kink), and the sum of kept terms is
//    divided by the number of (pixel, present category) pairs before the hinge, so the loss
//    shrinks towards 0 as pixels become confident instead of being re-normalised over the few
//    hard ones.
torch::Tensor federated_bce_hinge_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                       const torch::Tensor& present, double margin) {
  check_class_map("federated_bce_hinge_loss", logits, target);
  const int64_t n = logits.size(0), k = logits.size(1);
  if (!present.defined() || present.dim() != 2 || present.size(0) != n || present.size(1) != k ||
      present.scalar_type() != torch::kBool)
    throw ModelError("federated_bce_hinge_loss: 'present' must be a bool N x K tensor (" +
                     std::to_string(n) + " x " + std::to_string(k) + "), got " + shape(present));
  if (!(margin >= 0 && margin <= 1))
    throw ModelError("federated_bce_hinge_loss: 'margin' must be in [0, 1], got " + std::to_string(margin));

  auto truth = one_hot(target, k, logits.scalar_type());  // N x K x H x W
  auto in_image = present.to(target.device()) | (truth.sum({2, 3}) > 0);  // N x K
  auto category_mask = in_image.to(logits.scalar_type()).view({n, k, 1, 1}).expand_as(logits);

  torch::Tensor keep = torch::ones_like(target, logits.options());  // N x H x W
  if (margin > 0) {
    torch::NoGradGuard no_grad;
    auto probs = torch::sigmoid(logits);
    auto p_target = probs.gather(1, target.unsqueeze(1)).squeeze(1);
    auto is_other = category_mask * (1 - truth);
    auto others = probs.masked_fill(is_other == 0, -1.0).amax(1);  // -1: no other present category
    keep = ((others < 0) | (p_target - others < margin)).to(logits.scalar_type());
  }
  auto terms = F::binary_cross_entropy_with_logits(
      logits, truth, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  const double pairs = category_mask.sum().item<double>();
  if (pairs == 0) return logits.sum() * 0;  // empty images
  return (terms * category_mask * keep.unsqueeze(1)).sum() / pairs;
}

torch::Tensor weighted_mse(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& mask) {
  if (!pred.defined() || pred.dim() != 3 || !pred.is_floating_point())
    throw ModelError("weighted_mse: 'pred' must be a float N x H x W tensor, got " + shape(pred));
  if (!target.defined() || target.sizes() != pred.sizes())
    throw ModelError("weighted_mse: 'target' must match pred " + shape(pred) + ", got " + shape(target));
  if (!mask.defined() || mask.sizes() != pred.sizes())
    throw ModelError("weighted_mse: 'mask' must match pred " + shape(pred) + ", got " + shape(mask));
  auto selected = (mask > 0).to(pred.scalar_type());
  const double count = selected.sum().item<double>();
  auto squared = (pred - target.to(pred.scalar_type())).pow(2) * selected;
  return count > 0 ? squared.sum() / count : squared.sum() * 0;
}

}  // namespace nucleisam::train
