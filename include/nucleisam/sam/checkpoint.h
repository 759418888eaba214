// Model checkpoints: the official SAM / MobileSAM .pth files (torch.save zip archive with a pickled
// (Ordered)Dict of tensors) read directly with no Python, and .safetensors. The pickle reader is
// safe by construction: it understands only what a tensor state dict needs and rejects any other
// pickle content with a CheckpointError.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace nucleisam::sam {

// Tensors in file order (the order of the pickled dict / the safetensors header).
struct StateDict {
  std::vector<std::pair<std::string, torch::Tensor>> entries;

  bool contains(const std::string& key) const;
  // Throws CheckpointError naming the key when absent.
  const torch::Tensor& at(const std::string& key) const;
  size_t size() const { return entries.size(); }
  int64_t numel() const;
};

// Reads a .pth (zip, detected by content, not extension) or .safetensors file. Throws
// CheckpointError naming the path and the cause for a missing, truncated, corrupt or unsafe file.
StateDict read_checkpoint(const std::string& path);

// Writes a torch.save-compatible .pth (zip archive, pickle protocol 2, OrderedDict of tensors)
// that PyTorch's torch.load and read_checkpoint both read. Atomic.
void write_pth(const std::string& path, const StateDict& state);
// Writes .safetensors. Atomic.
void write_safetensors(const std::string& path, const StateDict& state);

// Copies every named parameter and buffer of `module` from `state` (keys are prefix + module
// name). Reports all missing, unexpected (when strict) and wrong-shape keys by name in one
// CheckpointError, e.g. "model.pth: 2 missing (image_encoder.neck.3.weight, ...), 1 wrong shape
// (... expected [256] found [128])".
void load_into(torch::nn::Module& module, const StateDict& state, const std::string& source_name,
               const std::string& prefix = "", bool strict = true);

// The state dict of a module (parameters and persistent buffers), in registration order.
StateDict state_of(const torch::nn::Module& module, const std::string& prefix = "");

}  // namespace nucleisam::sam
