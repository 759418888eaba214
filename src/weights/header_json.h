// The small JSON subset a safetensors header uses (objects, arrays, strings, integers, true,
// false, null), kept in src/weights so the compute core needs no JSON library. Object members keep
// their file order, which is the tensor order of a safetensors file.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nucleisam::weights {

struct JsonValue {
  enum class Kind { null, boolean, integer, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  int64_t integer = 0;
  std::string string;
  std::vector<JsonValue> items;                            // array
  std::vector<std::pair<std::string, JsonValue>> members;  // object, in file order
};

// Parses `text` as one JSON value. Throws CheckpointError("<where>: ...") on malformed input,
// floats, duplicate object keys, or nesting deeper than 32.
JsonValue parse_json(const std::string& text, const std::string& where);

// `s` as a JSON string literal, quotes included.
std::string json_quote(const std::string& s);

}  // namespace nucleisam::weights
