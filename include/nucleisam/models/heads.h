// What the output channels of a trained segmentation network mean. Every network of this project
// predicts the same per-pixel heads, so the trainer, the model file and the segmenter agree on one
// layout:
//   channels 0..2            three-class logits: background, interior, boundary (softmax);
//   channel 3 (distance)     normalised distance to the nucleus border, 1 at its centre (sigmoid);
//   next num_classes + 1     nucleus-type logits: background, type 1..num_classes (softmax).
// The three-class head gives semantic foreground (interior + boundary) for Dice / mIoU; the
// three-class and distance heads give two instance decodings (see infer/model_decoding.h).
//
// Category-descriptor SAM (arch "category-sam", categories = true) predicts instead one sigmoid
// map per category, no distance channel:
//   channel 0                background;
//   channels 1..num_classes  nucleus types (one "nucleus" channel when class-agnostic);
//   last channel             boundary.
#pragma once

#include <algorithm>
#include <cstdint>

namespace nucleisam::models {

struct HeadLayout {
  bool distance = true;     // predict the distance channel (ignored when categories)
  int num_classes = 0;      // nucleus types; 0 = class-agnostic (no type head)
  bool categories = false;  // one sigmoid map per category (category-descriptor SAM), see above

  static constexpr int64_t kThreeClass = 0;
  int64_t distance_channel() const { return distance && !categories ? 3 : -1; }
  int64_t class_offset() const { return num_classes > 0 && !categories ? (distance ? 4 : 3) : -1; }
  // categories: background, nucleus types (at least one), boundary.
  int64_t category_count() const { return categories ? std::max(num_classes, 1) + 2 : 0; }
  int64_t boundary_category() const { return categories ? category_count() - 1 : -1; }
  int64_t channels() const {
    if (categories) return category_count();
    return 3 + (distance ? 1 : 0) + (num_classes > 0 ? num_classes + 1 : 0);
  }
};

}  // namespace nucleisam::models
