// The table of segmentation methods `nucleisam segment --model NAME` can run, in the manner of
// OpenSlide's format table: each entry has a name, a one-line description, what it needs (a model
// file, a SAM checkpoint) and a factory that builds it from the command's options.
//
// "classical" is built in. Other code adds a method without touching src/cli/segment.cpp by
// registering an entry before the command runs, typically with a static SegmenterRegistration in
// a file linked into the executable (a .cpp of src/cli/ or an object library: a static object in
// a static library that nothing references is dropped by the linker):
//
//   static nucleisam::SegmenterRegistration reg({
//       "eunet3plus", "eU-Net3+ trained by `nucleisam train`", {/*model_file=*/true},
//       [](const nucleisam::SegmenterOptions& o) { return make_model_segmenter(o.model_file, o); }});
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nucleisam/infer/segmenter.h"

namespace nucleisam::infer {

// The options of `nucleisam segment` a segmenter may read. Defaults are the command's defaults.
struct SegmenterOptions {
  int min_area = 30;             // smallest nucleus kept, pixels
  float split_depth = 2.0f;      // watershed depth needed to split touching nuclei; 0: no split
  float threshold_scale = 1.0f;  // classical: multiplies the Otsu threshold
  std::string model_file;        // --model-file: trained weights, for methods that need one
  std::string sam_checkpoint;    // --sam-checkpoint: an official SAM checkpoint
  std::string device = "cpu";    // "cpu" or "cuda"
  std::string precision = "auto";  // trained models: fp32 | bf16 | auto
  int batch_size = 4;              // trained models: windows run together
  int tta = 1;                     // trained models: test-time views averaged (1, 2, 4, 8)
  int window = 0;                  // trained models: the network's window in pixels; 0 = the card's
  int window_overlap = -1;         // trained models: overlap of those windows; < 0 = the card's
};

// What a method needs beyond an image; build_segmenter checks it before calling the factory.
struct SegmenterNeeds {
  bool model_file = false;
  bool sam_checkpoint = false;
};

struct SegmenterEntry {
  std::string name;         // the --model value
  std::string description;  // one line, shown in --help
  SegmenterNeeds needs;
  std::function<std::unique_ptr<Segmenter>(const SegmenterOptions&)> build;
};

// Every registered method, built-in ones first, then in registration order.
const std::vector<SegmenterEntry>& segmenters();
// Adds a method. Throws OptionError when the name is empty, taken, or the factory is missing.
void register_segmenter(SegmenterEntry entry);
// Builds the method `name`. Throws OptionError for an unknown name (listing the known ones) or a
// missing need ("--model eunet3plus needs --model-file").
std::unique_ptr<Segmenter> build_segmenter(const std::string& name, const SegmenterOptions& options);

struct SegmenterRegistration {
  explicit SegmenterRegistration(SegmenterEntry entry) { register_segmenter(std::move(entry)); }
};

}  // namespace nucleisam::infer
