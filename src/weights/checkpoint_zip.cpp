// ZIP reading and writing for .pth checkpoints (see zip_archive.h). Every multi-byte field is
// little-endian; every offset read from the file is bounds-checked before it is followed.
#include <algorithm>
#include <array>
#include <cstring>

#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "weights/zip_archive.h"

namespace nucleisam::weights {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPaddingExtraId = 0x4246;  // "FB", the id torch.save pads with
constexpr uint32_t kMax32 = 0xFFFFFFFFu;
constexpr size_t kAlignment = 64;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t get64(const uint8_t* p) { return get32(p) | (static_cast<uint64_t>(get32(p + 4)) << 32); }

void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v & 0xFFFF));
  put16(s, static_cast<uint16_t>(v >> 16));
}
void put64(std::string& s, uint64_t v) {
  put32(s, static_cast<uint32_t>(v & kMax32));
  put32(s, static_cast<uint32_t>(v >> 32));
}

[[noreturn]] void corrupt(const std::string& path, const std::string& cause) {
  throw CheckpointError(path + ": not a valid zip archive (" + cause + ")");
}

// True when [offset, offset + length) lies inside a file of `size` bytes, without overflow.
bool inside(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// Fills the ZIP64 values a central header marks with 0xFFFFFFFF, in the order the format fixes.
void apply_zip64_extra(const uint8_t* extra, size_t extra_len, ZipEntry& e, uint64_t& header_offset,
                       bool need_size, bool need_csize, bool need_offset, const std::string& path) {
  size_t pos = 0;
  while (pos + 4 <= extra_len) {
    uint16_t id = get16(extra + pos);
    uint16_t len = get16(extra + pos + 2);
    if (pos + 4 + len > extra_len) corrupt(path, "extra field runs past its header in " + e.name);
    if (id == kZip64ExtraId) {
      const uint8_t* q = extra + pos + 4;
      size_t left = len;
      auto next = [&](uint64_t& out) {
        if (left < 8) corrupt(path, "short ZIP64 extra field in " + e.name);
        out = get64(q);
        q += 8;
        left -= 8;
      };
      if (need_size) next(e.size);
      if (need_csize) next(e.compressed_size);
      if (need_offset) next(header_offset);
      return;
    }
    pos += 4 + len;
  }
  if (need_size || need_csize || need_offset) corrupt(path, "missing ZIP64 extra field in " + e.name);
}

}  // namespace

