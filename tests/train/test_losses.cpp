// Losses on hand-made inputs whose values are worked out in the comments.
#include "nucleisam/errors.h"
#include "nucleisam/train/losses.h"

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>

using namespace nucleisam;
using namespace nucleisam::train;

namespace {

const double ln3 = std::log(3.0);

// 1 x 2 x 1 x 2: pixel 0 logits (0, 0) -> softmax (0.5, 0.5); pixel 1 (ln 3, 0) -> (0.75, 0.25).
torch::Tensor two_pixel_logits() {
  return torch::tensor({0.0, ln3, 0.0, 0.0}, torch::kDouble).view({1, 2, 1, 2});
}
// targets: pixel 0 is class 0, pixel 1 is class 1.
torch::Tensor two_pixel_target() { return torch::tensor({0, 1}, torch::kLong).view({1, 1, 2}); }

}  // namespace

TEST(DiceLoss, BothVariantsByHand) {
  // class 0: P = 0.5 + 0.75 = 1.25, T = 1, I = 0.5;  class 1: P = 0.5 + 0.25 = 0.75, T = 1, I = 0.25.
  // standard: d0 = 1 - 1/2.25 = 5/9,   d1 = 1 - 0.5/1.75 = 5/7;  mean = (5/9 + 5/7)/2 = 0.6349206
  //           weights (1, 3): (5/9 + 3*5/7)/4 = 0.6746032
  // authors:  d0 = 1 - 1/(2.25-0.5) = 3/7, d1 = 1 - 0.5/(1.75-0.25) = 2/3; mean = 0.5476190
  auto x = two_pixel_logits(), t = two_pixel_target();
  EXPECT_NEAR(dice_loss(x, t, {}, DiceVariant::standard).item<double>(), (5.0 / 9 + 5.0 / 7) / 2, 1e-5);
  EXPECT_NEAR(dice_loss(x, t, {1, 3}, DiceVariant::standard).item<double>(), (5.0 / 9 + 15.0 / 7) / 4, 1e-5);
  EXPECT_NEAR(dice_loss(x, t, {}, DiceVariant::authors).item<double>(), (3.0 / 7 + 2.0 / 3) / 2, 1e-5);
  // A perfect, confident prediction: standard -> 0; authors -> 1 - 2I/(P+T-I) = 1 - 2*IoU = -1
  // (the public code's form is 1 - 2 * soft IoU: its minimum is -1, not 0).
  auto perfect = torch::tensor({20.0, -20.0, -20.0, 20.0}, torch::kDouble).view({1, 2, 1, 2});
  EXPECT_NEAR(dice_loss(perfect, t, {}, DiceVariant::standard).item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(dice_loss(perfect, t, {}, DiceVariant::authors).item<double>(), -1.0, 1e-6);
}

TEST(FocalLoss, ByHandAndGammaZeroIsCrossEntropy) {
  // p_t = 0.5 (pixel 0) and 0.25 (pixel 1); gamma 2: (0.25 ln 2 + 0.5625 ln 4) / 2 = 0.4765391
  auto x = two_pixel_logits(), t = two_pixel_target();
  EXPECT_NEAR(focal_loss(x, t, 2.0).item<double>(), (0.25 * std::log(2.0) + 0.5625 * std::log(4.0)) / 2, 1e-9);
  torch::manual_seed(0);
  auto logits = torch::randn({2, 4, 3, 5});
  auto target = torch::randint(0, 4, {2, 3, 5}, torch::kLong);
  EXPECT_NEAR(focal_loss(logits, target, 0.0).item<double>(),
              torch::nn::functional::cross_entropy(logits, target).item<double>(), 1e-6);
  // dice_focal = 0.5 dice + 0.5 focal
  EXPECT_NEAR(dice_focal_loss(x, t, {}, DiceVariant::authors, 2.0).item<double>(),
              0.5 * (3.0 / 7 + 2.0 / 3) / 2 + 0.5 * (0.25 * std::log(2.0) + 0.5625 * std::log(4.0)) / 2, 1e-5);
}

namespace {

// 1 image, K = 3, 1 x 2 pixels; categories 0, 1 present, 2 absent. Pixel A (target 0):
// logits (ln 3, -ln 3, a) -> p = (0.75, 0.25, .); pixel B (target 1): (0, 0, b) -> p = (0.5, 0.5, .).
torch::Tensor federated_logits(double a, double b) {
  return torch::tensor({ln3, 0.0, -ln3, 0.0, a, b}, torch::kDouble).view({1, 3, 1, 2});
}
torch::Tensor federated_target() { return torch::tensor({0, 1}, torch::kLong).view({1, 1, 2}); }
torch::Tensor federated_present() { return torch::tensor({true, true, false}).view({1, 3}); }

}  // namespace

TEST(FederatedBceHinge, ByHandWithAndWithoutMargin) {
  // No hinge: A: -ln 0.75 (k=0, y=1) + -ln 0.75 (k=1, y=0); B: ln 2 + ln 2; over 4 pairs
  //   = (2 ln(4/3) + 2 ln 2) / 4 = 0.4904146.
  // margin 0.2: A's gap 0.75 - 0.25 = 0.5 >= 0.2 -> confident, dropped; B's gap 0 -> kept:
  //   (2 ln 2) / 4 = 0.3465736 (still over the 4 pairs).
  auto x = federated_logits(5.0, -5.0), t = federated_target(), present = federated_present();
  EXPECT_NEAR(federated_bce_hinge_loss(x, t, present, 0.0).item<double>(),
              (2 * std::log(4.0 / 3) + 2 * std::log(2.0)) / 4, 1e-9);
  EXPECT_NEAR(federated_bce_hinge_loss(x, t, present, 0.2).item<double>(), std::log(2.0) / 2, 1e-9);
  // A margin larger than A's gap keeps A again.
  EXPECT_NEAR(federated_bce_hinge_loss(x, t, present, 0.6).item<double>(),
              (2 * std::log(4.0 / 3) + 2 * std::log(2.0)) / 4, 1e-9);
}

TEST(FederatedBceHinge, AbsentCategoryChangesNeitherLossNorGradient) {
  for (double margin : {0.0, 0.2}) {
    auto x1 = federated_logits(5.0, -5.0).requires_grad_();
    auto x2 = federated_logits(-3.0, 8.0).requires_grad_();
    auto l1 = federated_bce_hinge_loss(x1, federated_target(), federated_present(), margin);
    auto l2 = federated_bce_hinge_loss(x2, federated_target(), federated_present(), margin);
    EXPECT_DOUBLE_EQ(l1.item<double>(), l2.item<double>());
    l1.backward();
    l2.backward();
    EXPECT_TRUE(torch::equal(x1.grad(), x2.grad()));
    EXPECT_EQ(x1.grad()[0][2].abs().sum().item<double>(), 0.0);
  }
  // Marking category 2 present makes it count (its negative terms now add loss).
  auto all = torch::tensor({true, true, true}).view({1, 3});
  EXPECT_GT(federated_bce_hinge_loss(federated_logits(5.0, 5.0), federated_target(), all, 0.0).item<double>(),
            federated_bce_hinge_loss(federated_logits(5.0, 5.0), federated_target(), federated_present(), 0.0)
                .item<double>());
}

TEST(FederatedBceHinge, ConfidentPixelsGetNoGradient) {
  auto x = federated_logits(0.0, 0.0).requires_grad_();
  federated_bce_hinge_loss(x, federated_target(), federated_present(), 0.2).backward();
  auto g = x.grad().view({3, 2});
  EXPECT_EQ(g[0][0].item<double>(), 0.0);  // pixel A, confident
  EXPECT_EQ(g[1][0].item<double>(), 0.0);
  EXPECT_NE(g[0][1].item<double>(), 0.0);  // pixel B, ambiguous
  EXPECT_NE(g[1][1].item<double>(), 0.0);
}

TEST(WeightedMse, MeanOverMaskAndZeroWhenEmpty) {
  auto pred = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 2, 2}).requires_grad_();
  auto target = torch::tensor({0.0f, 0.0f, 0.0f, 10.0f}).view({1, 2, 2});
  auto mask = torch::tensor({1.0f, 0.0f, 1.0f, 0.0f}).view({1, 2, 2});
  EXPECT_FLOAT_EQ(weighted_mse(pred, target, mask).item<float>(), (1.0f + 9.0f) / 2);
  auto empty = weighted_mse(pred, target, torch::zeros({1, 2, 2}));
  EXPECT_EQ(empty.item<float>(), 0.0f);
  empty.backward();
  EXPECT_EQ(pred.grad().abs().sum().item<float>(), 0.0f);
}

