// Frozen SAM image embeddings as guidance for the SAM-guided eU-Net3+ (method 1). Windows are
// prepared exactly as the official SamPredictor.set_image prepares an image (Pillow-exact resize of
// the longest side to the input size, normalisation, zero padding), which is how the paper's
// authors cached their features (a 256 x 256 tile upscaled to 1024 gives 256 x 64 x 64).
//
// Embeddings are computed on the fly for every (augmented) training crop and every inference
// window rather than cached per tile: geometric augmentation changes the pixels the encoder sees,
// and a cache of fixed views would train the fusion block on features that do not match its crop.
// The encoder is frozen (no gradient, eval mode) and its cost is reported by bench_train_throughput.
#pragma once

#include <torch/torch.h>

#include <string>

#include "nucleisam/sam/sam_model.h"

namespace nucleisam::predict {

class SamGuidance {
 public:
  // Any checkpoint the SAM engine loads (vit_b/l/h, MobileSAM vit_t). input_size: the encoder's
  // square input (1024 official; a multiple of 16).
  SamGuidance(const std::string& checkpoint, int input_size = 1024);
  // rgb: N x 3 x H x W float with values 0..255 (RGB). Returns N x 256 x S/16 x S/16.
  torch::Tensor embed(const torch::Tensor& rgb);
  int input_size() const { return input_size_; }
  const std::string& model_type() const { return model_type_; }

 private:
  sam::Sam sam_;
  int input_size_;
  std::string model_type_;
};

}  // namespace nucleisam::predict
