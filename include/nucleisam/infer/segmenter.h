// The contract between `nucleisam segment` and a segmentation method: an RGB tile in, instances
// (plus optional per-instance classes and scores) out. The classical baseline implements it
// today; the model-based methods (--model eunet3plus | category-sam) implement the same interface.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nucleisam/raster.h"
#include "nucleisam/stain.h"

namespace nucleisam::infer {

struct Segmentation {
  LabelMap instances;                    // 0 background, 1..N nuclei
  std::vector<int> classes;              // per instance (index id-1); empty = unclassified
  std::vector<float> scores;             // per instance (index id-1); empty = no confidence (1)
  std::vector<std::string> class_names;  // indexed by class id; index 0 unused
};

class Segmenter {
 public:
  virtual ~Segmenter() = default;
  virtual std::string name() const = 0;
  // `source` names the image in warnings ("slide.tif: no tissue found").
  virtual Segmentation segment(const Image& image, const std::string& source) = 0;
  // Microns per pixel of the images the method was made for (a model's training data); 0 when the
  // method does not know. Whole slides are resampled to it (infer/slide_run.h).
  virtual double microns_per_pixel() const { return 0; }
  // The range of stain amounts of the images the method learned from (a trained model's card), for
  // `--stain-normalize range`; none: the shipped models' range (reference_amount_range()).
  virtual std::optional<StainAmountRange> stain_range() const { return std::nullopt; }
};

}  // namespace nucleisam::infer
