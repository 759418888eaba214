// A trained model as one .safetensors file: the weights plus a "model card" in the file's string
// metadata holding everything needed to run it (architecture and options, output heads, class
// names, input normalisation, the resolution it was trained at, the window size and the instance
// decoding chosen on validation). No side files, no conversion step.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nucleisam/models/heads.h"
#include "nucleisam/models/segmentation_model.h"
#include "nucleisam/stain.h"

namespace nucleisam::models {

struct ModelCard {
  std::string name;                            // "he-nuclei", or the run's name
  std::string arch;                            // see network_architectures()
  std::map<std::string, std::string> options;  // network options (ModelOptions)
  HeadLayout heads;
  std::vector<std::string> class_names;        // index 0 = background; empty when class-agnostic
  // The network sees (rgb / 255 - mean) / std per channel, RGB order.
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f}, std{0.25f, 0.25f, 0.25f};
  double mpp = 0;                              // microns per pixel of the training data; 0 = unknown
  // Stain amounts of the training images (nucleisam/stain.h, training_amount_range), for `segment
  // --stain-normalize range`; unset in cards written before it existed.
  std::optional<StainAmountRange> stain_range;
  int tile_size = 256;                         // inference window (a multiple of input_multiple())
  int tile_overlap = 64;
  // Instance decoding: "method" (three_class | distance) and its parameters (see model_decoding.h).
  std::map<std::string, std::string> decoding;
  std::map<std::string, std::string> info;     // free text: training data, validation scores, ...
};

// The card as flat safetensors metadata and back. card_from_metadata throws ModelError naming
// `source` for a file that is not a nucleisam model or has a malformed card.
std::map<std::string, std::string> card_metadata(const ModelCard& card);
ModelCard card_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source);

// Builds the (untrained) network a card describes.
SegmentationNetwork build_network(const ModelCard& card);

// Writes weights (parameters and buffers, optionally stored as float16) and card atomically.
void save_model(const std::string& path, SegmentationNetworkImpl& network, const ModelCard& card,
                bool half_precision = false);

struct LoadedModel {
  SegmentationNetwork network;  // in eval mode, float32, on the CPU
  ModelCard card;
};
// Reads a file written by save_model. ModelError / CheckpointError naming the path when it is not a
// nucleisam model, its card is malformed, or the weights do not fit the architecture.
LoadedModel load_model(const std::string& path);

}  // namespace nucleisam::models
