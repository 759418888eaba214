// MATLAB .mat reading and writing through matio, converting between MATLAB's column-major layout
// and the C order the rest of the engine uses.
#include "nucleisam/io/mat_file.h"

#include <matio.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"

namespace nucleisam::io {
namespace {

struct MatCloser {
  void operator()(mat_t* m) const {
    if (m) Mat_Close(m);
  }
};
struct VarFreer {
  void operator()(matvar_t* v) const {
    if (v) Mat_VarFree(v);
  }
};
using MatPtr = std::unique_ptr<mat_t, MatCloser>;
using VarPtr = std::unique_ptr<matvar_t, VarFreer>;

bool to_mat_class(matio_classes c, MatClass* out) {
  switch (c) {
    case MAT_C_DOUBLE: *out = MatClass::float64; return true;
    case MAT_C_SINGLE: *out = MatClass::float32; return true;
    case MAT_C_INT8: *out = MatClass::int8; return true;
    case MAT_C_UINT8: *out = MatClass::uint8; return true;
    case MAT_C_INT16: *out = MatClass::int16; return true;
    case MAT_C_UINT16: *out = MatClass::uint16; return true;
    case MAT_C_INT32: *out = MatClass::int32; return true;
    case MAT_C_UINT32: *out = MatClass::uint32; return true;
    case MAT_C_INT64: *out = MatClass::int64; return true;
    case MAT_C_UINT64: *out = MatClass::uint64; return true;
    default: return false;
  }
}

void to_matio(MatClass c, matio_classes* cls, matio_types* type) {
  switch (c) {
    case MatClass::float64: *cls = MAT_C_DOUBLE, *type = MAT_T_DOUBLE; return;
    case MatClass::float32: *cls = MAT_C_SINGLE, *type = MAT_T_SINGLE; return;
    case MatClass::int8: *cls = MAT_C_INT8, *type = MAT_T_INT8; return;
    case MatClass::uint8: *cls = MAT_C_UINT8, *type = MAT_T_UINT8; return;
    case MatClass::int16: *cls = MAT_C_INT16, *type = MAT_T_INT16; return;
    case MatClass::uint16: *cls = MAT_C_UINT16, *type = MAT_T_UINT16; return;
    case MatClass::int32: *cls = MAT_C_INT32, *type = MAT_T_INT32; return;
    case MatClass::uint32: *cls = MAT_C_UINT32, *type = MAT_T_UINT32; return;
    case MatClass::int64: *cls = MAT_C_INT64, *type = MAT_T_INT64; return;
    case MatClass::uint64: *cls = MAT_C_UINT64, *type = MAT_T_UINT64; return;
  }
}

template <typename T>
double element(const void* data, size_t i) {
  return static_cast<double>(static_cast<const T*>(data)[i]);
}

double read_element(MatClass c, const void* data, size_t i) {
  switch (c) {
    case MatClass::float64: return element<double>(data, i);
    case MatClass::float32: return element<float>(data, i);
    case MatClass::int8: return element<int8_t>(data, i);
    case MatClass::uint8: return element<uint8_t>(data, i);
    case MatClass::int16: return element<int16_t>(data, i);
    case MatClass::uint16: return element<uint16_t>(data, i);
    case MatClass::int32: return element<int32_t>(data, i);
    case MatClass::uint32: return element<uint32_t>(data, i);
    case MatClass::int64: return element<int64_t>(data, i);
    case MatClass::uint64: return element<uint64_t>(data, i);
  }
  return 0;
}

// Index in C order of the element whose column-major index is k.
size_t c_order_index(size_t k, const std::vector<size_t>& dims) {
  size_t c = 0;
  std::vector<size_t> sub(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    sub[d] = k % dims[d];
    k /= dims[d];
  }
  for (size_t d = 0; d < dims.size(); ++d) c = c * dims[d] + sub[d];
  return c;
}

// Refuses a variable before matio allocates it when its declared size is over
// limits::kMaxTensorBytes, or more than the file can hold: its data is at most the file's size, times
// zlib's largest ratio (1032:1) when compressed. Checked from Mat_VarReadInfo (no data read).
void check_declared_size(const matvar_t* info, const std::string& path, uintmax_t file_size) {
  const std::string name = info->name ? info->name : "";
  const size_t element = Mat_SizeOfClass(info->class_type);
  uint64_t bytes = element ? element : 1;
  bool overflow = false;
  for (int d = 0; d < info->rank; ++d) overflow = overflow || __builtin_mul_overflow(bytes, info->dims[d], &bytes);
  if (overflow || bytes > static_cast<uint64_t>(limits::kMaxTensorBytes))
    throw IoError(path + ": variable '" + name + "' declares more than " + std::to_string(limits::kMaxTensorBytes) +
                  " bytes (limit kMaxTensorBytes)");
  if (bytes / 1032 > file_size)
    throw IoError(path + ": variable '" + name + "' declares more data than the file can hold (corrupt file?)");
}

MatArray convert(const matvar_t* var, const std::string& path) {
  MatArray a;
  a.name = var->name ? var->name : "";
  if (var->isComplex || !to_mat_class(var->class_type, &a.type))
    throw IoError(path + ": variable '" + a.name + "' is not a real numeric array");
  size_t n = 1;
  for (int d = 0; d < var->rank; ++d) {
    a.dims.push_back(var->dims[d]);
    n *= var->dims[d];
  }
  a.values.resize(n);
  if (n == 0) return a;
  if (!var->data) throw IoError(path + ": variable '" + a.name + "' has no data");
  bool two_d = a.dims.size() == 2;
  for (size_t k = 0; k < n; ++k) {
    size_t c = two_d ? (k % a.dims[0]) * a.dims[1] + k / a.dims[0] : c_order_index(k, a.dims);
    a.values[c] = read_element(a.type, var->data, k);
  }
  return a;
}

template <typename T>
std::vector<uint8_t> column_major_bytes(const MatArray& a) {
  std::vector<uint8_t> bytes(a.values.size() * sizeof(T));
  T* out = reinterpret_cast<T*>(bytes.data());
  for (size_t k = 0; k < a.values.size(); ++k) out[k] = static_cast<T>(a.values[c_order_index(k, a.dims)]);
  return bytes;
}

std::vector<uint8_t> encode(const MatArray& a) {
  switch (a.type) {
    case MatClass::float64: return column_major_bytes<double>(a);
    case MatClass::float32: return column_major_bytes<float>(a);
    case MatClass::int8: return column_major_bytes<int8_t>(a);
    case MatClass::uint8: return column_major_bytes<uint8_t>(a);
    case MatClass::int16: return column_major_bytes<int16_t>(a);
    case MatClass::uint16: return column_major_bytes<uint16_t>(a);
    case MatClass::int32: return column_major_bytes<int32_t>(a);
    case MatClass::uint32: return column_major_bytes<uint32_t>(a);
    case MatClass::int64: return column_major_bytes<int64_t>(a);
    case MatClass::uint64: return column_major_bytes<uint64_t>(a);
  }
  return {};
}

}  // namespace

size_t MatArray::cols() const {
  if (dims.empty()) return 0;
  size_t c = 1;
  for (size_t d = 1; d < dims.size(); ++d) c *= dims[d];
  return c;
}

std::vector<int32_t> MatArray::to_int32(const std::string& file) const {
  std::vector<int32_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    double v = values[i];
    if (!(v == std::floor(v)) || v < std::numeric_limits<int32_t>::min() ||
        v > std::numeric_limits<int32_t>::max())
      throw IoError(file + ": variable '" + name + "' holds " + std::to_string(v) +
                    ", expected an integer id");
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

std::map<std::string, MatArray> read_mat(const std::string& path, const std::vector<std::string>& names) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError(path + ": no such file");
  // Only the 128-byte v5 / v7.3 header (endian mark "IM" or "MI" at bytes 126-127) is accepted:
  // matio falls back to the obsolete v4 format for anything else, and its v4 reader allocates and
  // fills whatever size 20 bytes of garbage declare (1.8 GB for a 231-byte file).
  {
    char header[128] = {};
    std::ifstream in(path, std::ios::binary);
    if (!in.read(header, sizeof header) ||
        !((header[126] == 'I' && header[127] == 'M') || (header[126] == 'M' && header[127] == 'I')))
      throw IoError(path + ": not a MATLAB v5 or v7.3 .mat file (no 128-byte MAT-file header)");
  }
  MatPtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) throw IoError(path + ": not a readable MATLAB .mat file");
  const uintmax_t file_size = std::filesystem::file_size(path, ec);
  std::map<std::string, MatArray> out;
  if (names.empty()) {
    std::vector<std::string> found;
    while (true) {
      VarPtr info(Mat_VarReadNextInfo(mat.get()));
      if (!info) break;
      MatClass c;
      if (info->isComplex || !to_mat_class(info->class_type, &c) || info->class_type == MAT_C_SPARSE || !info->name)
        continue;
      found.push_back(info->name);
    }
    if (found.empty()) return out;
    return read_mat(path, found);
  }
  for (const std::string& name : names) {
    VarPtr info(Mat_VarReadInfo(mat.get(), name.c_str()));
    if (!info) continue;
    check_declared_size(info.get(), path, file_size);
    VarPtr var(Mat_VarRead(mat.get(), name.c_str()));
    if (!var) throw IoError(path + ": cannot read variable '" + name + "' (corrupt file?)");
    if (var->class_type == MAT_C_SPARSE) throw IoError(path + ": variable '" + name + "' is sparse, expected a dense array");
    out[name] = convert(var.get(), path);
  }
  return out;
}

