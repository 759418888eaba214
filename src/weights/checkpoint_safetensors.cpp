// .safetensors: 8-byte little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets} (plus an optional "__metadata__" string map), then the raw bytes.
#include <fstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "weights/checkpoint_formats.h"
#include "weights/header_json.h"

namespace nucleisam::weights {
namespace {

// The format's own limit: anything larger is not a header but garbage (or an attack).
constexpr uint64_t kMaxHeader = 100ull << 20;

struct SafeDtype {
  const char* name;
  torch::ScalarType dtype;
};
const SafeDtype kDtypes[] = {{"F64", torch::kDouble}, {"F32", torch::kFloat},  {"F16", torch::kHalf},
                             {"BF16", torch::kBFloat16}, {"I64", torch::kLong}, {"I32", torch::kInt},
                             {"I16", torch::kShort}, {"I8", torch::kChar},     {"U8", torch::kByte},
                             {"BOOL", torch::kBool}};

uint64_t header_length(const MappedFile& f) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f.data()[i];
  return n;
}

const JsonValue* member(const JsonValue& obj, const char* name) {
  for (const auto& [k, v] : obj.members)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace

bool looks_like_safetensors(const MappedFile& f) {
  if (f.size() < 10) return false;
  uint64_t n = header_length(f);
  return n >= 2 && n <= f.size() - 8 && f.data()[8] == '{';
}

StateDict read_safetensors(const std::shared_ptr<const MappedFile>& file,
                           std::map<std::string, std::string>* metadata) {
  const std::string& path = file->path();
  if (file->size() < 8) throw CheckpointError(path + ": too short for a safetensors file (truncated?)");
  uint64_t n = header_length(*file);
  if (n > kMaxHeader) throw CheckpointError(path + ": safetensors header length " + std::to_string(n) + " is not plausible (corrupt file)");
  if (n > file->size() - 8)
    throw CheckpointError(path + ": safetensors header of " + std::to_string(n) + " bytes runs past the end of the file (truncated)");
  std::string text(reinterpret_cast<const char*>(file->data() + 8), n);
  JsonValue header = parse_json(text, path);
  if (header.kind != JsonValue::Kind::object) throw CheckpointError(path + ": safetensors header is not a JSON object");
  uint64_t data_start = 8 + n;
  uint64_t data_size = file->size() - data_start;

  StateDict out;
  for (const auto& [key, info] : header.members) {
    if (key == "__metadata__") {
      if (info.kind != JsonValue::Kind::object) throw CheckpointError(path + ": __metadata__ is not an object");
      for (const auto& [mk, mv] : info.members) {
        if (mv.kind != JsonValue::Kind::string)
          throw CheckpointError(path + ": __metadata__ value of " + mk + " is not a string");
        if (metadata) (*metadata)[mk] = mv.string;
      }
      continue;
    }
    std::string where = path + ": tensor " + key;
    const JsonValue* dtype = info.kind == JsonValue::Kind::object ? member(info, "dtype") : nullptr;
    const JsonValue* shape = info.kind == JsonValue::Kind::object ? member(info, "shape") : nullptr;
    const JsonValue* offsets = info.kind == JsonValue::Kind::object ? member(info, "data_offsets") : nullptr;
    if (!dtype || dtype->kind != JsonValue::Kind::string || !shape || shape->kind != JsonValue::Kind::array ||
        !offsets || offsets->kind != JsonValue::Kind::array || offsets->items.size() != 2)
      throw CheckpointError(where + ": header entry lacks dtype, shape or data_offsets");
    const SafeDtype* type = nullptr;
    for (const auto& d : kDtypes)
      if (dtype->string == d.name) type = &d;
    if (!type) throw CheckpointError(where + ": unsupported dtype " + dtype->string);
    std::vector<int64_t> sizes;
    int64_t numel = 1;
    for (const JsonValue& d : shape->items) {
      if (d.kind != JsonValue::Kind::integer || d.integer < 0) throw CheckpointError(where + ": bad shape");
      if (__builtin_mul_overflow(numel, d.integer, &numel)) throw CheckpointError(where + ": shape overflows");
      sizes.push_back(d.integer);
    }
    const JsonValue& b = offsets->items[0];
    const JsonValue& e = offsets->items[1];
    if (b.kind != JsonValue::Kind::integer || e.kind != JsonValue::Kind::integer || b.integer < 0 || e.integer < b.integer)
      throw CheckpointError(where + ": bad data_offsets");
    uint64_t begin = static_cast<uint64_t>(b.integer), end = static_cast<uint64_t>(e.integer);
    if (end > data_size)
      throw CheckpointError(where + ": data ends at byte " + std::to_string(end) + " of a " + std::to_string(data_size) +
                            "-byte data section (truncated file)");
    uint64_t bytes = checked_bytes(numel, c10::elementSize(type->dtype), where);
    if (end - begin != bytes)
      throw CheckpointError(where + ": shape " + shape_string(sizes) + " of " + dtype->string + " needs " +
                            std::to_string(bytes) + " bytes, data_offsets give " + std::to_string(end - begin));
    out.entries.emplace_back(key, tensor_over_mapping(file, data_start + begin, numel, type->dtype).view(sizes));
  }
  return out;
}

void write_safetensors(const std::string& path, const StateDict& state,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> data;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json_quote(k) + ":" + json_quote(v);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& [key, tensor] : state.entries) {
    if (key == "__metadata__") throw CheckpointError(path + ": a tensor may not be named __metadata__");
    const char* name = nullptr;
    for (const auto& d : kDtypes)
      if (tensor.scalar_type() == d.dtype) name = d.name;
    if (!name)
      throw CheckpointError(path + ": cannot write tensor " + key + " of dtype " + std::string(c10::toString(tensor.scalar_type())));
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    std::string shape;
    for (int64_t s : t.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(s);
    uint64_t end = offset + t.nbytes();
    if (header.size() > 1) header += ",";
    header += json_quote(key) + ":{\"dtype\":\"" + name + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
    data.push_back(std::move(t));
  }
  header += "}";
  // Pad with spaces (valid JSON) so the data section starts 8-byte aligned, as the reference
  // writer does; readers can then map tensors in place.
  header.append((8 - header.size() % 8) % 8, ' ');

  AtomicFile out_file(path);
  {
    std::ofstream out(out_file.temp_path(), std::ios::binary);
    if (!out) throw IoError(path + ": cannot open for writing");
    uint64_t n = header.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    out.write(len, 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const torch::Tensor& t : data)
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    out.flush();
    if (!out) throw IoError(path + ": write failed (disk full?)");
  }
  out_file.commit();
}

}  // namespace nucleisam::weights
