// A read-only view of a whole file through mmap, shared by every tensor that points into it, so
// a 2.5 GB checkpoint is never held twice: tensors read straight from the page cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nucleisam::weights {

class MappedFile {
 public:
  // Throws CheckpointError naming the path when the file is missing, a folder, empty or unreadable.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Private copy-on-write mapping: a tensor that aliases it may be written to without touching
  // the file. The pointer is non-const only so that torch::from_blob accepts it.
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  uint8_t* data_;
  size_t size_;
};

}  // namespace nucleisam::weights
