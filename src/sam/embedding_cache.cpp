// The SAM embedding cache files (see include/nucleisam/sam/embedding_cache.h). The sidecar is
// written and read with weights' small JSON subset, so the core needs no JSON library.
#include "nucleisam/sam/embedding_cache.h"

#include <filesystem>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/npy.h"
#include "weights/header_json.h"

namespace nucleisam::sam {
namespace {

using weights::JsonValue;

const JsonValue& member(const JsonValue& obj, const std::string& key, JsonValue::Kind kind, const std::string& where) {
  for (const auto& [k, v] : obj.members)
    if (k == key) {
      if (v.kind != kind) throw IoError(where + ": not a sam-embed sidecar (\"" + key + "\" has the wrong type)");
      return v;
    }
  throw IoError(where + ": not a sam-embed sidecar (no \"" + key + "\")");
}

int integer_member(const JsonValue& obj, const std::string& key, const std::string& where) {
  const int64_t v = member(obj, key, JsonValue::Kind::integer, where).integer;
  if (v < 0 || v > (1 << 30)) throw IoError(where + ": \"" + key + "\" is out of range");
  return static_cast<int>(v);
}

}  // namespace

std::string embedding_sidecar_path(const std::string& npy_path) {
  return std::filesystem::path(npy_path).replace_extension(".json").string();
}

void write_embedding(const std::string& npy_path, const torch::Tensor& embedding, EmbeddingInfo info) {
  const torch::Tensor e = embedding.detach().to(torch::kCPU, torch::kFloat).contiguous();
  info.shape.assign(e.sizes().begin(), e.sizes().end());
  write_npy<float>(npy_path, e.data_ptr<float>(), info.shape);
  // Keys in alphabetical order, two-space indentation, one array element per line.
  std::string j = "{\n";
  auto field = [&j](const std::string& key, const std::string& value, bool last = false) {
    j += "  " + weights::json_quote(key) + ": " + value + (last ? "\n" : ",\n");
  };
  field("checkpoint", weights::json_quote(info.checkpoint));
  field("image", weights::json_quote(info.image));
  field("input_size", std::to_string(info.input_size));
  field("model_type", weights::json_quote(info.model_type));
  field("original_height", std::to_string(info.original_height));
  field("original_width", std::to_string(info.original_width));
  field("precision", weights::json_quote(info.precision));
  field("resized_height", std::to_string(info.resized_height));
  field("resized_width", std::to_string(info.resized_width));
  std::string shape = "[";
  for (size_t i = 0; i < info.shape.size(); ++i)
    shape += (i ? ",\n    " : "\n    ") + std::to_string(info.shape[i]);
  shape += info.shape.empty() ? "]" : "\n  ]";
  field("shape", shape, true);
  j += "}\n";
  write_file_atomic(embedding_sidecar_path(npy_path), j);
}

EmbeddingInfo read_embedding_info(const std::string& npy_path) {
  const std::string where = embedding_sidecar_path(npy_path);
  JsonValue root;
  try {
    root = weights::parse_json(read_file(where), where);
  } catch (const CheckpointError& e) {
    throw IoError(where + ": not a sam-embed sidecar (" + e.what() + ")");
  }
  if (root.kind != JsonValue::Kind::object) throw IoError(where + ": not a sam-embed sidecar (not a JSON object)");
  EmbeddingInfo info;
  info.original_height = integer_member(root, "original_height", where);
  info.original_width = integer_member(root, "original_width", where);
  info.input_size = integer_member(root, "input_size", where);
  // Written by every sam-embed, but only the sizes above are needed to use an embedding.
  for (const auto& [k, v] : root.members) {
    if (k == "model_type" && v.kind == JsonValue::Kind::string) info.model_type = v.string;
    if (k == "checkpoint" && v.kind == JsonValue::Kind::string) info.checkpoint = v.string;
    if (k == "image" && v.kind == JsonValue::Kind::string) info.image = v.string;
    if (k == "precision" && v.kind == JsonValue::Kind::string) info.precision = v.string;
    if (k == "resized_height" && v.kind == JsonValue::Kind::integer) info.resized_height = static_cast<int>(v.integer);
    if (k == "resized_width" && v.kind == JsonValue::Kind::integer) info.resized_width = static_cast<int>(v.integer);
    if (k == "shape" && v.kind == JsonValue::Kind::array)
      for (const auto& d : v.items) {
        if (d.kind != JsonValue::Kind::integer) throw IoError(where + ": not a sam-embed sidecar (bad \"shape\")");
        info.shape.push_back(d.integer);
      }
  }
  return info;
}

torch::Tensor read_embedding(const std::string& npy_path, EmbeddingInfo* info) {
  EmbeddingInfo side = read_embedding_info(npy_path);
  NpyArray a = read_npy(npy_path);
  if (a.kind != 'f' && a.kind != 'i' && a.kind != 'u')
    throw IoError(npy_path + ": expected a numeric array, found " + a.dtype());
  if (!side.shape.empty() && side.shape != a.shape)
    throw IoError(npy_path + ": array shape differs from the one in " + embedding_sidecar_path(npy_path));
  std::vector<float> v = a.to_vector<float>();
  torch::Tensor t = torch::from_blob(v.data(), a.shape, torch::kFloat).clone();
  if (info) *info = std::move(side);
  return t;
}

}  // namespace nucleisam::sam
