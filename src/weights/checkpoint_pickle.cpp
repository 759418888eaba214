// The restricted unpickler and the state-dict pickler (see state_pickle.h).
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "nucleisam/errors.h"
#include "weights/state_pickle.h"

namespace nucleisam::weights {

const char* PickleValue::kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::real: return "float";
    case Kind::string: return "str";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

namespace {

using Kind = PickleValue::Kind;

const char* const kStorageTypes[] = {"Float", "Double", "Half", "BFloat16", "Long",
                                     "Int",   "Short",  "Char", "Byte",     "Bool"};

bool is_allowed_global(const std::string& qualified) {
  if (qualified == "collections.OrderedDict" || qualified == "torch._utils._rebuild_tensor_v2" ||
      qualified == "torch._utils._rebuild_parameter")
    return true;
  for (const char* t : kStorageTypes)
    if (qualified == std::string("torch.") + t + "Storage") return true;
  return false;
}

PickleRef make(Kind k) {
  auto v = std::make_shared<PickleValue>();
  v->kind = k;
  return v;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, std::string where)
      : p_(data), n_(size), where_(std::move(where)) {}

  PickleRef run() {
    while (true) {
      op_pos_ = pos_;
      uint8_t op = byte();
      switch (op) {
        case 0x80: {  // PROTO
          uint8_t proto = byte();
          if (proto < 2 || proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
          break;
        }
        case 0x95: take(8); break;  // FRAME: a length hint only
        case '.': {                  // STOP
          if (stack_.empty()) fail("STOP with an empty stack");
          return stack_.back();
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '}': push(make(Kind::dict)); break;
        case ')': push(make(Kind::tuple)); break;
        case ']': push(make(Kind::list)); break;
        case 'X': push_string(u32()); break;
        case 0x8c: push_string(byte()); break;
        case 'J': {
          uint32_t u = u32();
          int32_t s;
          std::memcpy(&s, &u, 4);
          push_int(s);
          break;
        }
        case 'K': push_int(byte()); break;
        case 'M': {
          uint32_t lo = byte();
          push_int(lo | (static_cast<uint32_t>(byte()) << 8));
          break;
        }
        case 0x8a: push_int(long1()); break;
        case 'G': {  // BINFLOAT, big-endian
          const uint8_t* b = take(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
          auto v = make(Kind::real);
          std::memcpy(&v->real, &bits, 8);
          push(v);
          break;
        }
        case 'N': push(make(Kind::none)); break;
        case 0x88:
        case 0x89: {
          auto v = make(Kind::boolean);
          v->boolean = op == 0x88;
          push(v);
          break;
        }
        case 't': {
          auto v = make(Kind::tuple);
          v->items = pop_to_mark();
          adopt_items(*v);
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          size_t k = static_cast<size_t>(op - 0x84);
          if (stack_.size() < k || (!marks_.empty() && stack_.size() - k < marks_.back()))
            fail("stack underflow");
          auto v = make(Kind::tuple);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(k), stack_.end());
          stack_.resize(stack_.size() - k);
          adopt_items(*v);
          push(v);
          break;
        }
        case 'l': {
          auto v = make(Kind::list);
          v->items = pop_to_mark();
          adopt_items(*v);
          push(v);
          break;
        }
        case 'd': {
          auto v = make(Kind::dict);
          set_items(*v, pop_to_mark());
          push(v);
          break;
        }
        case 'a': {
          PickleRef value = pop();
          PickleValue& list = top_of(Kind::list, "APPEND");
          adopt(list, value);
          list.items.push_back(value);
          break;
        }
        case 'e': {
          auto values = pop_to_mark();
          PickleValue& list = top_of(Kind::list, "APPENDS");
          for (const PickleRef& value : values) adopt(list, value);
          list.items.insert(list.items.end(), values.begin(), values.end());
          break;
        }
        case 's': {
          PickleRef value = pop();
          PickleRef key = pop();
          set_items(top_of(Kind::dict, "SETITEM"), {key, value});
          break;
        }
        case 'u': {
          auto kv = pop_to_mark();
          set_items(top_of(Kind::dict, "SETITEMS"), kv);
          break;
        }
        case 'c': {
          std::string module = line();
          std::string name = line();
          push_global(module, name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          PickleRef name = pop(), module = pop();
          if (module->kind != Kind::string || name->kind != Kind::string)
            fail("STACK_GLOBAL needs two strings");
          push_global(module->string, name->string);
          break;
        }
        case 'Q': push(persistent_load(pop())); break;
        case 'R': {
          PickleRef args = pop();
          PickleRef callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case 'b': {
          PickleRef state = pop();
          if (stack_.empty()) fail("BUILD with an empty stack");
          // The only object torch.save BUILDs is the state dict itself, with its `_metadata`
          // (module versions) as state; that metadata is not needed to load tensors.
          if (stack_.back()->kind != Kind::dict || (state->kind != Kind::dict && state->kind != Kind::none))
            fail(std::string("BUILD of a ") + PickleValue::kind_name(stack_.back()->kind) +
                 " is not something a state dict contains");
          break;
        }
        case 'q': memo_put(byte()); break;
        case 'r': memo_put(u32()); break;
        case 0x94: memo_put(static_cast<uint32_t>(memo_.size())); break;
        case 'h': push(memo_get(byte())); break;
        case 'j': push(memo_get(u32())); break;
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("pickle opcode ") + hex +
               " is not allowed (a checkpoint may only contain tensors), or the file is corrupt");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& cause) const {
    throw CheckpointError(where_ + ": corrupt or unsupported data.pkl at byte " + std::to_string(op_pos_) +
                          ": " + cause);
  }
  const uint8_t* take(size_t k) {
    if (k > n_ - pos_) fail("ends in the middle of an opcode (truncated)");
    const uint8_t* q = p_ + pos_;
    pos_ += k;
    return q;
  }
  uint8_t byte() { return *take(1); }
  uint32_t u32() {
    const uint8_t* b = take(4);
    return static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
           (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  int64_t long1() {
    size_t k = byte();
    if (k > 8) fail("integer of " + std::to_string(k) + " bytes is too large");
    const uint8_t* b = take(k);
    uint64_t u = 0;
    for (size_t i = 0; i < k; ++i) u |= static_cast<uint64_t>(b[i]) << (8 * i);
    if (k > 0 && k < 8 && (b[k - 1] & 0x80)) u |= ~uint64_t{0} << (8 * k);  // sign-extend
    int64_t s;
    std::memcpy(&s, &u, 8);
    return s;
  }
  std::string line() {
    // GLOBAL names are short; bound the scan so garbage cannot make it quadratic.
    size_t start = pos_;
    while (pos_ < n_ && pos_ - start < 256 && p_[pos_] != '\n') ++pos_;
    if (pos_ >= n_ || p_[pos_] != '\n') fail("unterminated GLOBAL name");
    std::string s(reinterpret_cast<const char*>(p_ + start), pos_ - start);
    ++pos_;
    return s;
  }
  void push(PickleRef v) { stack_.push_back(std::move(v)); }
  void push_string(size_t len) {
    const uint8_t* b = take(len);
    auto v = make(Kind::string);
    v->string.assign(reinterpret_cast<const char*>(b), len);
    push(v);
  }
  void push_int(int64_t i) {
    auto v = make(Kind::integer);
    v->integer = i;
    push(v);
  }
  PickleRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) fail("stack underflow");
    PickleRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  std::vector<PickleRef> pop_to_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  PickleValue& top_of(Kind kind, const char* opcode) {
    if (stack_.empty() || stack_.back()->kind != kind)
      fail(std::string(opcode) + " needs a " + PickleValue::kind_name(kind) + " below it");
    if (stack_.back()->contained)
      fail(std::string(opcode) + " changes a " + PickleValue::kind_name(kind) + " that is already inside another");
    return *stack_.back();
  }
  // Makes `child` an element of `parent`. A container that is inside another is complete and never
  // changes again (top_of), and nothing contains itself, so the values form an acyclic graph whose
  // depth is known at every step: a pickle cannot build a cycle or nesting deep enough to overflow
  // the stack of whatever walks or frees the values (a fuzzing finding: 50,000 nested lists built
  // with APPEND overflowed the stack when freed). torch.save's pickles nest 4 or 5 levels.
  void adopt(PickleValue& parent, const PickleRef& child) {
    if (child.get() == &parent) fail("a container that contains itself");
    child->contained = true;
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxDepth) fail("values nest deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  void adopt_items(PickleValue& parent) {
    for (const PickleRef& item : parent.items) adopt(parent, item);
  }
  static constexpr int kMaxDepth = 64;
  // Python dict semantics: a repeated key replaces the value but keeps its first position.
  void set_items(PickleValue& dict, const std::vector<PickleRef>& kv) {
    if (kv.size() % 2) fail("odd number of items for a dict");
    for (size_t i = 0; i < kv.size(); i += 2) {
      const PickleRef& key = kv[i];
      adopt(dict, key);
      adopt(dict, kv[i + 1]);
      if (key->kind != Kind::string && key->kind != Kind::integer)
        fail(std::string("dict key of type ") + PickleValue::kind_name(key->kind));
      // Hashed so that a hostile pickle with millions of keys cannot make this quadratic.
      std::string id = key->kind == Kind::string ? "s" + key->string : "i" + std::to_string(key->integer);
      auto [it, inserted] = dict.entry_index.emplace(std::move(id), dict.entries.size());
      if (inserted)
        dict.entries.emplace_back(key, kv[i + 1]);
      else
        dict.entries[it->second].second = kv[i + 1];
    }
  }
  void push_global(const std::string& module, const std::string& name) {
    std::string q = module + "." + name;
    const std::string storage = "Storage";
    if (!is_allowed_global(q) && module == "torch" && name.size() > storage.size() &&
        name.compare(name.size() - storage.size(), storage.size(), storage) == 0)
      throw CheckpointError(where_ + ": unsupported storage type " + q +
                            " (supported: Float, Double, Half, BFloat16, Long, Int, Short, Char, Byte, Bool)");
    if (!is_allowed_global(q))
      throw CheckpointError(where_ + ": refuses pickle global " + q +
                            " (a checkpoint may only contain tensors)");
    auto v = make(Kind::global);
    v->string = q;
    push(v);
  }
  void memo_put(uint32_t index) {
    if (stack_.empty()) fail("PUT with an empty stack");
    memo_[index] = stack_.back();
  }
  PickleRef memo_get(uint32_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("GET of memo entry " + std::to_string(index) + " that was never PUT");
    return it->second;
  }

  PickleRef persistent_load(const PickleRef& pid) {
    const auto& t = pid->items;
    if (pid->kind != Kind::tuple || t.size() != 5 || t[0]->kind != Kind::string || t[0]->string != "storage" ||
        t[1]->kind != Kind::global || t[2]->kind != Kind::string || t[3]->kind != Kind::string ||
        t[4]->kind != Kind::integer)
      fail("persistent id is not ('storage', type, key, location, numel)");
    const std::string& cls = t[1]->string;  // "torch.FloatStorage", already allow-listed
    const std::string suffix = "Storage";
    if (cls.size() < 6 + suffix.size() || cls.compare(0, 6, "torch.") != 0 ||
        cls.compare(cls.size() - suffix.size(), suffix.size(), suffix) != 0)
      fail("persistent id names " + cls + ", not a storage type");
    if (t[4]->integer < 0) fail("negative storage size");
    auto s = std::make_shared<PickledStorage>();
    s->type = cls.substr(6, cls.size() - 6 - suffix.size());
    s->key = t[2]->string;
    s->location = t[3]->string;
    s->numel = t[4]->integer;
    auto v = make(Kind::storage);
    v->storage = s;
    return v;
  }

  std::vector<int64_t> int_tuple(const PickleRef& v, const char* what) {
    if (v->kind != Kind::tuple) fail(std::string("tensor ") + what + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& i : v->items) {
      if (i->kind != Kind::integer || i->integer < 0)
        fail(std::string("tensor ") + what + " holds something other than a non-negative int");
      out.push_back(i->integer);
    }
    return out;
  }

  PickleRef reduce(const PickleValue& callable, const PickleValue& args) {
    if (callable.kind != Kind::global) fail("REDUCE of a non-callable");
    if (args.kind != Kind::tuple) fail("REDUCE arguments are not a tuple");
    const auto& a = args.items;
    const std::string& f = callable.string;
    if (f == "collections.OrderedDict") {
      if (!a.empty()) fail("OrderedDict called with arguments");
      return make(Kind::dict);
    }
    if (f == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 takes 6 or 7 arguments");
      if (a[0]->kind != Kind::storage) fail("_rebuild_tensor_v2 without a storage");
      if (a[1]->kind != Kind::integer || a[1]->integer < 0) fail("bad tensor storage offset");
      if (a[4]->kind != Kind::boolean) fail("requires_grad is not a bool");
      if (a[5]->kind != Kind::dict || !a[5]->entries.empty())
        fail("tensor has backward hooks, which a checkpoint cannot carry");
      auto t = std::make_shared<PickledTensor>();
      t->storage = a[0]->storage;
      t->offset = a[1]->integer;
      t->sizes = int_tuple(a[2], "size");
      t->strides = int_tuple(a[3], "stride");
      if (t->sizes.size() != t->strides.size()) fail("tensor size and stride have different lengths");
      t->requires_grad = a[4]->boolean;
      auto v = make(Kind::tensor);
      v->tensor = t;
      return v;
    }
    if (f == "torch._utils._rebuild_parameter") {
      // (data, requires_grad, backward_hooks): an nn.Parameter saved as a whole.
      if (a.size() != 3 || a[0]->kind != Kind::tensor || a[1]->kind != Kind::boolean)
        fail("_rebuild_parameter arguments are not (tensor, bool, hooks)");
      if (a[2]->kind != Kind::dict || !a[2]->entries.empty())
        fail("parameter has backward hooks, which a checkpoint cannot carry");
      auto t = std::make_shared<PickledTensor>(*a[0]->tensor);
      t->requires_grad = a[1]->boolean;
      auto v = make(Kind::tensor);
      v->tensor = t;
      return v;
    }
    fail(f + " may only appear inside a storage reference, not be called");
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  std::string where_;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PickleRef> memo_;
};

// --- writer ---------------------------------------------------------------------------------

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_string(std::string& s, const std::string& v) {
  s.push_back('X');
  put_u32(s, static_cast<uint32_t>(v.size()));
  s += v;
}

void put_int(std::string& s, int64_t v) {
  if (v >= 0 && v < 256) {
    s.push_back('K');
    s.push_back(static_cast<char>(v));
  } else if (v >= 0 && v < 65536) {
    s.push_back('M');
    s.push_back(static_cast<char>(v & 0xFF));
    s.push_back(static_cast<char>(v >> 8));
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    s.push_back('J');
    put_u32(s, static_cast<uint32_t>(static_cast<int32_t>(v)));
  } else {
    // LONG1: shortest little-endian two's complement that keeps the sign.
    uint64_t u;
    std::memcpy(&u, &v, 8);
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
    while (bytes.size() > 1) {
      uint8_t last = static_cast<uint8_t>(bytes.back());
      uint8_t prev = static_cast<uint8_t>(bytes[bytes.size() - 2]);
      if ((last == 0x00 && !(prev & 0x80)) || (last == 0xFF && (prev & 0x80)))
        bytes.pop_back();
      else
        break;
    }
    s.push_back(static_cast<char>(0x8a));
    s.push_back(static_cast<char>(bytes.size()));
    s += bytes;
  }
}

void put_int_tuple(std::string& s, const std::vector<int64_t>& v) {
  if (v.empty()) {
    s.push_back(')');
    return;
  }
  if (v.size() > 3) s.push_back('(');
  for (int64_t i : v) put_int(s, i);
  s.push_back(v.size() > 3 ? 't' : static_cast<char>(0x84 + v.size()));
}

}  // namespace

PickleRef read_state_pickle(const uint8_t* data, size_t size, const std::string& where) {
  return Unpickler(data, size, where).run();
}

std::string write_state_pickle(const std::vector<TensorRecord>& records) {
  // Memo slots: 0 = collections.OrderedDict, 1 = _rebuild_tensor_v2.
  std::string s;
  s += "\x80\x02";
  s += std::string("ccollections\nOrderedDict\nq\x00", 27);
  s += ")R(";  // OrderedDict() then MARK for the first SETITEMS batch
  bool rebuild_memoized = false;
  size_t in_batch = 0;
  for (const TensorRecord& r : records) {
    if (in_batch == 1000) {  // Python's pickler batches SETITEMS by 1000; keep the same shape
      s += "u(";
      in_batch = 0;
    }
    put_string(s, r.name);
    if (rebuild_memoized) {
      s += std::string("h\x01", 2);
    } else {
      s += "ctorch._utils\n_rebuild_tensor_v2\nq\x01";
      rebuild_memoized = true;
    }
    s += "((";  // args tuple, then the persistent id tuple
    put_string(s, "storage");
    s += "ctorch\n" + r.storage_type + "Storage\n";
    put_string(s, r.storage_key);
    put_string(s, "cpu");
    put_int(s, r.numel);
    s += "tQ";
    put_int(s, r.offset);
    put_int_tuple(s, r.sizes);
    put_int_tuple(s, r.strides);
    s += "\x89";                          // requires_grad = False
    s += std::string("h\x00)R", 4);        // backward_hooks = OrderedDict()
    s += "tR";
    ++in_batch;
  }
  s += "u.";
  return s;
}

}  // namespace nucleisam::weights
