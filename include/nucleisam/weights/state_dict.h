// Model weights, independent of any one model: a state dict (named tensors in file order), read
// from and written to PyTorch .pth files (torch.save zip archive with a pickled (Ordered)Dict of
// tensors, e.g. the official SAM / MobileSAM checkpoints) with no Python, and .safetensors; and
// copied into / taken from any torch::nn::Module. The pickle reader is
// safe by construction: it understands only what a tensor state dict needs and rejects any other
// pickle content with a CheckpointError. See docs/checkpoints.md.
#pragma once

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace nucleisam::weights {

// Tensors in file order (the order of the pickled dict / the safetensors header).
struct StateDict {
  std::vector<std::pair<std::string, torch::Tensor>> entries;

  bool contains(const std::string& key) const;
  // Throws CheckpointError naming the key when absent.
  const torch::Tensor& at(const std::string& key) const;
  size_t size() const { return entries.size(); }
  int64_t numel() const;
};

// True when some key starts with `prefix` (e.g. "image_encoder.layers." tells a TinyViT
// MobileSAM file from a ViT one, which has "image_encoder.blocks.").
bool has_prefix(const StateDict& state, const std::string& prefix);

// Reads a .pth (zip, detected by content, not extension) or .safetensors file. Throws
// CheckpointError naming the path and the cause for a missing, truncated, corrupt or unsafe file.
// Tensors are on the CPU and keep the file's layout: views that shared a storage in PyTorch
// share it here too (same offsets and strides). They are backed by a private copy-on-write
// memory map of the file, so reading costs no copy; writing into them never changes the file.
// Nested dicts ({"model": {...}, "epoch": 3}) are flattened to "model.<key>"; non-tensor values
// are skipped.
StateDict read_checkpoint(const std::string& path);

// The "__metadata__" string map of a .safetensors file (empty when it has none). CheckpointError
// for anything that is not a valid safetensors file.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

// Writes a torch.save-compatible .pth (zip archive, pickle protocol 2, OrderedDict of tensors,
// each tensor contiguous in its own storage) that PyTorch's torch.load and read_checkpoint both
// read. Atomic. CheckpointError for a dtype PyTorch checkpoints cannot hold here (complex, ...).
void write_pth(const std::string& path, const StateDict& state);
// Writes .safetensors (tensors in state order, header padded to 8 bytes). Atomic.
void write_safetensors(const std::string& path, const StateDict& state,
                       const std::map<std::string, std::string>& metadata = {});

// Copies every named parameter and buffer of `module` from `state` (keys are prefix + module
// name). Nothing is copied unless everything matches: all missing, unexpected (when strict; only
// keys under `prefix` are considered) and wrong-shape / wrong-dtype keys are reported by name in
// one CheckpointError, e.g. "model.pth: 2 missing (image_encoder.neck.3.weight, ...); 1 wrong
// shape (mask_decoder.iou_token.weight expected [1, 256] found [1, 128])".
// Floating tensors convert between float types (a float16 file loads into a float32 model);
// integer buffers accept any integer type; float <-> integer is an error.
// `non_persistent` names module buffers (relative to the module, e.g. "pixel_mean") that a file
// does not contain, like PyTorch's register_buffer(..., persistent=false): they are neither
// required nor loaded, and a file that does contain them gets them reported as unexpected.
void load_into(torch::nn::Module& module, const StateDict& state, const std::string& source_name,
               const std::string& prefix = "", bool strict = true,
               const std::set<std::string>& non_persistent = {});

// The state dict of a module in PyTorch's order (per module: parameters, then buffers, then
// children), leaving out `non_persistent` buffers. Tensors are detached but share memory with
// the module, like PyTorch's state_dict().
StateDict state_of(const torch::nn::Module& module, const std::string& prefix = "",
                   const std::set<std::string>& non_persistent = {});

// "[256, 3, 16, 16]": a tensor shape as error messages print it.
std::string shape_string(torch::IntArrayRef sizes);

}  // namespace nucleisam::weights
