// Per-slice reads of .npy files; the header is parsed by the one .npy header parser (npy.h).
#include "data/readers/npy_slices.h"

#include <cstring>
#include <fstream>

#include "nucleisam/errors.h"
#include "nucleisam/npy.h"

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
  std::string head(12, '\0');
  in.read(head.data(), 12);
  head.resize(static_cast<size_t>(in.gcount()));
  head.resize(npy_header_size(head.data(), head.size(), path_), '\0');
  in.clear();
  in.seekg(0);
  if (!in.read(head.data(), static_cast<std::streamsize>(head.size()))) throw IoError(path_ + ": truncated .npy header");
  const NpyHeader h = parse_npy_header(head.data(), head.size(), path_);
  if (h.kind == 'U') throw IoError(path_ + ": .npy array holds strings, expected numbers");
  kind_ = h.kind;
  itemsize_ = h.itemsize;
  shape_ = h.shape;
  data_offset_ = static_cast<int64_t>(h.data_offset);
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