TEST(Losses, BadShapesNameTheArgument) {
  auto x = two_pixel_logits(), t = two_pixel_target();
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const ModelError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message([&] { dice_loss(x, t.view({1, 2, 1}), {}, DiceVariant::standard); }).find("'target'"), std::string::npos);
  EXPECT_NE(message([&] { dice_loss(x, t, {1, 2, 3}, DiceVariant::standard); }).find("'class_weights'"), std::string::npos);
  EXPECT_NE(message([&] { focal_loss(x.squeeze(0), t); }).find("'logits'"), std::string::npos);
  EXPECT_NE(message([&] { focal_loss(x, t.to(torch::kInt)); }).find("'target'"), std::string::npos);
  EXPECT_NE(message([&] { focal_loss(x, t + 1); }).find("class ids"), std::string::npos);
  EXPECT_NE(message([&] { federated_bce_hinge_loss(federated_logits(0, 0), federated_target(), torch::ones({1, 2}, torch::kBool)); })
                .find("'present'"),
            std::string::npos);
  EXPECT_NE(message([&] { weighted_mse(torch::zeros({1, 2, 2}), torch::zeros({1, 2, 3}), torch::zeros({1, 2, 2})); })
                .find("'target'"),
            std::string::npos);
  EXPECT_NE(message([&] { weighted_mse(torch::zeros({1, 2, 2}), torch::zeros({1, 2, 2}), torch::zeros({2, 2})); })
                .find("'mask'"),
            std::string::npos);
}
