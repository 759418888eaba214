// Targets and the multi-head objective.
#include <gtest/gtest.h>

#include <cmath>

#include "nucleisam/errors.h"
#include "nucleisam/train/objective.h"

using namespace nucleisam;
using namespace nucleisam::train;

namespace {
std::vector<float> distances(const std::vector<int32_t>& ids, int h, int w) {
  return normalised_distance(ids.data(), h, w);
}

// Three-class, distance and a type head over 2 classes: 7 channels, types from channel 4.
models::HeadLayout distance_and_two_types() {
  models::HeadLayout heads;
  heads.distance = true;
  heads.num_classes = 2;
  return heads;
}
}  // namespace

TEST(NormalisedDistance, SquareInTheMiddle) {
  // 3x3 instance in a 5x5 image: centre 2 pixels from outside, ring 1 pixel -> 1 and 0.5.
  std::vector<int32_t> ids(25, 0);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) ids[y * 5 + x] = 1;
  auto d = distances(ids, 5, 5);
  EXPECT_FLOAT_EQ(d[2 * 5 + 2], 1.0f);
  EXPECT_FLOAT_EQ(d[1 * 5 + 1], 0.5f);
  EXPECT_FLOAT_EQ(d[1 * 5 + 2], 0.5f);
  EXPECT_FLOAT_EQ(d[3 * 5 + 3], 0.5f);
  EXPECT_FLOAT_EQ(d[0], 0.0f);
}

TEST(NormalisedDistance, AnotherInstanceCountsAsOutside) {
  // Two 3x3 instances side by side (columns 1-3 and 4-6) in a 5x8 image.
  std::vector<int32_t> ids(40, 0);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 6; ++x) ids[y * 8 + x] = x <= 3 ? 1 : 2;
  auto d = distances(ids, 5, 8);
  EXPECT_FLOAT_EQ(d[2 * 8 + 2], 1.0f);  // centre of 1
  EXPECT_FLOAT_EQ(d[2 * 8 + 3], 0.5f);  // touches instance 2
  EXPECT_FLOAT_EQ(d[2 * 8 + 4], 0.5f);  // touches instance 1
  EXPECT_FLOAT_EQ(d[2 * 8 + 5], 1.0f);  // centre of 2
}

TEST(NormalisedDistance, ImageBorderCountsAsOutsideAndDistancesAreEuclidean) {
  // 11x11 all instance except a hole at (5,5). Pixel (7,7): nearest outside is the hole at
  // sqrt(8); pixel (5,7): the hole at 2 (the border is 4 away). Their ratio is sqrt(2).
  std::vector<int32_t> ids(121, 1);
  ids[5 * 11 + 5] = 0;
  auto d = distances(ids, 11, 11);
  EXPECT_NEAR(d[7 * 11 + 7] / d[5 * 11 + 7], std::sqrt(2.0f), 1e-6);
  // (0,0): 1 from outside the image; (2,2): 3 from the border, sqrt(18) from the hole -> 3.
  EXPECT_NEAR(d[2 * 11 + 2] / d[0], 3.0f, 1e-6);
  EXPECT_FLOAT_EQ(d[5 * 11 + 5], 0.0f);
  float largest = 0;
  for (float v : d) largest = std::max(largest, v);
  EXPECT_FLOAT_EQ(largest, 1.0f);
}

TEST(NormalisedDistance, ThinLineIsOneEverywhere) {
  std::vector<int32_t> ids(3 * 6, 0);
  for (int x = 0; x < 6; ++x) ids[6 + x] = 4;  // id 4, ids need not be consecutive
  auto d = distances(ids, 3, 6);
  for (int x = 0; x < 6; ++x) EXPECT_FLOAT_EQ(d[6 + x], 1.0f);
}

TEST(Objective, SumsTheHeadsWithTheirWeights) {
  const models::HeadLayout heads = distance_and_two_types();
  torch::manual_seed(3);
  torch::Tensor logits = torch::randn({2, heads.channels(), 4, 4});
  BatchTargets t;
  t.three_class = torch::randint(0, 3, {2, 4, 4}, torch::kInt64);
  t.distance = torch::rand({2, 4, 4});
  t.classes = torch::randint(0, 3, {2, 4, 4}, torch::kInt64);
  ObjectiveOptions o;
  o.distance_weight = 2.0;
  o.class_weight = 0.5;
  ObjectiveTerms terms = objective(logits, t, heads, o);
  const double three = dice_focal_loss(logits.narrow(1, 0, 3), t.three_class, {}, o.dice_variant, o.focal_gamma).item<double>();
  const double dist = torch::mse_loss(torch::sigmoid(logits.select(1, 3)), t.distance).item<double>();
  const double cls = dice_focal_loss(logits.narrow(1, 4, 3), t.classes, {}, o.dice_variant, o.focal_gamma).item<double>();
  EXPECT_NEAR(terms.three_class.item<double>(), three, 1e-6);
  EXPECT_NEAR(terms.distance.item<double>(), dist, 1e-6);
  EXPECT_NEAR(terms.classes.item<double>(), cls, 1e-6);
  EXPECT_NEAR(terms.total.item<double>(), three + 2.0 * dist + 0.5 * cls, 1e-5);
}

TEST(Objective, WrongChannelCountIsAModelError) {
  models::HeadLayout heads;  // 4 channels
  BatchTargets t;
  t.three_class = torch::zeros({1, 2, 2}, torch::kInt64);
  t.distance = torch::zeros({1, 2, 2});
  EXPECT_THROW(objective(torch::zeros({1, 3, 2, 2}), t, heads, {}), ModelError);
}

