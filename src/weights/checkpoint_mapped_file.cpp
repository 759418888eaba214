// mmap of a checkpoint file (see mapped_file.h).
#include "weights/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nucleisam/errors.h"

namespace nucleisam::weights {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) throw CheckpointError(path + ": no such file");
    throw CheckpointError(path + ": cannot open (" + std::strerror(err) + ")");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw CheckpointError(path + ": cannot read file size (" + std::strerror(err) + ")");
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw CheckpointError(path + ": is a folder, expected a checkpoint file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw CheckpointError(path + ": empty file, not a checkpoint");
  }
  size_t size = static_cast<size_t>(st.st_size);
  // MAP_PRIVATE + PROT_WRITE: copy-on-write, so in-place edits of loaded tensors stay in memory.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) throw CheckpointError(path + ": cannot map file (" + std::strerror(err) + ")");
  return std::shared_ptr<const MappedFile>(new MappedFile(path, static_cast<uint8_t*>(p), size));
}

MappedFile::~MappedFile() { ::munmap(data_, size_); }

}  // namespace nucleisam::weights
