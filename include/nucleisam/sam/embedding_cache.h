// The SAM image-embedding cache: what `nucleisam sam-embed` writes, `nucleisam sam --embedding`
// reads, and the SAM-guided model's training reads. One embedding is two files: E.npy (float32,
// the encoder output, [1, 256, h, w]) and its JSON sidecar E.json (model type, checkpoint, image,
// input size, original and resized image sizes, shape). Core: LibTorch and the standard library.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nucleisam::sam {

struct EmbeddingInfo {
  std::string model_type;  // "vit_b", "vit_t", ... as SamImpl::model_type()
  std::string checkpoint;  // the checkpoint that made it (as given on the command line)
  std::string image;       // the image it encodes (as given)
  int input_size = 1024;   // encoder input side
  int original_height = 0, original_width = 0;
  int resized_height = 0, resized_width = 0;
  std::string precision = "fp32";  // the encoder's arithmetic (fp32 | bf16); fp32 when not recorded
  std::vector<int64_t> shape;  // of the .npy array
};

// E.npy -> E.json.
std::string embedding_sidecar_path(const std::string& npy_path);

// Writes the embedding (any float tensor, any device) to npy_path and its sidecar beside it, each
// atomically; info.shape is set from the tensor. The sidecar is two-space-indented JSON with keys
// in alphabetical order.
void write_embedding(const std::string& npy_path, const torch::Tensor& embedding, EmbeddingInfo info);
// The sidecar of npy_path. IoError "<E.json>: not a sam-embed sidecar (...)" when it is missing a
// field or is not JSON.
EmbeddingInfo read_embedding_info(const std::string& npy_path);
// The embedding as a float32 CPU tensor of its stored shape, with its sidecar; IoError naming the
// file when the array is not numeric or its shape differs from the sidecar's.
torch::Tensor read_embedding(const std::string& npy_path, EmbeddingInfo* info = nullptr);

}  // namespace nucleisam::sam