std::vector<ZipEntry> read_zip_directory(const uint8_t* data, size_t size, const std::string& path) {
  if (size < 22) corrupt(path, "file too short, truncated?");
  // The end record sits at the very end, after an optional comment of at most 65535 bytes.
  size_t end_pos = SIZE_MAX;
  size_t lowest = size >= 22 + 65535 ? size - 22 - 65535 : 0;
  for (size_t p = size - 22 + 1; p-- > lowest;) {
    if (get32(data + p) == kEndSig && p + 22 + get16(data + p + 20) <= size) {
      end_pos = p;
      break;
    }
  }
  if (end_pos == SIZE_MAX) corrupt(path, "no end-of-central-directory record; the file is truncated or not a zip");
  const uint8_t* end = data + end_pos;
  if (get16(end + 4) != 0 || get16(end + 6) != 0) corrupt(path, "multi-part archives are not supported");
  uint64_t count = get16(end + 10);
  uint64_t dir_size = get32(end + 12);
  uint64_t dir_offset = get32(end + 16);
  uint64_t dir_limit = end_pos;  // the directory must end before the record that points to it

  if (end_pos >= 20 && get32(data + end_pos - 20) == kEnd64LocatorSig) {
    uint64_t end64_pos = get64(data + end_pos - 20 + 8);
    if (!inside(end64_pos, 56, end_pos - 20) || get32(data + end64_pos) != kEnd64Sig)
      corrupt(path, "bad ZIP64 end record offset; the file is truncated or corrupt");
    const uint8_t* e64 = data + end64_pos;
    count = get64(e64 + 32);
    dir_size = get64(e64 + 40);
    dir_offset = get64(e64 + 48);
    dir_limit = end64_pos;
  }
  if (!inside(dir_offset, dir_size, dir_limit))
    corrupt(path, "central directory lies outside the file; the file is truncated or corrupt");
  if (count > dir_size / 46) corrupt(path, "entry count does not fit the central directory");
  if (count > static_cast<uint64_t>(limits::kMaxZipEntries))
    corrupt(path, std::to_string(count) + " entries, over the limit of " + std::to_string(limits::kMaxZipEntries) +
                      " (kMaxZipEntries)");

  std::vector<ZipEntry> entries;
  entries.reserve(static_cast<size_t>(count));
  const uint8_t* dir = data + dir_offset;
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 46 > dir_size || get32(dir + pos) != kCentralHeaderSig)
      corrupt(path, "bad central directory header #" + std::to_string(i));
    const uint8_t* h = dir + pos;
    ZipEntry e;
    e.flags = get16(h + 8);
    e.method = get16(h + 10);
    e.crc32 = get32(h + 16);
    e.compressed_size = get32(h + 20);
    e.size = get32(h + 24);
    size_t name_len = get16(h + 28), extra_len = get16(h + 30), comment_len = get16(h + 32);
    if (get16(h + 34) != 0) corrupt(path, "multi-part archives are not supported");
    uint64_t header_offset = get32(h + 42);
    if (pos + 46 + name_len + extra_len + comment_len > dir_size)
      corrupt(path, "central directory header #" + std::to_string(i) + " runs past the directory");
    e.name.assign(reinterpret_cast<const char*>(h + 46), name_len);
    apply_zip64_extra(h + 46 + name_len, extra_len, e, header_offset, e.size == kMax32,
                      e.compressed_size == kMax32, header_offset == kMax32, path);
    pos += 46 + name_len + extra_len + comment_len;

    if (!inside(header_offset, 30, size) || get32(data + header_offset) != kLocalHeaderSig)
      corrupt(path, "local header of " + e.name + " is missing; the file is truncated or corrupt");
    const uint8_t* local = data + header_offset;
    e.data_offset = header_offset + 30 + get16(local + 26) + get16(local + 28);
    if (!inside(e.data_offset, e.compressed_size, size))
      corrupt(path, "data of " + e.name + " runs past the end of the file; the file is truncated");
    // Declared sizes are checked before anything is read or inflated (a zip bomb declares a small
    // entry that expands a thousandfold; compressed entries are refused anyway when read).
    if (e.size > static_cast<uint64_t>(limits::kMaxZipEntryBytes))
      corrupt(path, e.name + " declares " + std::to_string(e.size) + " uncompressed bytes, over the limit of " +
                        std::to_string(limits::kMaxZipEntryBytes) + " (kMaxZipEntryBytes)");
    if (e.size > 4096 && e.size / std::max<uint64_t>(e.compressed_size, 1) > static_cast<uint64_t>(limits::kMaxZipRatio))
      corrupt(path, e.name + " declares " + std::to_string(e.size) + " bytes from " + std::to_string(e.compressed_size) +
                        " compressed, a ratio over the limit of " + std::to_string(limits::kMaxZipRatio) +
                        " (kMaxZipRatio; a zip bomb?)");
    entries.push_back(std::move(e));
  }
  return entries;
}

const uint8_t* stored_entry_data(const uint8_t* data, const ZipEntry& entry, const std::string& path) {
  if (entry.flags & 1) throw CheckpointError(path + ": zip entry " + entry.name + " is encrypted");
  if (entry.method != 0 || entry.compressed_size != entry.size)
    throw CheckpointError(path + ": zip entry " + entry.name + " is compressed (method " +
                          std::to_string(entry.method) +
                          "); torch.save stores entries uncompressed, so this archive was repacked "
                          "by another tool: re-save it with torch.save or unzip and re-zip with -0");
  return data + entry.data_offset;
}

namespace {
// Slice-by-8 tables: ~8x faster than bytewise, which matters when writing a 2.5 GB file.
struct Crc32Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Crc32Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};
const Crc32Tables& crc_tables() {
  static const Crc32Tables tables;
  return tables;
}
}  // namespace

