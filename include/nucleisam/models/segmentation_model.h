// The contract between the trainer / the model segmenter and every trainable segmentation network
// (U-Net, U-Net3+, eU-Net3+, SAM-guided eU-Net3+): normalised RGB in, per-pixel logits out. What
// the output channels mean (interior / boundary / distance / class heads) is decided by the caller
// through `out_channels`; the networks know nothing about heads. Models are built by name from a
// flat option map, the same map that the JSON config's "model" object and an exported model's
// .safetensors metadata hold, so a model file always rebuilds the exact architecture it came from.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace nucleisam::models {

// Options as key -> value strings ("width" -> "32", "excitation" -> "glu"). Typed getters return
// the fallback when a key is absent and throw ModelError naming the key for a value of the wrong
// type ("model option 'width': expected an integer, found '3x2'"). Every key a getter asked for
// is remembered, so build_model can reject the ones nobody used (a misspelt option).
class ModelOptions {
 public:
  ModelOptions() = default;
  explicit ModelOptions(std::map<std::string, std::string> values);

  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  bool flag(const std::string& key, bool fallback) const;  // true/false/1/0
  std::string text(const std::string& key, const std::string& fallback) const;
  // text() restricted to `allowed`; throws ModelError listing them otherwise.
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) const;

  const std::map<std::string, std::string>& values() const { return values_; }
  // Keys present in values() that no getter has asked for.
  std::vector<std::string> unused() const;

 private:
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> used_;
};

struct SegmentationNetworkImpl : torch::nn::Module {
  // images: N x 3 x H x W float, already normalised by the caller; H and W multiples of
  // input_multiple(). guidance: a frozen SAM image embedding N x C x h x w (any h, w: the network
  // resamples it) for networks with needs_guidance(), an undefined tensor otherwise.
  // Returns logits N x out_channels x H x W.
  virtual torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& guidance) = 0;
  virtual bool needs_guidance() const { return false; }
  virtual int64_t input_multiple() const = 0;
  virtual int64_t out_channels() const = 0;
};
using SegmentationNetwork = std::shared_ptr<SegmentationNetworkImpl>;

// Builds a network by architecture name ("unet", "unet3plus", "eunet3plus", "sam-eunet3plus").
// Throws ModelError for an unknown name, an unknown (unused) option or an invalid value.
SegmentationNetwork build_network(const std::string& arch, int64_t out_channels,
                                  const ModelOptions& options);
std::vector<std::string> network_architectures();

}  // namespace nucleisam::models
