// From a network's per-pixel head maps (models/heads.h) to nuclei: two instance decodings, chosen
// per model on its validation split and recorded in the model card:
//   three_class  interior components grown back over the boundary ring (instances_from_three_class);
//   distance     foreground = interior + boundary; markers = components of the predicted normalised
//                distance above a level inside the foreground; marker-controlled watershed on the
//                inverted distance (the HoVer-Net-style "energy" decoding).
// Then, for a model with a type head, each instance's class by majority vote of the per-pixel
// argmax over the nucleus types, and a score per instance (mean probability, used by COCO mAP).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nucleisam/infer/postprocess.h"
#include "nucleisam/infer/segmenter.h"

namespace nucleisam::infer {

// Probability maps of one image (every map the image's size).
struct HeadMaps {
  ProbabilityMap background, interior, boundary;
  ProbabilityMap distance;             // empty without a distance head
  std::vector<ProbabilityMap> types;   // background, type 1..K (softmax); empty without a type head
};

struct DecodingOptions {
  std::string method = "three_class";  // three_class | distance
  ThreeClassOptions three_class;
  float foreground_threshold = 0.5f;   // distance: interior + boundary above this is foreground
  float marker_threshold = 0.5f;       // distance: markers where the distance exceeds this
  int min_marker_area = 5;             // distance: smaller marker components are dropped
  int min_area = 10;                   // both: smaller final instances are removed
};

// Card entries ("method", "marker_threshold", ...) <-> options. Unknown keys or bad values throw
// ModelError naming `source`.
DecodingOptions decoding_from_map(const std::map<std::string, std::string>& entries, const std::string& source);
std::map<std::string, std::string> decoding_to_map(const DecodingOptions& options);

LabelMap decode_instances(const HeadMaps& maps, const DecodingOptions& options);

// Instances + classes (majority vote; ties to the lower class id) + scores. class_names: index 0
// background; empty for class-agnostic models. Score: mean foreground probability (interior +
// boundary) over the instance, times the mean probability of its class when there are types.
Segmentation assemble_segmentation(const HeadMaps& maps, LabelMap instances,
                                   const std::vector<std::string>& class_names);

}  // namespace nucleisam::infer
