// Refinement sessions on disk (see refine_session.h). Layout, little-endian:
//   "NSREFINE" u32 version=1, u32 key length, key bytes,
//   i32 height, i32 width, i32 crop, i32 stride, u32 crop count,
//   per crop: u32 point count, points (f32 x, f32 y, i32 category),
//             i32 height, i32 width, u32 run count, runs (i32 label, u32 length) over the row-major
//             label map, u32 instance count, i32 class per instance, u32 instance count, f32 score
//             per instance (instances are 1..the largest label).
// Label maps are run-length coded: a 256 x 256 crop with 50 nuclei is a few thousand runs.
#include "nucleisam/predict/refine_session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"

namespace nucleisam::predict {
namespace {

constexpr char kMagic[8] = {'N', 'S', 'R', 'E', 'F', 'I', 'N', 'E'};
constexpr uint32_t kVersion = 1;

uint64_t fnv1a(const void* data, size_t size, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << v;
  return s.str();
}

uint64_t file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot read the model file");
  uint64_t h = 1469598103934665603ull;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    h = fnv1a(buffer.data(), static_cast<size_t>(in.gcount()), h);
  }
  return h;
}

class Writer {
 public:
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void bytes(const std::string& s) { out_ += s; }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& bytes, const std::string& path) : b_(bytes), path_(path) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // A count of items of `item_bytes` each that the rest of the file must hold, and at most `limit`.
  uint32_t count(size_t item_bytes, uint64_t limit, const char* what) {
    const uint32_t n = get<uint32_t>();
    if (n > limit || static_cast<uint64_t>(n) * item_bytes > b_.size() - pos_) fail(std::string("bad ") + what);
    return n;
  }
  bool done() const { return pos_ == b_.size(); }
  [[noreturn]] void fail(const std::string& why) const {
    throw DataError(path_ + ": not a usable refine session (" + why + " at byte " + std::to_string(pos_) + ")");
  }

 private:
  void need(size_t n) {
    if (n > b_.size() - pos_) fail("cut short");
  }
  const std::string& b_;
  std::string path_;
  size_t pos_ = 0;
};

}  // namespace

std::string refine_session_key(const Image& image, const std::string& model_path,
                               const CategorySamSegmenterOptions& options) {
  const int32_t dims[3] = {image.height, image.width, image.channels};
  const uint64_t pixels = fnv1a(image.data.data(), image.data.size(), fnv1a(dims, sizeof(dims)));
  const infer::ThreeClassOptions& d = options.decoding;
  std::ostringstream key;
  key << "image=" << hex(pixels) << " model=" << hex(file_digest(model_path)) << " precision=" << options.precision
      << " decoding=" << d.boundary_boost << "," << d.min_interior_area << "," << d.max_growth << "," << d.min_area;
  return key.str();
}

void write_refine_session(const std::string& path, const RefineSession& session) {
  const TiledSegmentation& t = session.tiled;
  Writer w;
  w.bytes(std::string(kMagic, sizeof(kMagic)));
  w.put<uint32_t>(kVersion);
  w.put<uint32_t>(static_cast<uint32_t>(session.key.size()));
  w.bytes(session.key);
  w.put<int32_t>(t.grid.height);
  w.put<int32_t>(t.grid.width);
  w.put<int32_t>(t.grid.crop);
  w.put<int32_t>(t.grid.stride);
  w.put<uint32_t>(static_cast<uint32_t>(t.crops.size()));
  for (size_t i = 0; i < t.crops.size(); ++i) {
    const std::vector<PointPrompt>& points = i < t.points.size() ? t.points[i] : std::vector<PointPrompt>{};
    w.put<uint32_t>(static_cast<uint32_t>(points.size()));
    for (const PointPrompt& p : points) {
      w.put<float>(p.x);
      w.put<float>(p.y);
      w.put<int32_t>(p.category);
    }
    const infer::Segmentation& s = t.crops[i];
    w.put<int32_t>(s.instances.height);
    w.put<int32_t>(s.instances.width);
    Writer runs;
    uint32_t run_count = 0;
    const auto& labels = s.instances.data;
    for (size_t j = 0; j < labels.size();) {
      size_t k = j;
      while (k < labels.size() && labels[k] == labels[j]) ++k;
      runs.put<int32_t>(labels[j]);
      runs.put<uint32_t>(static_cast<uint32_t>(k - j));
      ++run_count;
      j = k;
    }
    w.put<uint32_t>(run_count);
    w.bytes(runs.str());
    w.put<uint32_t>(static_cast<uint32_t>(s.classes.size()));
    for (int c : s.classes) w.put<int32_t>(c);
    w.put<uint32_t>(static_cast<uint32_t>(s.scores.size()));
    for (float v : s.scores) w.put<float>(v);
  }
  write_file_atomic(path, w.str());
}

