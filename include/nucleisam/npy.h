// NumPy .npy files (format versions 1-3, little-endian, C order): read any numeric array, write
// the types the engine produces. Standard library only, so the compute core can use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nucleisam {

struct NpyArray {
  char kind = 'f';   // 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool, 'U' string
  int itemsize = 4;  // bytes per element (4 per character for 'U')
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian, C order

  int64_t numel() const;
  std::string dtype() const;  // numpy-style name: "float32", "uint8", ...
  // Every element converted to T with a plain numeric cast (memcpy when the types match).
  template <typename T>
  std::vector<T> to_vector() const;
  // A string array ('U': fixed-width UTF-32, NUL-padded) as UTF-8 strings, C order. IoError for
  // any other kind or an invalid character.
  std::vector<std::string> to_strings() const;
};

// The header of a .npy file: element type, shape, and where the data starts. The one parser of
// .npy headers: read_npy and the datasets' slice reader both use it. Accepted: format versions
// 1-3, descr '<' or '|' (and '>' for one-byte types, whose byte order is moot) with kinds
// f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1 and U<n> (strings of n characters, itemsize 4n),
// 'fortran_order': False (the key is required), a shape of
// non-negative integers ("()" is a scalar).
struct NpyHeader {
  char kind = 'f';
  int itemsize = 4;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes before the data: magic, version, length, header dict
  int64_t numel() const;
};
// Bytes before the data of a .npy file, from its first `size` bytes (12 suffice; 10 for
// version 1). Throws IoError naming `name` for a bad magic, an unknown version, a header over
// 1 MB, or too few bytes.
size_t npy_header_size(const char* first, size_t size, const std::string& name);
// Parses the header at the start of `data` (at least npy_header_size bytes). Throws IoError
// naming `name` and the cause.
NpyHeader parse_npy_header(const char* data, size_t size, const std::string& name);

// Throws IoError naming the path for a missing file, a bad header, big-endian or Fortran-order
// data, or a payload shorter than the header promises.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::string& bytes, const std::string& name_for_errors);

template <typename T>
void write_npy(const std::string& path, const T* data, const std::vector<int64_t>& shape);
template <typename T>
void write_npy(const std::string& path, const std::vector<T>& data,
               const std::vector<int64_t>& shape) {
  write_npy(path, data.data(), shape);
}
std::string serialize_npy(const NpyArray& array);

template <typename T>
struct NpyType;  // kind/itemsize for supported element types
#define NUCLEISAM_NPY_TYPE(T, K)          \
  template <>                             \
  struct NpyType<T> {                     \
    static constexpr char kind = K;       \
    static constexpr int size = sizeof(T); \
  };
NUCLEISAM_NPY_TYPE(float, 'f')
NUCLEISAM_NPY_TYPE(double, 'f')
NUCLEISAM_NPY_TYPE(int8_t, 'i')
NUCLEISAM_NPY_TYPE(int16_t, 'i')
NUCLEISAM_NPY_TYPE(int32_t, 'i')
NUCLEISAM_NPY_TYPE(int64_t, 'i')
NUCLEISAM_NPY_TYPE(uint8_t, 'u')
NUCLEISAM_NPY_TYPE(uint16_t, 'u')
NUCLEISAM_NPY_TYPE(uint32_t, 'u')
NUCLEISAM_NPY_TYPE(bool, 'b')
#undef NUCLEISAM_NPY_TYPE

}  // namespace nucleisam
