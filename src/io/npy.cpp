// .npy reader and writer (see include/nucleisam/npy.h).
#include "nucleisam/npy.h"

#include <cstring>
#include <regex>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/utf8.h"

namespace nucleisam {
namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename Out>
Out element(const NpyArray& a, int64_t i) {
  const uint8_t* p = a.bytes.data() + i * a.itemsize;
  switch (a.kind) {
    case 'f':
      if (a.itemsize == 4) return static_cast<Out>(load<float>(p));
      if (a.itemsize == 8) return static_cast<Out>(load<double>(p));
      break;
    case 'i':
      switch (a.itemsize) {
        case 1: return static_cast<Out>(load<int8_t>(p));
        case 2: return static_cast<Out>(load<int16_t>(p));
        case 4: return static_cast<Out>(load<int32_t>(p));
        case 8: return static_cast<Out>(load<int64_t>(p));
      }
      break;
    case 'u':
      switch (a.itemsize) {
        case 1: return static_cast<Out>(load<uint8_t>(p));
        case 2: return static_cast<Out>(load<uint16_t>(p));
        case 4: return static_cast<Out>(load<uint32_t>(p));
        case 8: return static_cast<Out>(load<uint64_t>(p));
      }
      break;
    case 'b': return static_cast<Out>(p[0] != 0);
  }
  throw IoError("npy: unsupported dtype " + a.dtype());
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string NpyArray::dtype() const {
  switch (kind) {
    case 'f': return "float" + std::to_string(itemsize * 8);
    case 'i': return "int" + std::to_string(itemsize * 8);
    case 'u': return "uint" + std::to_string(itemsize * 8);
    case 'b': return "bool";
    case 'U':
      return "str" + std::to_string(itemsize / 4);
  }
  return std::string("?") + kind;
}

template <typename T>
std::vector<T> NpyArray::to_vector() const {
  int64_t n = numel();
  std::vector<T> out(static_cast<size_t>(n));
  if (kind == NpyType<T>::kind && itemsize == NpyType<T>::size) {
    // An empty array's vectors have no storage: memcpy from / to a null pointer is undefined.
    if (n > 0) std::memcpy(out.data(), bytes.data(), static_cast<size_t>(n) * sizeof(T));
    return out;
  }
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = element<T>(*this, i);
  return out;
}

#define NUCLEISAM_NPY_INSTANTIATE(T) template std::vector<T> NpyArray::to_vector<T>() const;
NUCLEISAM_NPY_INSTANTIATE(float)
NUCLEISAM_NPY_INSTANTIATE(double)
NUCLEISAM_NPY_INSTANTIATE(int8_t)
NUCLEISAM_NPY_INSTANTIATE(int16_t)
NUCLEISAM_NPY_INSTANTIATE(int32_t)
NUCLEISAM_NPY_INSTANTIATE(int64_t)
NUCLEISAM_NPY_INSTANTIATE(uint8_t)
NUCLEISAM_NPY_INSTANTIATE(uint16_t)
NUCLEISAM_NPY_INSTANTIATE(uint32_t)

std::vector<std::string> NpyArray::to_strings() const {
  if (kind != 'U') throw IoError("npy: expected a string array, found " + dtype());
  std::vector<std::string> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    std::string& text = out[i];
    for (int c = 0; c < itemsize / 4; ++c) {
      const uint32_t cp = load<uint32_t>(bytes.data() + i * itemsize + 4 * static_cast<size_t>(c));
      if (cp == 0) break;  // numpy pads shorter strings with NULs
      if (cp >= 0x110000)
        throw IoError("npy: string element " + std::to_string(i) + " holds an invalid character");
      append_utf8(text, cp);
    }
  }
  return out;
}

int64_t NpyHeader::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

size_t npy_header_size(const char* first, size_t size, const std::string& name) {
  if (size < 10 || std::memcmp(first, "\x93NUMPY", 6) != 0) throw IoError(name + ": not a .npy file (bad magic)");
  const int major = static_cast<uint8_t>(first[6]);
  const auto* p = reinterpret_cast<const uint8_t*>(first);
  size_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = load<uint16_t>(p + 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw IoError(name + ": truncated .npy header");
    header_len = load<uint32_t>(p + 8);
    prefix = 12;
  } else {
    throw IoError(name + ": unsupported .npy format version " + std::to_string(major));
  }
  if (header_len > (1u << 20)) throw IoError(name + ": .npy header too long");
  return prefix + header_len;
}

NpyHeader parse_npy_header(const char* data, size_t size, const std::string& name) {
  NpyHeader h;
  h.data_offset = npy_header_size(data, size, name);
  if (size < h.data_offset) throw IoError(name + ": truncated .npy header");
  const size_t prefix = static_cast<uint8_t>(data[6]) == 1 ? 10 : 12;
  const std::string header(data + prefix, h.data_offset - prefix);

  std::smatch m;
  static const std::regex descr_re(R"('descr'\s*:\s*'([<>|=])([a-zU])(\d{1,3})')");  // stoi-safe
  static const std::regex fortran_re(R"('fortran_order'\s*:\s*(True|False))");
  static const std::regex shape_re(R"('shape'\s*:\s*\(([^)]*)\))");
  if (!std::regex_search(header, m, descr_re))
    throw IoError(name + ": unsupported .npy dtype in header " + header +
                  " (structured or string arrays are not supported)");
  const char order = m[1].str()[0];
  h.kind = m[2].str()[0];
  h.itemsize = std::stoi(m[3].str());
  if (h.kind == 'U') h.itemsize *= 4;  // fixed-width UTF-32 strings: the count is of characters
  const bool known = h.kind == 'U' ? h.itemsize > 0
                     : (h.kind == 'u' || h.kind == 'i')
                         ? (h.itemsize == 1 || h.itemsize == 2 || h.itemsize == 4 || h.itemsize == 8)
                     : h.kind == 'f' ? (h.itemsize == 4 || h.itemsize == 8)
                     : h.kind == 'b' ? h.itemsize == 1
                                     : false;
  if (!known) throw IoError(name + ": unsupported .npy dtype " + m[2].str() + m[3].str());
  if (order == '>' && h.itemsize > 1) throw IoError(name + ": big-endian .npy data is not supported");
  if (!std::regex_search(header, m, fortran_re)) throw IoError(name + ": .npy header lacks fortran_order");
  if (m[1] == "True") throw IoError(name + ": Fortran-order .npy arrays are not supported");
  if (!std::regex_search(header, m, shape_re)) throw IoError(name + ": .npy header lacks shape");
  const std::string dims = m[1].str();
  std::stringstream ss(dims);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    auto b = tok.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    auto e = tok.find_last_not_of(" \t");
    const std::string digits = tok.substr(b, e - b + 1);
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw IoError(name + ": bad .npy shape (" + dims + ")");
    h.shape.push_back(std::stoll(digits));
  }
  // numel() and the payload size must be countable, and the declared size within the limit, before
  // anything is allocated from it (the caller checks it fits the file).
  int64_t elements = 1, bytes = 0;
  bool overflow = false;
  for (int64_t d : h.shape) overflow = overflow || __builtin_mul_overflow(elements, d, &elements);
  if (overflow || __builtin_mul_overflow(elements, static_cast<int64_t>(h.itemsize), &bytes) ||
      bytes > limits::kMaxTensorBytes)
    throw IoError(name + ": .npy shape (" + dims + ") declares more than " + std::to_string(limits::kMaxTensorBytes) +
                  " bytes (limit kMaxTensorBytes)");
  return h;
}

