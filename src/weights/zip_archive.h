// The subset of ZIP that torch.save uses: stored (uncompressed) entries, ZIP64 records, and
// 64-byte aligned entry data. Reading works on bytes already in memory (an mmap); writing streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace nucleisam::weights {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;          // 0 = stored; anything else is refused when the entry is read
  uint16_t flags = 0;           // bit 0 = encrypted
  uint32_t crc32 = 0;           // from the central directory
  uint64_t compressed_size = 0;
  uint64_t size = 0;            // uncompressed
  uint64_t data_offset = 0;     // first byte of the entry's data in the file
};

// Parses the central directory (ZIP64 aware) of the zip file `data[0, size)`. Every entry's
// local header and data range is checked to lie inside the file, so a truncated or corrupt
// archive fails here with CheckpointError("<path>: ...") instead of crashing later.
std::vector<ZipEntry> read_zip_directory(const uint8_t* data, size_t size, const std::string& path);

// Pointer to a stored entry's bytes; CheckpointError for compressed or encrypted entries.
const uint8_t* stored_entry_data(const uint8_t* data, const ZipEntry& entry, const std::string& path);

// Standard CRC-32 (zlib / ZIP polynomial 0xEDB88320).
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

// Writes a zip the way torch.save does: stored entries, data aligned to 64 bytes by padding the
// local header's extra field, ZIP64 extra fields where a size or offset needs them.
class ZipWriter {
 public:
  // force_zip64: write ZIP64 fields for every entry even when small (lets tests exercise the
  // > 4 GB code path on small files).
  explicit ZipWriter(std::ostream& out, bool force_zip64 = false);
  void add(const std::string& name, const void* data, size_t size);
  // Writes the central directory and end records; the stream is then complete.
  void finish();

 private:
  struct Written {
    std::string name;
    uint32_t crc32;
    uint64_t size;
    uint64_t header_offset;
  };
  void write_bytes(const void* p, size_t n);
  std::ostream& out_;
  bool force_zip64_;
  uint64_t offset_ = 0;
  std::vector<Written> written_;
};

}  // namespace nucleisam::weights
