// The training objective of the segmentation networks: targets made from a batch's instance and
// class maps for every head of models::HeadLayout, and the loss over all heads.
//   three-class head: Dice + focal with equal weights (the method-1 loss, see losses.h);
//   distance head:    mean squared error of sigmoid(logit) against the normalised distance map;
//   type head:        Dice + focal over background + nucleus types, over the samples whose data
//                     annotate classes only (0 when a batch has none of them), so class-agnostic
//                     data can train the other heads of a classifying model beside classified data.
// A category layout (heads.categories, category-descriptor SAM) has one loss instead: the federated
// per-category BCE with the hinge margin (federated_bce_hinge_loss) over background, the nucleus
// types and boundary, each image's present categories being those in its target.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "nucleisam/data/loader.h"
#include "nucleisam/models/heads.h"
#include "nucleisam/train/losses.h"

namespace nucleisam::train {

// For each pixel of an instance, its Euclidean distance to the nearest pixel outside that
// instance (background, another instance, or outside the image), divided by the largest such
// distance in the instance: 1 at the instance's centre(s), falling to 1/max at its border; 0 on
// background. `instances` is height x width, row-major.
std::vector<float> normalised_distance(const int32_t* instances, int height, int width);

struct ObjectiveOptions {
  DiceVariant dice_variant = DiceVariant::standard;
  double focal_gamma = 2.0;
  std::vector<double> three_class_weights;  // background, interior, boundary; empty = equal
  double distance_weight = 1.0;
  double class_weight = 1.0;
  double hinge_margin = 0.2;  // categories: federated_bce_hinge_loss's margin (0 disables)
};

struct BatchTargets {
  torch::Tensor three_class;  // N x H x W int64 (0 background, 1 interior, 2 boundary)
  torch::Tensor distance;     // N x H x W float, undefined without a distance head
  torch::Tensor classes;      // N x H x W int64 class ids, undefined without a type head
  // Type head: the batch positions (int64) of the samples whose data annotate classes, when some
  // do not (Batch::classed); undefined when all do. The type loss sees only these samples.
  torch::Tensor classed_samples;
  // Category layouts: N x H x W int64 category per pixel: 0 background, the nucleus's type
  // (1 when class-agnostic) inside it, heads.boundary_category() on its boundary ring.
  torch::Tensor categories;
};
// Throws DataError when the layout has a type head (or categories with types) and a class id
// exceeds num_classes, or when a categories layout with types meets a nucleus of class 0 or a
// sample whose data has no classes (its per-category target would be wrong).
BatchTargets targets_from_batch(const data::Batch& batch, const models::HeadLayout& heads);

struct ObjectiveTerms {
  // Scalars; unused heads give undefined. For a category layout, total = three_class = the
  // federated BCE (three_class is the trainer's main-loss log column).
  torch::Tensor total, three_class, distance, classes;
};
// logits: N x heads.channels() x H x W (any float type; the loss is computed in fp32).
ObjectiveTerms objective(const torch::Tensor& logits, const BatchTargets& targets,
                         const models::HeadLayout& heads, const ObjectiveOptions& options);

}  // namespace nucleisam::train
