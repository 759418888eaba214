// Private to src/data: reads one leading-axis slice (one sample) of a large .npy file without
// loading the rest, so CoNIC (~3.6 GB) and PanNuke folds open lazily. Thread-safe: every read
// opens its own stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nucleisam::data {

class NpySlices {
 public:
  explicit NpySlices(std::string path);  // parses the header; throws IoError naming the path
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t count() const { return shape_.empty() ? 0 : shape_[0]; }
  int64_t slice_elements() const { return slice_elements_; }
  const std::string& path() const { return path_; }
  // Elements of slice i (C order) converted to double; values of any integer or float dtype.
  std::vector<double> read(int64_t i) const;

 private:
  std::string path_;
  std::vector<int64_t> shape_;
  char kind_ = 'u';
  int itemsize_ = 1;
  int64_t data_offset_ = 0;
  int64_t slice_elements_ = 0;
};

}  // namespace nucleisam::data
