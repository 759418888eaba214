// A pickle reader and writer for exactly what torch.save puts in data.pkl for a state dict, and
// nothing more. Safe by construction: the reader has no way to call Python code. It knows a fixed
// list of opcodes and an allow-list of globals (OrderedDict, the two torch tensor rebuild
// functions, the typed storage classes); anything else is refused with a CheckpointError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace nucleisam::weights {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

// A storage reference: the persistent id ('storage', torch.<Type>Storage, key, location, numel).
struct PickledStorage {
  std::string type;      // "Float", "Half", "Long", ... (the class name without "Storage")
  std::string key;       // the record name: <archive>/data/<key>
  std::string location;  // "cpu", "cuda:0", ... (informational: everything loads on the CPU)
  int64_t numel = 0;     // elements of `type`
};

// The arguments of torch._utils._rebuild_tensor_v2.
struct PickledTensor {
  std::shared_ptr<const PickledStorage> storage;
  int64_t offset = 0;  // in elements
  std::vector<int64_t> sizes, strides;
  bool requires_grad = false;
};

struct PickleValue {
  enum class Kind { none, boolean, integer, real, string, tuple, list, dict, global, storage, tensor };
  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string string;                                   // string; global: "module.name"
  std::vector<PickleRef> items;                         // tuple, list
  std::vector<std::pair<PickleRef, PickleRef>> entries; // dict, in insertion order
  std::unordered_map<std::string, size_t> entry_index;  // dict: key ("s" + str / "i" + int) -> entries slot
  std::shared_ptr<const PickledStorage> storage;        // storage
  std::shared_ptr<const PickledTensor> tensor;          // tensor
  int depth = 0;           // containers: 1 + the deepest element's depth (leaves and empty ones: 0)
  bool contained = false;  // an element of some container: complete, never changed again

  static const char* kind_name(Kind k);
};

// Runs the restricted unpickler over data[0, size). `where` prefixes every error message
// (e.g. "model.pth: data.pkl").
PickleRef read_state_pickle(const uint8_t* data, size_t size, const std::string& where);

// One entry of the OrderedDict that write_state_pickle emits. write_pth gives every tensor its
// own storage; tests point several records at one storage to build views by hand.
struct TensorRecord {
  std::string name;          // state dict key
  std::string storage_type;  // "Float", "Long", ...
  std::string storage_key;   // record name under <archive>/data/
  int64_t numel = 0;     // of the storage
  int64_t offset = 0;    // of the tensor in its storage, in elements
  std::vector<int64_t> sizes, strides;
};

// Pickle protocol 2 bytes of collections.OrderedDict([(name, _rebuild_tensor_v2(...)), ...]),
// the same opcode shapes torch.save writes, so torch.load and read_state_pickle both accept it.
std::string write_state_pickle(const std::vector<TensorRecord>& records);

}  // namespace nucleisam::weights