uint32_t crc32(const void* data, size_t size, uint32_t crc) {
  const auto& t = crc_tables().t;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  while (size >= 8) {
    uint32_t lo = get32(p) ^ crc, hi = get32(p + 4);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size--) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

ZipWriter::ZipWriter(std::ostream& out, bool force_zip64) : out_(out), force_zip64_(force_zip64) {}

void ZipWriter::write_bytes(const void* p, size_t n) {
  out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  offset_ += n;
}

void ZipWriter::add(const std::string& name, const void* data, size_t size) {
  if (name.size() > 0xFFFF) throw CheckpointError("zip entry name too long: " + name.substr(0, 64));
  bool zip64 = force_zip64_ || size >= kMax32;
  uint32_t crc = crc32(data, size);
  std::string extra;
  if (zip64) {
    put16(extra, kZip64ExtraId);
    put16(extra, 16);
    put64(extra, size);
    put64(extra, size);
  }
  // Pad so that the data starts on a 64-byte boundary (as torch.save does; lets readers map
  // tensors in place). The padding record itself needs 4 bytes of header.
  size_t unpadded = offset_ + 30 + name.size() + extra.size() + 4;
  size_t pad = (kAlignment - unpadded % kAlignment) % kAlignment;
  put16(extra, kPaddingExtraId);
  put16(extra, static_cast<uint16_t>(pad));
  extra.append(pad, 'Z');

  std::string h;
  put32(h, kLocalHeaderSig);
  put16(h, zip64 ? 45 : 20);  // version needed
  put16(h, 0x0800);           // UTF-8 names
  put16(h, 0);                // stored
  put16(h, 0);                // time
  put16(h, 0);                // date
  put32(h, crc);
  put32(h, zip64 ? kMax32 : static_cast<uint32_t>(size));
  put32(h, zip64 ? kMax32 : static_cast<uint32_t>(size));
  put16(h, static_cast<uint16_t>(name.size()));
  put16(h, static_cast<uint16_t>(extra.size()));
  h += name;
  h += extra;
  written_.push_back({name, crc, size, offset_});
  write_bytes(h.data(), h.size());
  write_bytes(data, size);
}

void ZipWriter::finish() {
  uint64_t dir_offset = offset_;
  bool any_zip64 = force_zip64_;
  std::string dir;
  for (const Written& w : written_) {
    bool big_size = force_zip64_ || w.size >= kMax32;
    bool big_offset = force_zip64_ || w.header_offset >= kMax32;
    std::string extra;
    if (big_size || big_offset) {
      any_zip64 = true;
      put16(extra, kZip64ExtraId);
      put16(extra, static_cast<uint16_t>((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
      if (big_size) {
        put64(extra, w.size);
        put64(extra, w.size);
      }
      if (big_offset) put64(extra, w.header_offset);
    }
    put32(dir, kCentralHeaderSig);
    put16(dir, (3 << 8) | 45);  // made by: unix, spec 4.5
    put16(dir, extra.empty() ? 20 : 45);
    put16(dir, 0x0800);
    put16(dir, 0);
    put16(dir, 0);
    put16(dir, 0);
    put32(dir, w.crc32);
    put32(dir, big_size ? kMax32 : static_cast<uint32_t>(w.size));
    put32(dir, big_size ? kMax32 : static_cast<uint32_t>(w.size));
    put16(dir, static_cast<uint16_t>(w.name.size()));
    put16(dir, static_cast<uint16_t>(extra.size()));
    put16(dir, 0);  // comment
    put16(dir, 0);  // disk
    put16(dir, 0);  // internal attributes
    put32(dir, 0644u << 16);  // external attributes: a regular file, rw-r--r--
    put32(dir, big_offset ? kMax32 : static_cast<uint32_t>(w.header_offset));
    dir += w.name;
    dir += extra;
  }
  write_bytes(dir.data(), dir.size());

  uint64_t count = written_.size();
  uint64_t dir_size = dir.size();
  if (count > 0xFFFF || dir_offset >= kMax32 || dir_size >= kMax32) any_zip64 = true;
  std::string tail;
  if (any_zip64) {
    uint64_t end64_offset = offset_;
    put32(tail, kEnd64Sig);
    put64(tail, 44);  // size of the rest of this record
    put16(tail, (3 << 8) | 45);
    put16(tail, 45);
    put32(tail, 0);
    put32(tail, 0);
    put64(tail, count);
    put64(tail, count);
    put64(tail, dir_size);
    put64(tail, dir_offset);
    put32(tail, kEnd64LocatorSig);
    put32(tail, 0);
    put64(tail, end64_offset);
    put32(tail, 1);
  }
  put32(tail, kEndSig);
  put16(tail, 0);
  put16(tail, 0);
  put16(tail, static_cast<uint16_t>(count > 0xFFFF ? 0xFFFF : count));
  put16(tail, static_cast<uint16_t>(count > 0xFFFF ? 0xFFFF : count));
  put32(tail, dir_size >= kMax32 ? kMax32 : static_cast<uint32_t>(dir_size));
  put32(tail, dir_offset >= kMax32 ? kMax32 : static_cast<uint32_t>(dir_offset));
  put16(tail, 0);
  write_bytes(tail.data(), tail.size());
}

}  // namespace nucleisam::weights
