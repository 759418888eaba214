// Test-time views: each symmetry of the square is undone by its inverse, the eight are distinct,
// the hand-computed quarter turn, and the average of a position-dependent map over the views.
#include <gtest/gtest.h>

#include "nucleisam/errors.h"
#include "predict/test_time_views.h"

using namespace nucleisam;
using namespace nucleisam::predict;

TEST(TestTimeViews, EachSymmetryIsUndoneAndTheEightAreDistinct) {
  const torch::Tensor x = torch::arange(2 * 3 * 5 * 5, torch::kFloat32).view({2, 3, 5, 5});
  std::vector<torch::Tensor> seen;
  for (int v = 0; v < 8; ++v) {
    const torch::Tensor y = square_symmetry(x, v);
    EXPECT_TRUE(torch::equal(inverse_square_symmetry(y, v), x)) << "view " << v;
    for (const auto& other : seen) EXPECT_FALSE(torch::equal(y, other)) << "view " << v;
    seen.push_back(y);
  }
  // One quarter turn of [[1, 2], [3, 4]] (counter-clockwise, as torch.rot90): [[2, 4], [1, 3]].
  const torch::Tensor q = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 1, 2, 2});
  EXPECT_TRUE(torch::equal(square_symmetry(q, 1), torch::tensor({2.f, 4.f, 1.f, 3.f}).view({1, 1, 2, 2})));
  EXPECT_TRUE(torch::equal(square_symmetry(q, 4), torch::tensor({2.f, 1.f, 4.f, 3.f}).view({1, 1, 2, 2})));
  EXPECT_TRUE(torch::equal(square_symmetry(q, 6), torch::tensor({3.f, 4.f, 1.f, 2.f}).view({1, 1, 2, 2})));
}

TEST(TestTimeViews, AveragingCancelsAPositionDependentAnswer) {
  // f adds each pixel's column index: one view keeps it; any symmetric set of views averages the
  // column index of the mapped-back pixels to (S - 1) / 2 everywhere.
  const int64_t S = 6;
  const torch::Tensor x = torch::rand({2, 3, S, S});
  const torch::Tensor column = torch::arange(S, torch::kFloat32).view({1, 1, 1, S}).expand({2, 3, S, S});
  const auto f = [&](const torch::Tensor& t) { return t + column; };
  EXPECT_TRUE(torch::allclose(mean_over_views(1, x, f), x + column));
  for (int views : {2, 4, 8})
    EXPECT_TRUE(torch::allclose(mean_over_views(views, x, f), x + (S - 1) / 2.0f)) << views << " views";
  EXPECT_EQ(test_time_views(4), (std::vector<int>{0, 2, 4, 6}));
  for (int bad : {0, 3, 5, 16}) EXPECT_THROW(test_time_views(bad), OptionError) << bad;
}
