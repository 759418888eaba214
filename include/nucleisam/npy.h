// NumPy .npy files (format versions 1-3, little-endian, C order): read any numeric array, write
// the types the engine produces. Standard library only, so the compute core can use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nucleisam {

struct NpyArray {
  char kind = 'f';        // 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool
  int itemsize = 4;       // bytes per element
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian, C order

  int64_t numel() const;
  std::string dtype() const;  // numpy-style name: "float32", "uint8", ...
  // Every element converted to T with a plain numeric cast (memcpy when the types match).
  template <typename T>
  std::vector<T> to_vector() const;
};

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
