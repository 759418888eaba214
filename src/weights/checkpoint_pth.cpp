// .pth checkpoints: a torch.save zip archive whose data.pkl pickles a dict of tensors and whose
// data/<key> records hold the raw little-endian storage bytes.
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/log.h"
#include "weights/checkpoint_formats.h"
#include "weights/state_pickle.h"
#include "weights/zip_archive.h"

namespace nucleisam::weights {
namespace {

struct StorageType {
  const char* name;  // as in torch.<name>Storage
  torch::ScalarType dtype;
};
const StorageType kStorageTypes[] = {
    {"Float", torch::kFloat},  {"Double", torch::kDouble}, {"Half", torch::kHalf},
    {"BFloat16", torch::kBFloat16}, {"Long", torch::kLong}, {"Int", torch::kInt},
    {"Short", torch::kShort},  {"Char", torch::kChar},     {"Byte", torch::kByte},
    {"Bool", torch::kBool}};

torch::ScalarType dtype_of_storage(const std::string& name, const std::string& path) {
  for (const auto& t : kStorageTypes)
    if (name == t.name) return t.dtype;
  throw CheckpointError(path + ": unsupported storage type torch." + name + "Storage");
}

const char* storage_of_dtype(torch::ScalarType dtype) {
  for (const auto& t : kStorageTypes)
    if (dtype == t.dtype) return t.name;
  return nullptr;
}

// The highest element index a (offset, sizes, strides) view touches, plus one; 0 when empty.
uint64_t elements_needed(const PickledTensor& t, const std::string& where) {
  int64_t numel = 1;  // the view's own element count must be representable too
  for (int64_t s : t.sizes)
    if (__builtin_mul_overflow(numel, s, &numel)) throw CheckpointError(where + ": tensor shape overflows");
  for (int64_t s : t.sizes)
    if (s == 0) return 0;
  uint64_t last = static_cast<uint64_t>(t.offset);
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    uint64_t step;
    if (__builtin_mul_overflow(static_cast<uint64_t>(t.sizes[d] - 1), static_cast<uint64_t>(t.strides[d]), &step) ||
        __builtin_add_overflow(last, step, &last))
      throw CheckpointError(where + ": tensor size/stride overflow");
  }
  return last + 1;
}

struct Flattener {
  const std::string& path;
  std::vector<std::pair<std::string, std::shared_ptr<const PickledTensor>>> tensors;
  size_t skipped = 0;

  void walk(const PickleValue& dict, const std::string& prefix, int depth) {
    if (depth > 16) throw CheckpointError(path + ": data.pkl nests dicts too deeply (or in a cycle)");
    for (const auto& [k, v] : dict.entries) {
      std::string key = prefix + (k->kind == PickleValue::Kind::string ? k->string : std::to_string(k->integer));
      if (v->kind == PickleValue::Kind::tensor)
        tensors.emplace_back(key, v->tensor);
      else if (v->kind == PickleValue::Kind::dict)
        walk(*v, key + ".", depth + 1);
      else
        ++skipped;  // an epoch counter, a config string, ...: not model state
    }
  }
};

}  // namespace

