// Datasets of annotated nucleus images: the Sample every reader yields and the Dataset interface,
// so training, evaluation and benchmarks never care where the data came from. Standard library
// only (part of the data core, nucleisam_data_core); the readers of the file formats are in
// nucleisam/data/readers.h. Formats, split handling and the relabelling rule: docs/data.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nucleisam/raster.h"
#include "nucleisam/relabel.h"  // relabel_consecutive, used by every reader
#include "nucleisam/stain.h"

namespace nucleisam::data {

// A dense float array of one sample, row-major (C order); data.size() == product of shape.
struct SampleExtra {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct Sample {
  std::string name;           // stem, unique within the dataset (used to match predictions)
  Image image;                // RGB uint8
  LabelMap instances;         // 0 = background, 1..N consecutive (gaps relabelled on load)
  // Class per instance where the dataset has classes: classes[i] is the class of instance i + 1
  // (classes.size() == number of instances). Empty when the dataset has no classes.
  std::vector<int> classes;
  bool classed = false;       // the dataset annotates classes (true even when there are no nuclei)
  std::string group;          // the image's group where the dataset records one (PanNuke: tissue type)
  // Optional extra per-sample data by name (e.g. "sam_embedding": a cached SAM image embedding of
  // shape {256, 64, 64}; "class_presence": {num_classes}), carried into Batch::extras. Augmentation
  // copies extras unchanged: they must not depend on the pixel geometry (a spatial extra such as
  // an embedding is only valid when the geometric augmentations are off).
  std::map<std::string, SampleExtra> extras;
  int instance_count() const;
  // Per-pixel class map built from instances + classes (0 = background). For an unclassed sample
  // every instance pixel is 1.
  LabelMap class_map() const;
};

// Class names by id (index 0 = background). Empty for class-agnostic datasets.
using ClassNames = std::vector<std::string>;

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Loads sample i (reads files on demand; thread-safe). Throws DataError / IoError naming the
  // file for unreadable files, image/label size mismatches and unknown class ids.
  virtual Sample get(size_t i) const = 0;
  virtual std::string name(size_t i) const = 0;
  virtual const ClassNames& class_names() const = 0;
  // Format name as accepted by open_dataset ("consep", ...); "" for other implementations.
  virtual std::string format() const { return ""; }
  // The resolution the dataset's images were released at, in microns per pixel, where the
  // dataset fixes one (MoNuSeg, CoNSeP, PanNuke: 40x, 0.25; Lizard, CoNIC: 20x, 0.5); 0 unknown.
  virtual double microns_per_pixel() const { return 0; }
};

// The stain amounts a dataset's images span (training_amount_range in nucleisam/stain.h), from the
// Macenko estimate of at most `max_images` samples spread evenly over it; images without an
// estimate (too little tissue, one stain) are left out. Unset when none has one.
std::optional<StainAmountRange> dataset_stain_range(const Dataset& dataset, size_t max_images = 200);

}  // namespace nucleisam::data
