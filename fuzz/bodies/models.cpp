// Fuzz body of the model card: the string metadata of a model file (models/model_file.h). The
// input is "key=value" lines (the form the metadata takes in the safetensors header, without the
// JSON, which fuzz_safetensors covers).
#include <map>
#include <string>

#include "harness.h"
#include "nucleisam/models/model_file.h"

namespace nucleisam::fuzz {

void fuzz_model_card(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> metadata;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) metadata[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  const models::ModelCard card = models::card_from_metadata(metadata, "fuzz.safetensors");
  // The card must survive a round trip through the metadata it came from.
  (void)models::card_from_metadata(models::card_metadata(card), "fuzz.safetensors");
}

}  // namespace nucleisam::fuzz
