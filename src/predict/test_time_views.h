// Test-time augmentation shared by the model segmenters: a network's per-pixel probabilities
// averaged over symmetric copies of each window (mirrors and quarter turns of the square), each
// mapped back before averaging. Networks are not exactly equivariant, so the mean is a little
// steadier than one view (docs/segment.md, `--tta`); it costs one forward pass per view.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "nucleisam/errors.h"

namespace nucleisam::predict {

// Symmetry v (0..7) of the square on N x C x S x S: v % 4 quarter turns, then a left-right mirror
// when v >= 4. 0 is the identity, 2 the half turn, 4 the mirror, 6 the top-bottom mirror.
inline torch::Tensor square_symmetry(const torch::Tensor& t, int v) {
  torch::Tensor r = v % 4 ? torch::rot90(t, v % 4, {2, 3}) : t;
  return v >= 4 ? r.flip({3}) : r;
}

inline torch::Tensor inverse_square_symmetry(const torch::Tensor& t, int v) {
  torch::Tensor r = v >= 4 ? t.flip({3}) : t;
  return v % 4 ? torch::rot90(r, -(v % 4), {2, 3}) : r;
}

// The symmetries averaged for `views` views: 1 the identity; 2 + the mirror; 4 the mirrors and the
// half turn; 8 all eight. Anything else is an OptionError.
inline std::vector<int> test_time_views(int views) {
  switch (views) {
    case 1: return {0};
    case 2: return {0, 4};
    case 4: return {0, 2, 4, 6};
    case 8: return {0, 1, 2, 3, 4, 5, 6, 7};
    default:
      throw OptionError("test-time augmentation takes 1, 2, 4 or 8 views, not " + std::to_string(views));
  }
}

// The mean over `views` of inverse_v(f(forward_v(x))) for square windows x (N x C x S x S); f must
// map a window batch to per-pixel maps of the same size.
template <typename F>
torch::Tensor mean_over_views(int views, const torch::Tensor& x, F&& f) {
  torch::Tensor sum;
  const std::vector<int> vs = test_time_views(views);
  for (int v : vs) {
    torch::Tensor y = inverse_square_symmetry(f(square_symmetry(x, v)), v);
    sum = sum.defined() ? sum + y : y;
  }
  return vs.size() > 1 ? sum / static_cast<float>(vs.size()) : sum;
}

}  // namespace nucleisam::predict
