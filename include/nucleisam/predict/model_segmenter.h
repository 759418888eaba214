// Runs a trained segmentation network over an image of any size: overlapping windows of the
// model's tile size, batched, probability maps blended across overlaps with weights that fall off
// towards each window's edge (so no seam shows), then one instance decoding over the whole image.
// Images larger than what should be held at once are cut by segment_in_tiles around this.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "nucleisam/infer/model_decoding.h"
#include "nucleisam/infer/segmenter.h"
#include "nucleisam/models/model_file.h"

namespace nucleisam::predict {

// Guidance for SAM-guided networks: the frozen SAM embedding of a batch of windows, given as
// uint8-valued RGB float N x 3 x H x W (0..255).
using WindowGuidance = std::function<torch::Tensor(const torch::Tensor& rgb)>;

struct ModelSegmenterOptions {
  int batch_size = 4;
  std::string precision = "fp32";  // fp32 | bf16
  int tile_size = 0;               // 0: the model card's
  int tile_overlap = -1;           // < 0: the model card's
  WindowGuidance guidance;         // required for networks with needs_guidance()
  int tta = 1;                     // views averaged per window: 1, 2, 4 or 8 (predict/test_time_views.h)
};

class ModelSegmenter : public infer::Segmenter {
 public:
  ModelSegmenter(models::SegmentationNetwork network, models::ModelCard card, ModelSegmenterOptions options = {});
  // Loads a model file (models/model_file.h).
  static std::unique_ptr<ModelSegmenter> from_file(const std::string& path, ModelSegmenterOptions options = {});

  std::string name() const override { return card_.name; }
  infer::Segmentation segment(const Image& image, const std::string& source) override;
  double microns_per_pixel() const override { return card_.mpp; }
  std::optional<StainAmountRange> stain_range() const override { return card_.stain_range; }

  // The blended head probabilities of the whole image.
  infer::HeadMaps predict(const Image& image);
  const models::ModelCard& card() const { return card_; }
  const infer::DecodingOptions& decoding() const { return decoding_; }
  void set_decoding(const infer::DecodingOptions& decoding) { decoding_ = decoding; }

 private:
  models::SegmentationNetwork network_;
  models::ModelCard card_;
  ModelSegmenterOptions options_;
  infer::DecodingOptions decoding_;
};

// The file of a model given by path or by the name of a shipped model ("he-nuclei"): a path that
// exists is used as is; a name is looked up as <name>.safetensors in $NUCLEISAM_MODELS, then in
// the models/ folder next to the executable's parent (an installed or built tree), then in the
// source tree's models/. A missing path is an IoError; an unknown name an OptionError listing where
// it looked.
std::string find_model_file(const std::string& name_or_path);

}  // namespace nucleisam::predict
