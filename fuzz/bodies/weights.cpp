// Fuzz bodies of the checkpoint readers (src/weights): zip directory, pickle, whole .pth and
// .safetensors files, the header JSON subset.
#include <torch/torch.h>

#include "harness.h"
#include "nucleisam/weights/state_dict.h"
#include "weights/header_json.h"
#include "weights/state_pickle.h"
#include "weights/zip_archive.h"

namespace nucleisam::fuzz {
namespace {

// Touches every element, so a tensor that points outside its file is an ASan report here.
void touch(const weights::StateDict& state) {
  for (const auto& [name, tensor] : state.entries) {
    (void)name;
    if (tensor.numel() > 0 && tensor.numel() < (1 << 20)) (void)tensor.to(torch::kDouble).sum().item<double>();
  }
}

}  // namespace

void fuzz_zip(const uint8_t* data, size_t size) {
  const auto entries = weights::read_zip_directory(data, size, "fuzz.pth");
  for (const auto& e : entries) {
    const uint8_t* p = weights::stored_entry_data(data, e, "fuzz.pth");
    (void)weights::crc32(p, static_cast<size_t>(e.size));
  }
}

void fuzz_pickle(const uint8_t* data, size_t size) {
  (void)weights::read_state_pickle(data, size, "fuzz.pth: data.pkl");
}

void fuzz_pth(const uint8_t* data, size_t size) {
  touch(weights::read_checkpoint(scratch_file(data, size, ".pth")));
}

void fuzz_safetensors(const uint8_t* data, size_t size) {
  const std::string path = scratch_file(data, size, ".safetensors");
  (void)weights::read_safetensors_metadata(path);
  touch(weights::read_checkpoint(path));
}

void fuzz_weights_json(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)weights::json_quote(weights::parse_json(text, "fuzz.safetensors: header").string);
}

}  // namespace nucleisam::fuzz