void write_mat(const std::string& path, const std::vector<MatArray>& arrays, bool compress) {
  ensure_parent_dir(path);
  AtomicFile file(path);
  {
    MatPtr mat(Mat_CreateVer(file.temp_path().c_str(), nullptr, MAT_FT_MAT5));
    if (!mat) throw IoError(path + ": cannot create MATLAB file");
    for (const MatArray& a : arrays) {
      size_t n = 1;
      for (size_t d : a.dims) n *= d;
      if (n != a.values.size() || a.dims.size() < 2)
        throw IoError(path + ": variable '" + a.name + "' has " + std::to_string(a.values.size()) +
                      " values for its dimensions (at least 2 dimensions required)");
      std::vector<uint8_t> bytes = encode(a);
      std::vector<size_t> dims = a.dims;
      matio_classes cls = MAT_C_DOUBLE;
      matio_types type = MAT_T_DOUBLE;
      to_matio(a.type, &cls, &type);
      VarPtr var(Mat_VarCreate(a.name.c_str(), cls, type, static_cast<int>(dims.size()), dims.data(),
                               bytes.data(), MAT_F_DONT_COPY_DATA));
      if (!var) throw IoError(path + ": cannot create variable '" + a.name + "'");
      if (Mat_VarWrite(mat.get(), var.get(), compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE) != 0)
        throw IoError(path + ": cannot write variable '" + a.name + "'");
    }
  }
  file.commit();
}

}  // namespace nucleisam::io
