// State dicts: format detection when reading, loading into / taking from modules.
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/log.h"
#include "weights/checkpoint_formats.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint tensors are mapped in place, which assumes a little-endian host"
#endif

namespace nucleisam::weights {

bool StateDict::contains(const std::string& key) const {
  for (const auto& e : entries)
    if (e.first == key) return true;
  return false;
}

const torch::Tensor& StateDict::at(const std::string& key) const {
  for (const auto& e : entries)
    if (e.first == key) return e.second;
  throw CheckpointError("state dict has no tensor " + key);
}

int64_t StateDict::numel() const {
  int64_t n = 0;
  for (const auto& e : entries) n += e.second.numel();
  return n;
}

bool has_prefix(const StateDict& state, const std::string& prefix) {
  for (const auto& e : state.entries)
    if (e.first.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

std::string shape_string(torch::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

uint64_t checked_bytes(int64_t elements, size_t element_size, const std::string& where) {
  uint64_t bytes;
  if (elements < 0 || __builtin_mul_overflow(static_cast<uint64_t>(elements), element_size, &bytes))
    throw CheckpointError(where + ": tensor size overflows");
  if (bytes > static_cast<uint64_t>(limits::kMaxTensorBytes))
    throw CheckpointError(where + ": tensor declares " + std::to_string(bytes) + " bytes, over the limit of " +
                          std::to_string(limits::kMaxTensorBytes) + " (kMaxTensorBytes)");
  return bytes;
}

torch::Tensor tensor_over_mapping(const std::shared_ptr<const MappedFile>& file, uint64_t offset,
                                  int64_t numel, torch::ScalarType dtype) {
  auto options = torch::TensorOptions().dtype(dtype);
  if (numel == 0) return torch::empty({0}, options);
  uint8_t* p = file->data() + offset;
  size_t element = c10::elementSize(dtype);
  if (reinterpret_cast<uintptr_t>(p) % element != 0) {
    // Misaligned data (a hand-made zip or safetensors file): copy rather than hand kernels an
    // address they may not support.
    torch::Tensor t = torch::empty({numel}, options);
    std::memcpy(t.data_ptr(), p, static_cast<size_t>(numel) * element);
    return t;
  }
  std::shared_ptr<const MappedFile> keep = file;
  return torch::from_blob(p, {numel}, [keep](void*) {}, options);
}

namespace {
std::shared_ptr<const MappedFile> open_checkpoint(const std::string& path) { return MappedFile::open(path); }

bool starts_with(const MappedFile& f, const char* magic, size_t n) {
  return f.size() >= n && std::memcmp(f.data(), magic, n) == 0;
}

// The readers validate everything they pass to LibTorch; should a check still miss a case,
// LibTorch's own error becomes a CheckpointError naming the file rather than escaping as c10::Error.
template <typename Read>
StateDict read_with_torch_errors_named(const std::string& path, Read read) {
  try {
    return read();
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": inconsistent tensor data (" + e.what_without_backtrace() + ")");
  }
}
}  // namespace

StateDict read_checkpoint(const std::string& path) {
  auto start = std::chrono::steady_clock::now();
  auto file = open_checkpoint(path);
  StateDict state;
  if (starts_with(*file, "PK\x03\x04", 4) || starts_with(*file, "PK\x05\x06", 4)) {
    state = read_with_torch_errors_named(path, [&] { return read_pth(file); });
  } else if (looks_like_safetensors(*file)) {
    state = read_with_torch_errors_named(path, [&] { return read_safetensors(file, nullptr); });
  } else if (starts_with(*file, "\x80\x02\x8a\x0a", 4)) {
    // The pickled magic number that opens the pre-1.6 (non-zip) torch.save format.
    throw CheckpointError(path + ": legacy (PyTorch < 1.6) torch.save format, not supported: re-save it "
                                 "with a current PyTorch (torch.save(torch.load(f), f2))");
  } else {
    throw CheckpointError(path + ": not a checkpoint: neither a .pth zip archive nor a safetensors file");
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  log::debug("read ", path, ": ", state.size(), " tensors, ", state.numel(), " elements in ", ms, " ms");
  return state;
}

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  auto file = open_checkpoint(path);
  if (!looks_like_safetensors(*file)) throw CheckpointError(path + ": not a safetensors file");
  std::map<std::string, std::string> metadata;
  read_safetensors(file, &metadata);
  return metadata;
}

namespace {

bool dtypes_compatible(torch::ScalarType want, torch::ScalarType have) {
  if (want == have) return true;
  if (c10::isFloatingType(want) && c10::isFloatingType(have)) return true;
  bool want_int = c10::isIntegralType(want, false), have_int = c10::isIntegralType(have, false);
  return want_int && have_int;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

// PyTorch's state_dict order: a module's own parameters, its own buffers, then each child.
void collect(const torch::nn::Module& module, const std::string& prefix, const std::set<std::string>& skip,
             const std::string& relative, std::vector<std::pair<std::string, torch::Tensor>>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    if (!skip.count(relative + b.key())) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& c : module.named_children())
    collect(*c.value(), prefix + c.key() + ".", skip, relative + c.key() + ".", out);
}

}  // namespace

void load_into(torch::nn::Module& module, const StateDict& state, const std::string& source_name,
               const std::string& prefix, bool strict, const std::set<std::string>& non_persistent) {
  std::unordered_map<std::string, const torch::Tensor*> file;
  for (const auto& [k, t] : state.entries) file.emplace(k, &t);

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  collect(module, prefix, non_persistent, "", targets);
  for (const std::string& name : non_persistent)
    if (!module.named_buffers(true).contains(name))
      throw CheckpointError(source_name + ": non_persistent names " + name + ", which is not a buffer of the module");

  std::vector<std::string> missing, unexpected, wrong_shape, wrong_dtype;
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  std::unordered_map<std::string, bool> used;
  for (const auto& [key, target] : targets) {
    auto it = file.find(key);
    if (it == file.end()) {
      missing.push_back(key);
      continue;
    }
    used[key] = true;
    const torch::Tensor& source = *it->second;
    if (source.sizes() != target.sizes()) {
      wrong_shape.push_back(key + " expected " + shape_string(target.sizes()) + " found " + shape_string(source.sizes()));
    } else if (!dtypes_compatible(target.scalar_type(), source.scalar_type())) {
      wrong_dtype.push_back(key + " expected " + std::string(c10::toString(target.scalar_type())) + " found " +
                            std::string(c10::toString(source.scalar_type())));
    } else {
      copies.emplace_back(target, &source);
    }
  }
  if (strict)
    for (const auto& [k, t] : state.entries)
      if (k.compare(0, prefix.size(), prefix) == 0 && !used.count(k)) unexpected.push_back(k);

  std::vector<std::string> parts;
  auto report = [&parts](const std::vector<std::string>& v, const char* what) {
    if (!v.empty()) parts.push_back(std::to_string(v.size()) + " " + what + " (" + join_list(v) + ")");
  };
  report(missing, "missing");
  report(unexpected, "unexpected");
  report(wrong_shape, "wrong shape");
  report(wrong_dtype, "wrong dtype");
  if (!parts.empty()) {
    std::string msg = source_name + ": does not match the model";
    if (!prefix.empty()) msg += " (keys under " + prefix + ")";
    msg += ": ";
    for (size_t i = 0; i < parts.size(); ++i) msg += (i ? "; " : "") + parts[i];
    throw CheckpointError(msg);
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(*source);
}

StateDict state_of(const torch::nn::Module& module, const std::string& prefix,
                   const std::set<std::string>& non_persistent) {
  StateDict out;
  collect(module, prefix, non_persistent, "", out.entries);
  for (auto& e : out.entries) e.second = e.second.detach();
  return out;
}

}  // namespace nucleisam::weights