StateDict read_pth(const std::shared_ptr<const MappedFile>& file) {
  const std::string& path = file->path();
  const uint8_t* base = file->data();
  std::vector<ZipEntry> entries = read_zip_directory(base, file->size(), path);
  std::unordered_map<std::string, const ZipEntry*> by_name;
  for (const ZipEntry& e : entries) by_name.emplace(e.name, &e);

  // The archive folder is named after the file torch.save wrote ("archive/", "sam_vit_tiny/"),
  // so find it from data.pkl rather than assuming it.
  const ZipEntry* pkl = nullptr;
  bool torchscript = false;
  for (const ZipEntry& e : entries) {
    size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pkl) throw CheckpointError(path + ": zip archive holds two data.pkl records (" + pkl->name + ", " + e.name + ")");
      pkl = &e;
    }
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/constants.pkl") == 0) torchscript = true;
  }
  if (!pkl) {
    if (torchscript)
      throw CheckpointError(path + ": a TorchScript archive (torch.jit.save), not a state dict: save "
                                   "model.state_dict() with torch.save instead");
    throw CheckpointError(path + ": zip archive without <archive>/data.pkl: not a torch.save checkpoint");
  }
  std::string archive = pkl->name.substr(0, pkl->name.size() - std::string("data.pkl").size());

  auto byteorder = by_name.find(archive + "byteorder");
  if (byteorder != by_name.end()) {
    const ZipEntry& e = *byteorder->second;
    std::string order(reinterpret_cast<const char*>(stored_entry_data(base, e, path)), e.size);
    if (order != "little") throw CheckpointError(path + ": tensors stored with byte order '" + order + "'; only little-endian is supported");
  }

  const uint8_t* pkl_bytes = stored_entry_data(base, *pkl, path);
  // data.pkl is small and holds every offset, shape and key, so it is worth a CRC check; the
  // tensor bytes are not checked (that would read the whole file, several seconds for ViT-H).
  if (crc32(pkl_bytes, pkl->size) != pkl->crc32)
    throw CheckpointError(path + ": " + pkl->name + " fails its CRC check: the file is corrupt");
  PickleRef root = read_state_pickle(pkl_bytes, pkl->size, path);
  if (root->kind != PickleValue::Kind::dict)
    throw CheckpointError(path + ": data.pkl holds a " + std::string(PickleValue::kind_name(root->kind)) +
                          ", expected a dict of tensors (a state dict)");
  Flattener flat{path, {}, 0};
  flat.walk(*root, "", 0);
  if (flat.skipped) log::debug(path, ": skipped ", flat.skipped, " non-tensor values");

  struct Storage {
    std::shared_ptr<const PickledStorage> pickled;
    torch::Tensor tensor;
  };
  std::unordered_map<std::string, Storage> storages;
  StateDict out;
  out.entries.reserve(flat.tensors.size());
  for (const auto& [key, t] : flat.tensors) {
    std::string where = path + ": tensor " + key;
    const PickledStorage& ps = *t->storage;
    torch::ScalarType dtype = dtype_of_storage(ps.type, where);
    auto it = storages.find(ps.key);
    if (it == storages.end()) {
      auto rec = by_name.find(archive + "data/" + ps.key);
      if (rec == by_name.end())
        throw CheckpointError(where + ": storage record " + archive + "data/" + ps.key + " is missing from the archive");
      const ZipEntry& e = *rec->second;
      stored_entry_data(base, e, path);  // refuses compressed records
      uint64_t bytes = checked_bytes(ps.numel, c10::elementSize(dtype), where);
      if (bytes > e.size)
        throw CheckpointError(where + ": storage record " + e.name + " has " + std::to_string(e.size) +
                              " bytes, the pickle declares " + std::to_string(bytes));
      Storage s{t->storage, tensor_over_mapping(file, e.data_offset, ps.numel, dtype)};
      it = storages.emplace(ps.key, std::move(s)).first;
    } else if (it->second.pickled->type != ps.type || it->second.pickled->numel != ps.numel) {
      throw CheckpointError(where + ": storage " + ps.key + " is declared twice with different types or sizes");
    }
    uint64_t needed = elements_needed(*t, where);
    if (needed > static_cast<uint64_t>(ps.numel))
      throw CheckpointError(where + ": shape " + shape_string(t->sizes) + " at offset " + std::to_string(t->offset) +
                            " needs " + std::to_string(needed) + " elements, its storage has " + std::to_string(ps.numel));
    out.entries.emplace_back(key, it->second.tensor.as_strided(t->sizes, t->strides, t->offset));
  }
  return out;
}

void write_pth_archive(const std::string& path, const StateDict& state, bool force_zip64) {
  std::string archive = std::filesystem::path(path).stem().string();
  if (archive.empty()) archive = "archive";

  std::vector<TensorRecord> records;
  std::vector<torch::Tensor> data;
  records.reserve(state.size());
  data.reserve(state.size());
  for (size_t i = 0; i < state.size(); ++i) {
    const auto& [key, tensor] = state.entries[i];
    const char* storage = storage_of_dtype(tensor.scalar_type());
    if (!storage)
      throw CheckpointError(path + ": cannot write tensor " + key + " of dtype " +
                            std::string(c10::toString(tensor.scalar_type())));
    // Each tensor gets its own compact storage, as torch.save does for a freshly cloned dict.
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    TensorRecord r;
    r.name = key;
    r.storage_type = storage;
    r.storage_key = std::to_string(i);
    r.numel = t.numel();
    r.sizes = t.sizes().vec();
    r.strides = t.strides().vec();
    records.push_back(std::move(r));
    data.push_back(std::move(t));
  }
  std::string pickle = write_state_pickle(records);

  AtomicFile out_file(path);
  {
    std::ofstream out(out_file.temp_path(), std::ios::binary);
    if (!out) throw IoError(path + ": cannot open for writing");
    ZipWriter zip(out, force_zip64);
    zip.add(archive + "/data.pkl", pickle.data(), pickle.size());
    for (size_t i = 0; i < records.size(); ++i)
      zip.add(archive + "/data/" + records[i].storage_key, data[i].data_ptr(), data[i].nbytes());
    zip.add(archive + "/version", "3\n", 2);
    zip.finish();
    out.flush();
    if (!out) throw IoError(path + ": write failed (disk full?)");
  }
  out_file.commit();
}

void write_pth(const std::string& path, const StateDict& state) { write_pth_archive(path, state, false); }

}  // namespace nucleisam::weights
