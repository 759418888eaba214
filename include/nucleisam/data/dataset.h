// Datasets of annotated nucleus images. Every reader yields the same Sample so training,
// evaluation and benchmarks never care where the data came from.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::data {

struct Sample {
  std::string name;           // stem, unique within the dataset (used to match predictions)
  Image image;                // RGB uint8
  LabelMap instances;         // 0 = background, 1..N consecutive (gaps relabelled on load)
  // Class per instance where the dataset has classes: classes[i] is the class of instance i + 1
  // (classes.size() == number of instances). Empty when the dataset has no classes.
  std::vector<int> classes;
  bool classed = false;       // the dataset annotates classes (true even when there are no nuclei)
  int instance_count() const;
  // Per-pixel class map built from instances + classes (0 = background).
  LabelMap class_map() const;
};

// Class names by id (index 0 = background). Empty for class-agnostic datasets.
using ClassNames = std::vector<std::string>;

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Loads sample i (reads files on demand; thread-safe).
  virtual Sample get(size_t i) const = 0;
  virtual std::string name(size_t i) const = 0;
  virtual const ClassNames& class_names() const = 0;
};

// Opens a dataset by format name ("monuseg", "consep", "lizard", "conic", "pannuke", "folder")
// or, with format "auto", by looking at the folder. Throws DataError / IoError naming the path.
std::unique_ptr<Dataset> open_dataset(const std::string& path, const std::string& format = "auto");

}  // namespace nucleisam::data