std::optional<RefineSession> read_refine_session(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  const std::string bytes = read_file(path);
  Reader r(bytes, path);
  if (r.bytes(sizeof(kMagic)) != std::string(kMagic, sizeof(kMagic))) r.fail("no NSREFINE signature");
  if (r.get<uint32_t>() != kVersion) r.fail("unknown version");
  RefineSession s;
  s.key = r.bytes(r.count(1, 4096, "key length"));
  TiledSegmentation& t = s.tiled;
  const int32_t height = r.get<int32_t>(), width = r.get<int32_t>(), crop = r.get<int32_t>(),
                stride = r.get<int32_t>();
  if (height < 1 || width < 1 || crop < 16 || crop > kMaxCrop || stride < 1 || stride > crop ||
      int64_t{height} * width > limits::kMaxImagePixels)
    r.fail("bad crop grid");
  if (crop_grid_count(height, width, crop, stride) * crop * crop > kMaxRefineSessionPixels)
    r.fail("more crop pixels than a session may hold");
  try {
    t.grid = make_crop_grid(height, width, crop, stride);
  } catch (const Error&) {
    r.fail("bad crop grid");
  }
  if (r.count(0, t.grid.count(), "crop count") != t.grid.count()) r.fail("crop count does not match the grid");
  const uint64_t crop_pixels = static_cast<uint64_t>(crop) * static_cast<uint64_t>(crop);
  t.crops.resize(t.grid.count());
  t.points.resize(t.grid.count());
  for (size_t i = 0; i < t.grid.count(); ++i) {
    const uint32_t points = r.count(12, 1u << 20, "point count");
    for (uint32_t j = 0; j < points; ++j) {
      PointPrompt p;
      p.x = r.get<float>();
      p.y = r.get<float>();
      p.category = r.get<int32_t>();
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) r.fail("a point that is not a number");
      t.points[i].push_back(p);
    }
    infer::Segmentation& seg = t.crops[i];
    const int32_t h = r.get<int32_t>(), w = r.get<int32_t>();
    if (h != crop || w != crop) r.fail("a crop's result is not crop-sized");
    seg.instances = LabelMap(h, w);
    const uint32_t runs = r.count(8, crop_pixels, "run count");
    size_t filled = 0;
    int32_t most = 0, last = -1;
    for (uint32_t j = 0; j < runs; ++j) {
      const int32_t label = r.get<int32_t>();
      const uint32_t length = r.get<uint32_t>();
      // Runs are maximal (the writer's form), so a session has one encoding.
      if (label < 0 || label == last || length == 0 || length > seg.instances.data.size() - filled)
        r.fail("bad label run");
      last = label;
      std::fill_n(seg.instances.data.begin() + static_cast<std::ptrdiff_t>(filled), length, label);
      filled += length;
      most = std::max(most, label);
    }
    if (filled != seg.instances.data.size()) r.fail("label runs do not cover the crop");
    const uint32_t classes = r.count(4, crop_pixels, "class count");
    for (uint32_t j = 0; j < classes; ++j) seg.classes.push_back(r.get<int32_t>());
    const uint32_t scores = r.count(4, crop_pixels, "score count");
    for (uint32_t j = 0; j < scores; ++j) {
      seg.scores.push_back(r.get<float>());
      if (!(seg.scores.back() >= 0.0f && seg.scores.back() <= 1.0f)) r.fail("a score outside [0, 1]");
    }
    if (classes != static_cast<uint32_t>(most) || scores != static_cast<uint32_t>(most))
      r.fail("per-instance tables do not match the labels");
  }
  if (!r.done()) r.fail("trailing bytes");
  return s;
}

}  // namespace nucleisam::predict
