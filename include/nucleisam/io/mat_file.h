// MATLAB .mat files (v5; v7.3/HDF5 too with a matio built with HDF5, as Debian's is) through matio:
// numeric arrays only, which is all the nucleus datasets store (CoNSeP type_mat, Lizard labels).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nucleisam::io {

// Storage class of a numeric MATLAB array.
enum class MatClass { float64, float32, int8, uint8, int16, uint16, int32, uint32, int64, uint64 };

struct MatArray {
  std::string name;
  MatClass type = MatClass::float64;  // as stored in the file; selects the class when writing
  std::vector<size_t> dims;           // MATLAB dimensions, e.g. {rows, cols}
  // Values in C order (last dimension fastest), i.e. already transposed from MATLAB's
  // column-major layout: element (r, c) of a 2-D array is values[r * cols + c].
  std::vector<double> values;

  size_t numel() const { return values.size(); }
  size_t rows() const { return dims.empty() ? 0 : dims[0]; }
  size_t cols() const;  // product of every dimension after the first
  // Values as int32, checking each is integral and in range; throws IoError naming `file`.
  std::vector<int32_t> to_int32(const std::string& file) const;
};

// Reads the named numeric variables that exist in the file (every numeric variable when `names`
// is empty; non-numeric ones are then skipped). Asking for a variable that is a cell, struct,
// complex or sparse array throws. Throws IoError naming the path when the file cannot be opened
// or is not a MATLAB file. Missing names are simply absent from the result: callers decide.
std::map<std::string, MatArray> read_mat(const std::string& path,
                                         const std::vector<std::string>& names = {});

// Writes a MATLAB v5 file (zlib-compressed when `compress`), atomically. Values are cast to each
// array's `type`.
void write_mat(const std::string& path, const std::vector<MatArray>& arrays, bool compress = false);

}  // namespace nucleisam::io
