// The segmenter table: built-in methods first, then those registered by other code.
#include "nucleisam/infer/segmenter_registry.h"

#include "nucleisam/errors.h"
#include "nucleisam/infer/classical_segmenter.h"

namespace nucleisam::infer {
namespace {

std::unique_ptr<Segmenter> build_classical(const SegmenterOptions& o) {
  ClassicalOptions options;
  options.split.min_area = o.min_area;
  options.split.split_depth = o.split_depth;
  options.threshold_scale = o.threshold_scale;
  return std::make_unique<ClassicalSegmenter>(options);
}

// A function-local table, so registrations from static objects in other files never run before
// it exists.
std::vector<SegmenterEntry>& table() {
  static std::vector<SegmenterEntry> entries = {
      {"classical", "training-free baseline: colour deconvolution, Otsu threshold, watershed split", {},
       build_classical},
  };
  return entries;
}

std::string names() {
  std::string s;
  for (const auto& e : table()) s += (s.empty() ? "" : ", ") + e.name;
  return s;
}

}  // namespace

const std::vector<SegmenterEntry>& segmenters() { return table(); }

void register_segmenter(SegmenterEntry entry) {
  if (entry.name.empty()) throw OptionError("segmenter registry: a segmenter needs a name");
  if (!entry.build) throw OptionError("segmenter registry: segmenter '" + entry.name + "' has no factory");
  for (const auto& e : table())
    if (e.name == entry.name) throw OptionError("segmenter registry: '" + entry.name + "' is registered twice");
  table().push_back(std::move(entry));
}

std::unique_ptr<Segmenter> build_segmenter(const std::string& name, const SegmenterOptions& options) {
  for (const auto& e : table()) {
    if (e.name != name) continue;
    if (e.needs.model_file && options.model_file.empty())
      throw OptionError("--model " + name + " needs --model-file (trained weights)");
    if (e.needs.sam_checkpoint && options.sam_checkpoint.empty())
      throw OptionError("--model " + name + " needs --sam-checkpoint (an official SAM checkpoint)");
    return e.build(options);
  }
  throw OptionError("--model " + name + ": unknown segmentation method (known: " + names() + ")");
}

}  // namespace nucleisam::infer
