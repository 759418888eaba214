// Fuzz body of the training recipe (configs/*.json): the bytes go through the same steps as
// `nucleisam train --config`: the JSON depth check, nlohmann-json, then parse_recipe. A recipe
// that parses must come back unchanged through its resolved form (what --resume reads).
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "cli/recipe.h"
#include "harness.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"

namespace nucleisam::fuzz {

void fuzz_recipe(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  limits::check_json_depth(text, "fuzz.json");
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;  // `train` refuses it as "not valid JSON"
  // Relative paths resolve against a folder that does not exist: nothing is read or written.
  const cli::Recipe r = cli::parse_recipe(j, "fuzz.json", "/nonexistent-nucleisam-fuzz");
  cli::Recipe again;
  try {
    again = cli::parse_recipe(r.resolved, "resolved fuzz.json", "/nonexistent-nucleisam-fuzz");
  } catch (const Error& e) {
    throw std::logic_error(std::string("the resolved recipe does not parse: ") + e.what());
  }
  if (again.resolved != r.resolved) throw std::logic_error("the resolved recipe changes when parsed again");
}

}  // namespace nucleisam::fuzz