TEST(Targets, ClassIdBeyondTheModelsClassesNamesTheSample) {
  data::Batch b;
  b.size = 1;
  b.height = 1;
  b.width = 2;
  b.instances = {1, 0};
  b.three_class = {1, 0};
  b.classes = {3, 0};
  b.names = {"tile7"};
  models::HeadLayout heads;
  heads.num_classes = 2;
  try {
    targets_from_batch(b, heads);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("tile7"), std::string::npos) << e.what();
  }
  heads.num_classes = 3;
  BatchTargets t = targets_from_batch(b, heads);
  EXPECT_EQ(t.classes[0][0][0].item<int64_t>(), 3);
  EXPECT_FLOAT_EQ(t.distance[0][0][0].item<float>(), 1.0f);
}

namespace {
// Two 1 x 2 samples: one nucleus pixel and one background pixel each; `classed` per sample.
data::Batch two_sample_batch(std::vector<uint8_t> classed) {
  data::Batch b;
  b.size = 2;
  b.height = 1;
  b.width = 2;
  b.instances = {1, 0, 1, 0};
  b.three_class = {1, 0, 1, 0};
  b.classes = {2, 0, 1, 0};  // the second sample's 1 is "nucleus", not a type, when it is unclassed
  b.names = {"typed", "plain"};
  b.classed = std::move(classed);
  return b;
}
}  // namespace

TEST(Targets, SamplesWithoutClassesAreListedApart) {
  models::HeadLayout heads;
  heads.num_classes = 2;
  BatchTargets mixed = targets_from_batch(two_sample_batch({1, 0}), heads);
  ASSERT_TRUE(mixed.classed_samples.defined());
  ASSERT_EQ(mixed.classed_samples.numel(), 1);
  EXPECT_EQ(mixed.classed_samples[0].item<int64_t>(), 0);
  // All classified (or a hand-made batch without flags): the whole batch, no index.
  EXPECT_FALSE(targets_from_batch(two_sample_batch({1, 1}), heads).classed_samples.defined());
  EXPECT_FALSE(targets_from_batch(two_sample_batch({}), heads).classed_samples.defined());
  BatchTargets none = targets_from_batch(two_sample_batch({0, 0}), heads);
  ASSERT_TRUE(none.classed_samples.defined());
  EXPECT_EQ(none.classed_samples.numel(), 0);
}

TEST(Objective, TypeLossSeesOnlyClassifiedSamples) {
  const models::HeadLayout heads = distance_and_two_types();
  torch::manual_seed(5);
  torch::Tensor logits = torch::randn({2, heads.channels(), 1, 2}, torch::requires_grad());
  ObjectiveOptions o;
  BatchTargets t = targets_from_batch(two_sample_batch({1, 0}), heads);
  ObjectiveTerms terms = objective(logits, t, heads, o);
  // Known answer: the type loss of the first sample alone, computed directly.
  const torch::Tensor first_logits = logits.narrow(0, 0, 1).narrow(1, heads.class_offset(), 3);
  const torch::Tensor first_target = torch::tensor({2, 0}, torch::kInt64).view({1, 1, 2});
  const double expected = dice_focal_loss(first_logits, first_target, {}, o.dice_variant, o.focal_gamma).item<double>();
  EXPECT_NEAR(terms.classes.item<double>(), expected, 1e-6);
  // Both samples counted would give another value (the check above can fail).
  const double both = dice_focal_loss(logits.narrow(1, heads.class_offset(), 3), t.classes, {}, o.dice_variant,
                                      o.focal_gamma).item<double>();
  EXPECT_GT(std::abs(both - expected), 1e-4);
  // No gradient reaches the unclassified sample's type channels; its other heads still learn.
  terms.total.backward();
  const torch::Tensor g = logits.grad();
  EXPECT_EQ(g.narrow(0, 1, 1).narrow(1, heads.class_offset(), 3).abs().max().item<float>(), 0.0f);
  EXPECT_GT(g.narrow(0, 0, 1).narrow(1, heads.class_offset(), 3).abs().max().item<float>(), 0.0f);
  EXPECT_GT(g.narrow(0, 1, 1).narrow(1, 0, 3).abs().max().item<float>(), 0.0f);
}

TEST(Objective, BatchWithoutClassifiedSamplesHasAZeroTypeTerm) {
  const models::HeadLayout heads = distance_and_two_types();
  torch::manual_seed(6);
  torch::Tensor logits = torch::randn({2, heads.channels(), 1, 2});
  ObjectiveOptions o;
  ObjectiveTerms terms = objective(logits, targets_from_batch(two_sample_batch({0, 0}), heads), heads, o);
  EXPECT_EQ(terms.classes.item<double>(), 0.0);
  EXPECT_NEAR(terms.total.item<double>(), terms.three_class.item<double>() + terms.distance.item<double>(), 1e-6);
}

TEST(Targets, CategoryModelWithClassesRefusesUnclassifiedSamples) {
  models::HeadLayout heads;
  heads.categories = true;
  heads.num_classes = 2;
  try {
    targets_from_batch(two_sample_batch({1, 0}), heads);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("plain"), std::string::npos) << e.what();
  }
  BatchTargets t = targets_from_batch(two_sample_batch({1, 1}), heads);
  EXPECT_EQ(t.categories[1][0][0].item<int64_t>(), 1);
  heads.num_classes = 0;  // class-agnostic categories: any data
  EXPECT_EQ(targets_from_batch(two_sample_batch({1, 0}), heads).categories[0][0][0].item<int64_t>(), 1);
}