NpyArray parse_npy(const std::string& bytes, const std::string& name) {
  const NpyHeader h = parse_npy_header(bytes.data(), bytes.size(), name);
  NpyArray a;
  a.kind = h.kind;
  a.itemsize = h.itemsize;
  a.shape = h.shape;
  size_t payload = static_cast<size_t>(a.numel()) * static_cast<size_t>(a.itemsize);
  size_t start = h.data_offset;
  if (bytes.size() - start < payload)
    throw IoError(name + ": truncated .npy data (expected " + std::to_string(payload) +
                  " bytes, found " + std::to_string(bytes.size() - start) + ")");
  a.bytes.assign(bytes.begin() + static_cast<std::ptrdiff_t>(start),
                 bytes.begin() + static_cast<std::ptrdiff_t>(start + payload));
  return a;
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

std::string serialize_npy(const NpyArray& a) {
  std::ostringstream h;
  h << "{'descr': '" << (a.itemsize == 1 ? '|' : '<') << a.kind
    << (a.kind == 'U' ? a.itemsize / 4 : a.itemsize) << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < a.shape.size(); ++i) {
    h << a.shape[i];
    if (a.shape.size() == 1 || i + 1 < a.shape.size()) h << ',';
    if (i + 1 < a.shape.size()) h << ' ';
  }
  h << "), }";
  std::string header = h.str();
  // Total header (magic + version + length + dict + newline) padded to a multiple of 64.
  size_t total = 10 + header.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  header.append(padded - total, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(1);
  out.push_back(0);
  uint16_t len = static_cast<uint16_t>(header.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  out += header;
  out.append(reinterpret_cast<const char*>(a.bytes.data()), a.bytes.size());
  return out;
}

template <typename T>
void write_npy(const std::string& path, const T* data, const std::vector<int64_t>& shape) {
  NpyArray a;
  a.kind = NpyType<T>::kind;
  a.itemsize = NpyType<T>::size;
  a.shape = shape;
  size_t n = static_cast<size_t>(a.numel()) * sizeof(T);
  a.bytes.resize(n);
  if (n) std::memcpy(a.bytes.data(), data, n);
  write_file_atomic(path, serialize_npy(a));
}

#define NUCLEISAM_NPY_WRITE(T) \
  template void write_npy<T>(const std::string&, const T*, const std::vector<int64_t>&);
NUCLEISAM_NPY_WRITE(float)
NUCLEISAM_NPY_WRITE(double)
NUCLEISAM_NPY_WRITE(int8_t)
NUCLEISAM_NPY_WRITE(int16_t)
NUCLEISAM_NPY_WRITE(int32_t)
NUCLEISAM_NPY_WRITE(int64_t)
NUCLEISAM_NPY_WRITE(uint8_t)
NUCLEISAM_NPY_WRITE(uint16_t)
NUCLEISAM_NPY_WRITE(uint32_t)
NUCLEISAM_NPY_WRITE(bool)

}  // namespace nucleisam
