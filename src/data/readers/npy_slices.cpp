// Header parsing and per-slice reads of .npy files (format versions 1-3, little-endian, C order).
#include "data/readers/npy_slices.h"

#include <cstring>
#include <fstream>
#include <regex>

#include "nucleisam/errors.h"

namespace nucleisam::data {
namespace {

template <typename T>
void widen(const char* bytes, size_t n, double* out) {
  for (size_t k = 0; k < n; ++k) {
    T v;
    std::memcpy(&v, bytes + k * sizeof(T), sizeof(T));
    out[k] = static_cast<double>(v);
  }
}

}  // namespace

NpySlices::NpySlices(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw IoError(path_ + ": cannot open");
  char magic[10];
  if (!in.read(magic, 10) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw IoError(path_ + ": not a .npy file (bad magic)");
  int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  int64_t prefix = 10;
  if (major == 1) {
    header_len = static_cast<unsigned char>(magic[8]) | (static_cast<unsigned char>(magic[9]) << 8);
  } else if (major == 2 || major == 3) {
    char extra[2];
    if (!in.read(extra, 2)) throw IoError(path_ + ": truncated .npy header");
    unsigned char b[4] = {static_cast<unsigned char>(magic[8]), static_cast<unsigned char>(magic[9]),
                          static_cast<unsigned char>(extra[0]), static_cast<unsigned char>(extra[1])};
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
    prefix = 12;
  } else {
    throw IoError(path_ + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_len > (1u << 20)) throw IoError(path_ + ": .npy header too long");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw IoError(path_ + ": truncated .npy header");
  data_offset_ = prefix + header_len;

  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([<|>=])([a-z])(\\d+)'")))
    throw IoError(path_ + ": .npy header has no simple 'descr' (structured or string arrays are not supported)");
  if (m[1] == ">") throw IoError(path_ + ": big-endian .npy data is not supported");
  kind_ = m[2].str()[0];
  itemsize_ = std::stoi(m[3]);
  bool known = (kind_ == 'u' || kind_ == 'i') ? (itemsize_ == 1 || itemsize_ == 2 || itemsize_ == 4 || itemsize_ == 8)
               : kind_ == 'f'               ? (itemsize_ == 4 || itemsize_ == 8)
               : kind_ == 'b'               ? itemsize_ == 1
                                            : false;
  if (!known) throw IoError(path_ + ": unsupported .npy dtype " + m[2].str() + m[3].str());
  if (std::regex_search(header, std::regex("'fortran_order'\\s*:\\s*True")))
    throw IoError(path_ + ": Fortran-order .npy data is not supported");
  if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
    throw IoError(path_ + ": .npy header has no 'shape'");
  std::string dims = m[1];
  std::regex number("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it)
    shape_.push_back(std::stoll(it->str()));
  if (shape_.empty()) throw IoError(path_ + ": .npy array is a scalar, expected samples on the first axis");
  slice_elements_ = 1;
  for (size_t d = 1; d < shape_.size(); ++d) slice_elements_ *= shape_[d];
  in.seekg(0, std::ios::end);
  int64_t needed = data_offset_ + shape_[0] * slice_elements_ * itemsize_;
  if (static_cast<int64_t>(in.tellg()) < needed)
    throw IoError(path_ + ": file is shorter than its .npy header promises (" + std::to_string(needed) + " bytes)");
}

std::vector<double> NpySlices::read(int64_t i) const {
  if (i < 0 || i >= count())
    throw IoError(path_ + ": sample " + std::to_string(i) + " out of range (" + std::to_string(count()) + ")");
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw IoError(path_ + ": cannot open");
  const size_t n = static_cast<size_t>(slice_elements_);
  std::vector<char> bytes(n * itemsize_);
  in.seekg(data_offset_ + i * slice_elements_ * itemsize_);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw IoError(path_ + ": cannot read sample " + std::to_string(i));
  std::vector<double> out(n);
  const char* b = bytes.data();
  switch (kind_) {
    case 'u':
      if (itemsize_ == 1) widen<uint8_t>(b, n, out.data());
      else if (itemsize_ == 2) widen<uint16_t>(b, n, out.data());
      else if (itemsize_ == 4) widen<uint32_t>(b, n, out.data());
      else widen<uint64_t>(b, n, out.data());
      break;
    case 'i':
      if (itemsize_ == 1) widen<int8_t>(b, n, out.data());
      else if (itemsize_ == 2) widen<int16_t>(b, n, out.data());
      else if (itemsize_ == 4) widen<int32_t>(b, n, out.data());
      else widen<int64_t>(b, n, out.data());
      break;
    case 'f':
      if (itemsize_ == 4) widen<float>(b, n, out.data());
      else widen<double>(b, n, out.data());
      break;
    default:
      widen<uint8_t>(b, n, out.data());
  }
  return out;
}

}  // namespace nucleisam::data
