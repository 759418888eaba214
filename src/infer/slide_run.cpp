// Whole-slide segmentation: resampling plan, overview and tissue, tile ownership, and the
// streaming read -> segment -> post-process/write pipeline with its resume journal.
#include "nucleisam/infer/slide_run.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/magnification.h"
#include "nucleisam/infer/nucleus.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/infer/slide_stitch.h"
#include "nucleisam/io/geojson.h"
#include "nucleisam/io/tiled_tiff.h"
#include "nucleisam/log.h"
#include "nucleisam/output_path.h"
#include "nucleisam/progress.h"
#include "nucleisam/stain.h"

namespace fs = std::filesystem;

namespace nucleisam::infer {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// k x k block means of an RGB image (partial blocks at the right/bottom average what they have).
Image block_mean(const Image& in, int k) {
  if (k == 1) return in;
  const int w = (in.width + k - 1) / k, h = (in.height + k - 1) / k;
  Image out(h, w, 3);
  std::vector<uint32_t> sum(static_cast<size_t>(w) * 3), count(static_cast<size_t>(w));
  for (int by = 0; by < h; ++by) {
    std::fill(sum.begin(), sum.end(), 0u);
    std::fill(count.begin(), count.end(), 0u);
    for (int y = by * k; y < std::min(in.height, (by + 1) * k); ++y) {
      const uint8_t* row = in.row(y);
      for (int x = 0; x < in.width; ++x) {
        const int b = x / k;
        sum[3 * b] += row[3 * x];
        sum[3 * b + 1] += row[3 * x + 1];
        sum[3 * b + 2] += row[3 * x + 2];
        ++count[b];
      }
    }
    uint8_t* o = out.row(by);
    for (int b = 0; b < w; ++b)
      for (int c = 0; c < 3; ++c) o[3 * b + c] = static_cast<uint8_t>((sum[3 * b + c] + count[b] / 2) / count[b]);
  }
  return out;
}

// Level-0 coordinate of a level pixel.
int64_t level0(int64_t level_px, double level_downsample) {
  return static_cast<int64_t>(std::llround(static_cast<double>(level_px) * level_downsample));
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// `value` (6 significant digits) when `known`, else null.
std::string json_number_or_null(double value, bool known) {
  if (!known) return "null";
  std::ostringstream s;
  s.precision(6);
  s << value;
  return s.str();
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A queue with a capacity: the pipeline's memory bound. close() wakes everyone; push() on a closed
// queue drops the item and returns false, pop() returns nothing once closed and empty.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}
  bool push(T item) {
    std::unique_lock<std::mutex> lock(m_);
    not_full_.wait(lock, [&] { return closed_ || q_.size() < capacity_; });
    if (closed_) return false;
    q_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(m_);
    not_empty_.wait(lock, [&] { return closed_ || !q_.empty(); });
    if (q_.empty()) return std::nullopt;
    T item = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void close() {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  size_t capacity_;
  std::deque<T> q_;
  bool closed_ = false;
  std::mutex m_;
  std::condition_variable not_empty_, not_full_;
};

struct TileJob {
  int64_t index = 0;  // in the tissue-tile list
  TileWindow window;
  Image image;
  Segmentation segmentation;
};

// The state a journal line records after each finished tile: enough to cut the part files back
// to that point and go on.
struct JournalState {
  int64_t tiles_done = 0;  // tissue tiles finished, in order
  uint64_t geojson_bytes = 0, csv_bytes = 0;
  int64_t nuclei = 0;
  int64_t cut_nuclei = 0;     // written nuclei still cut by a window edge with no segmented tile beyond
  int64_t merged_nuclei = 0;  // written nuclei stitched from several tiles' pieces
  int64_t replay_from = 0;    // first tile whose seams are still pending: a resumed run segments it again
  uint64_t label_bytes = 0;   // the label runs part (0 when labels are not written)
};

std::string journal_line(const JournalState& s) {
  return "tile " + std::to_string(s.tiles_done) + " " + std::to_string(s.geojson_bytes) + " " +
         std::to_string(s.csv_bytes) + " " + std::to_string(s.nuclei) + " " + std::to_string(s.cut_nuclei) + " " +
         std::to_string(s.merged_nuclei) + " " + std::to_string(s.replay_from) + " " +
         std::to_string(s.label_bytes) + "\n";
}

// Reads a journal; nullopt when it is absent, written for other settings, or unreadable. A torn
// last line (killed mid-write) is ignored.
std::optional<JournalState> read_journal(const std::string& path, const std::string& fingerprint) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream lines(content);
  std::string line;
  if (!std::getline(lines, line) || line != fingerprint) return std::nullopt;
  JournalState state;
  size_t consumed = fingerprint.size() + 1;
  while (std::getline(lines, line)) {
    consumed += line.size() + 1;
    if (consumed > content.size()) break;  // no newline: torn
    std::istringstream f(line);
    std::string word;
    JournalState s;
    if (!(f >> word >> s.tiles_done >> s.geojson_bytes >> s.csv_bytes >> s.nuclei) || word != "tile") break;
    if (!(f >> s.cut_nuclei >> s.merged_nuclei >> s.replay_from >> s.label_bytes) || s.replay_from < 0 ||
        s.replay_from > s.tiles_done)
      break;
    state = s;
  }
  return state;
}

void flush_or_throw(std::FILE* f, const std::string& what) {
  if (std::fflush(f) != 0) throw IoError(what + ": cannot write (disk full?)");
}

void write_or_throw(std::FILE* f, const std::string& bytes, const std::string& what) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
    throw IoError(what + ": cannot write (disk full?)");
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Opens a part file for appending after cutting it to `bytes` (0: created empty).
FilePtr open_part(const std::string& path, uint64_t bytes) {
  std::error_code ec;
  if (bytes == 0) {
    FilePtr f(std::fopen(path.c_str(), "wb"));
    if (!f) throw IoError(path + ": cannot create");
    return f;
  }
  fs::resize_file(path, bytes, ec);
  if (ec) throw IoError(path + ": cannot truncate for resuming (" + ec.message() + ")");
  FilePtr f(std::fopen(path.c_str(), "ab"));
  if (!f) throw IoError(path + ": cannot open for resuming");
  return f;
}

uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  auto s = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(s);
}

double ring_length(const std::vector<ContourPoint>& ring) {
  double len = 0;
  for (size_t i = 0; i + 1 < ring.size(); ++i)
    len += std::hypot(static_cast<double>(ring[i + 1].x) - ring[i].x, static_cast<double>(ring[i + 1].y) - ring[i].y);
  return len;
}

// One label run in the runs part: nucleus id, row, columns [x0, x1) (processing grid).
struct LabelRun {
  int32_t id, y, x0, x1;
};

// The instance label pyramid of a slide from its runs part (in the order nuclei were written):
// the runs are first sorted into one scratch file per band of kTileRows rows (at most 256 files
// open at a time), then each level is filled one band at a time (nearest sampling: level pixel
// (x, y) is grid pixel (x * ds, y * ds)). Memory: one band of the widest level.
void write_label_pyramid(const std::string& runs_path, const std::string& tif_path, int64_t width, int64_t height,
                         const std::string& scratch_prefix) {
  constexpr int kTileRows = 256;
  const int64_t bands = (height + kTileRows - 1) / kTileRows;
  auto band_path = [&](int64_t b) { return scratch_prefix + std::to_string(b); };
  for (int64_t first = 0; first < bands; first += 256) {
    const int64_t last = std::min(bands, first + 256);
    std::vector<FilePtr> files;
    for (int64_t b = first; b < last; ++b) {
      files.emplace_back(std::fopen(band_path(b).c_str(), "wb"));
      if (!files.back()) throw IoError(band_path(b) + ": cannot create");
    }
    FilePtr in(std::fopen(runs_path.c_str(), "rb"));
    if (!in) throw IoError(runs_path + ": cannot read");
    std::vector<LabelRun> chunk(1 << 16);
    size_t n = 0;
    while ((n = std::fread(chunk.data(), sizeof(LabelRun), chunk.size(), in.get())) > 0)
      for (size_t k = 0; k < n; ++k) {
        const int64_t b = chunk[k].y / kTileRows;
        if (b >= first && b < last && std::fwrite(&chunk[k], sizeof(LabelRun), 1, files[b - first].get()) != 1)
          throw IoError(band_path(b) + ": cannot write (disk full?)");
      }
    for (auto& f : files)
      if (std::fclose(f.release()) != 0) throw IoError(scratch_prefix + "*: cannot write (disk full?)");
  }
  std::vector<int> downsamples = {1};
  while (std::max(width, height) / (downsamples.back() * 4) >= 128) downsamples.push_back(downsamples.back() * 4);
  int cached_ds = 0;
  int64_t cached_band = -1;
  LabelMap band;                  // the cached band; not made when no run falls in it
  std::vector<char> column_used;  // per tile column of the band: some run falls in it
  io::write_tiled_label_tiff(tif_path, width, height, kTileRows, downsamples,
                             [&](int ds, int64_t x, int64_t y, int w, int h) {
    const int64_t lb = y / kTileRows;
    if (ds != cached_ds || lb != cached_band) {
      const int64_t lw = std::max<int64_t>(1, width / ds), lh = std::max<int64_t>(1, height / ds);
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, lh - lb * kTileRows));
      band = LabelMap();
      column_used.assign(static_cast<size_t>((lw + kTileRows - 1) / kTileRows), 0);
      const int64_t y0 = lb * kTileRows * ds, y1 = (lb * kTileRows + rows) * ds;  // grid rows covered
      std::vector<LabelRun> chunk(1 << 16);
      for (int64_t b = y0 / kTileRows; b <= (y1 - 1) / kTileRows && b < bands; ++b) {
        FilePtr in(std::fopen(band_path(b).c_str(), "rb"));
        if (!in) throw IoError(band_path(b) + ": cannot read");
        size_t n = 0;
        while ((n = std::fread(chunk.data(), sizeof(LabelRun), chunk.size(), in.get())) > 0)
          for (size_t k = 0; k < n; ++k) {
            const LabelRun& r = chunk[k];
            if (r.y % ds != 0 || r.y < y0 || r.y >= y1) continue;
            const int64_t first = (static_cast<int64_t>(r.x0) + ds - 1) / ds;
            if (first * ds >= r.x1 || first >= lw) continue;  // no level pixel in the run
            if (band.data.empty()) band = LabelMap(rows, static_cast<int>(lw));
            int32_t* row = band.row(static_cast<int>(r.y / ds - lb * kTileRows));
            int64_t xl = first;
            for (; xl * ds < r.x1 && xl < lw; ++xl) row[xl] = r.id;
            for (int64_t c = first / kTileRows; c <= (xl - 1) / kTileRows; ++c) column_used[c] = 1;
          }
      }
      cached_ds = ds;
      cached_band = lb;
    }
    if (!column_used[x / kTileRows]) return LabelMap();  // glass: all zeros
    LabelMap tile(h, w);
    const int r0 = static_cast<int>(y - lb * kTileRows);
    for (int r = 0; r < h; ++r) std::copy(band.row(r0 + r) + x, band.row(r0 + r) + x + w, tile.row(r));
    return tile;
  });
  std::error_code ec;
  for (int64_t b = 0; b < bands; ++b) fs::remove(band_path(b), ec);
}

const char* kGeojsonHeader = "{\"type\":\"FeatureCollection\",\"features\":[\n";
const char* kGeojsonFooter = "\n]}\n";

}  // namespace

SlideResampling plan_slide_resampling(const std::vector<io::SlideLevel>& levels, double slide_mpp,
                                      double target_mpp) {
  if (!(slide_mpp > 0)) throw OptionError("slide resolution must be a positive number of microns per pixel");
  if (levels.empty()) throw OptionError("slide has no levels");
  SlideResampling r;
  r.slide_mpp = slide_mpp;
  const double want = target_mpp > 0 ? target_mpp / slide_mpp : 1.0;
  auto snap = [](double f) {
    const double whole = std::round(f);
    return whole >= 1 && std::abs(f - whole) <= 0.03 * f ? whole : f;
  };
  r.level = 0;
  for (size_t i = 0; i < levels.size(); ++i)
    if (levels[i].downsample <= want * 1.03) r.level = static_cast<int>(i);
  r.level_downsample = levels[r.level].downsample;
  r.factor = snap(want / r.level_downsample);
  r.integer_factor = r.factor == std::round(r.factor);
  r.downsample = r.level_downsample * r.factor;
  r.mpp = slide_mpp * r.downsample;
  r.width = std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(levels[0].width) / r.downsample)));
  r.height = std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(levels[0].height) / r.downsample)));
  return r;
}

Image read_processing_window(const io::Slide& slide, const SlideResampling& r, int64_t x, int64_t y, int w,
                             int h) {
  if (r.integer_factor) {
    const int k = static_cast<int>(r.factor);
    Image level = slide.read_region(r.level, level0(x * k, r.level_downsample), level0(y * k, r.level_downsample),
                                    w * k, h * k);
    return block_mean(level, k);
  }
  // Block means by the whole part of the factor on a grid aligned to the level (so every tile
  // sees the same values), then bilinear for the rest (or for upsampling when factor < 1).
  const int k = std::max(1, static_cast<int>(std::floor(r.factor)));
  const double rest = r.factor / k;  // block pixels per processing pixel
  const int64_t b0x = static_cast<int64_t>(std::floor(static_cast<double>(x) * rest)) - 1;
  const int64_t b0y = static_cast<int64_t>(std::floor(static_cast<double>(y) * rest)) - 1;
  const int bw = static_cast<int>(std::ceil(static_cast<double>(x + w) * rest)) + 2 - static_cast<int>(b0x);
  const int bh = static_cast<int>(std::ceil(static_cast<double>(y + h) * rest)) + 2 - static_cast<int>(b0y);
  Image level = slide.read_region(r.level, level0(b0x * k, r.level_downsample), level0(b0y * k, r.level_downsample),
                                  bw * k, bh * k);
  Image blocks = block_mean(level, k);
  cv::Mat src(blocks.height, blocks.width, CV_8UC3, blocks.data.data());
  Image out(h, w, 3);
  cv::Mat dst(h, w, CV_8UC3, out.data.data());
  // Processing pixel u (centre u + 0.5) sits at block coordinate (u + 0.5) * rest - 0.5.
  cv::Matx23d m(rest, 0, (static_cast<double>(x) + 0.5) * rest - 0.5 - static_cast<double>(b0x), 0, rest,
                (static_cast<double>(y) + 0.5) * rest - 0.5 - static_cast<double>(b0y));
  cv::warpAffine(src, dst, m, dst.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
  return out;
}

Image read_slide_overview(const io::Slide& slide, int max_side, double* downsample) {
  const auto& levels = slide.levels();
  const double want = std::max(1.0, static_cast<double>(std::max(slide.width(), slide.height())) / max_side);
  int level = 0;
  for (size_t i = 0; i < levels.size(); ++i)
    if (levels[i].downsample <= want) level = static_cast<int>(i);
  const double lds = levels[level].downsample;
  const int k = std::max(1, static_cast<int>(std::ceil(want / lds - 1e-9)));
  const int64_t lw = levels[level].width, lh = levels[level].height;
  const int ow = static_cast<int>((lw + k - 1) / k), oh = static_cast<int>((lh + k - 1) / k);
  Image overview(oh, ow, 3);
  // Blocks of at most ~4096 x 4096 level pixels, aligned to k.
  const int block = std::max(1, 4096 / k);
  for (int by = 0; by < oh; by += block)
    for (int bx = 0; bx < ow; bx += block) {
      const int bw = std::min(block, ow - bx), bh = std::min(block, oh - by);
      const int64_t lx = static_cast<int64_t>(bx) * k, ly = static_cast<int64_t>(by) * k;
      const int rw = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(bw) * k, lw - lx));
      const int rh = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(bh) * k, lh - ly));
      Image part = block_mean(slide.read_region(level, level0(lx, lds), level0(ly, lds), rw, rh), k);
      for (int y = 0; y < std::min(bh, part.height); ++y)
        std::copy(part.row(y), part.row(y) + 3 * std::min(bw, part.width), overview.row(by + y) + 3 * bx);
    }
  if (downsample) *downsample = lds * k;
  return overview;
}

Mask detect_tissue(const Image& overview) {
  float od[256];
  for (int v = 0; v < 256; ++v) od[v] = -std::log10((v + 1) / 256.0f);
  cv::Mat1b mask(overview.height, overview.width, uchar(0));
  for (int y = 0; y < overview.height; ++y) {
    const uint8_t* p = overview.row(y);
    for (int x = 0; x < overview.width; ++x, p += 3) {
      const float density = od[p[0]] + od[p[1]] + od[p[2]];
      const int spread = std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]});
      if (density > 0.15f && spread > 10) mask(y, x) = 255;
    }
  }
  const cv::Mat cross = cv::getStructuringElement(cv::MORPH_CROSS, {3, 3});
  cv::morphologyEx(mask, mask, cv::MORPH_OPEN, cross);
  cv::dilate(mask, mask, cv::getStructuringElement(cv::MORPH_RECT, {3, 3}));
  Mask out(overview.height, overview.width);
  std::copy(mask.begin(), mask.end(), out.data.begin());
  return out;
}

namespace {

// Sutherland-Hodgman: the part of polygon `ring` inside the box [x0, x1] x [y0, y1]. Non-finite
// vertices are dropped first.
std::vector<cv::Point2d> clip_to_box(std::vector<cv::Point2d> ring, double x0, double y0, double x1, double y1) {
  ring.erase(std::remove_if(ring.begin(), ring.end(),
                            [](const cv::Point2d& p) { return !std::isfinite(p.x) || !std::isfinite(p.y); }),
             ring.end());
  // One half-plane at a time: keep where inside(p) holds; edges crossing it end on the boundary.
  auto clip = [&](auto inside, auto cross) {
    std::vector<cv::Point2d> out;
    for (size_t i = 0; i < ring.size(); ++i) {
      const cv::Point2d& a = ring[(i + ring.size() - 1) % ring.size()];
      const cv::Point2d& b = ring[i];
      if (inside(b)) {
        if (!inside(a)) out.push_back(cross(a, b));
        out.push_back(b);
      } else if (inside(a)) {
        out.push_back(cross(a, b));
      }
    }
    ring = std::move(out);
  };
  auto at_x = [](double x) {
    return [x](const cv::Point2d& a, const cv::Point2d& b) {
      return cv::Point2d(x, a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x));
    };
  };
  auto at_y = [](double y) {
    return [y](const cv::Point2d& a, const cv::Point2d& b) {
      return cv::Point2d(a.x + (b.x - a.x) * (y - a.y) / (b.y - a.y), y);
    };
  };
  clip([&](const cv::Point2d& p) { return p.x >= x0; }, at_x(x0));
  clip([&](const cv::Point2d& p) { return p.x <= x1; }, at_x(x1));
  clip([&](const cv::Point2d& p) { return p.y >= y0; }, at_y(y0));
  clip([&](const cv::Point2d& p) { return p.y <= y1; }, at_y(y1));
  return ring;
}

}  // namespace

Mask read_tissue_mask(const std::string& path, int width, int height, double downsample) {
  cv::Mat1b mask(height, width, uchar(0));
  const std::string ext = io::lower_extension(path);
  if (ext == ".geojson" || ext == ".json") {
    for (const auto& polygon : io::read_geojson_polygons(path)) {
      std::vector<std::vector<cv::Point>> rings;
      for (const auto& ring : polygon) {
        std::vector<cv::Point2d> scaled;
        for (const auto& p : ring) scaled.push_back({p.x / downsample, p.y / downsample});
        // Clipped to just outside the mask, so that vertices far away (or absurd ones, 1e10) cost
        // nothing and cannot overflow int, while the part over the mask keeps its exact shape.
        const std::vector<cv::Point2d> clipped = clip_to_box(scaled, -2.0, -2.0, width + 2.0, height + 2.0);
        if (clipped.size() < 3) continue;
        std::vector<cv::Point> pts;
        for (const auto& p : clipped) pts.push_back({static_cast<int>(std::lround(p.x)), static_cast<int>(std::lround(p.y))});
        rings.push_back(std::move(pts));
      }
      if (rings.empty()) continue;
      try {
        cv::fillPoly(mask, rings, cv::Scalar(255));
      } catch (const cv::Exception& e) {
        throw IoError(path + ": cannot draw its polygons as a tissue mask (" + e.err + ")");
      }
    }
  } else {
    Image img = io::read_image(path);
    cv::Mat1b src(img.height, img.width, uchar(0));
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x)
        if (img.at(y, x, 0) || img.at(y, x, 1) || img.at(y, x, 2)) src(y, x) = 255;
    cv::resize(src, mask, mask.size(), 0, 0, cv::INTER_NEAREST);
  }
  if (cv::countNonZero(mask) == 0) throw IoError(path + ": the tissue mask marks no tissue on this slide");
  Mask out(height, width);
  std::copy(mask.begin(), mask.end(), out.data.begin());
  return out;
}

std::vector<std::string> slide_output_paths(const std::string& out_dir, const std::string& stem,
                                            const SlideRunOptions& options) {
  std::vector<std::string> paths;
  if (options.geojson) paths.push_back(stem_output_path(out_dir, stem, ".geojson"));
  if (options.csv) paths.push_back(stem_output_path(out_dir, stem, "_nuclei.csv"));
  paths.push_back(stem_output_path(out_dir, stem, "_summary.json"));
  if (options.thumbnail) paths.push_back(stem_output_path(out_dir, stem, "_thumbnail.png"));
  if (options.labels) paths.push_back(stem_output_path(out_dir, stem, "_labels.tif"));
  return paths;
}

namespace {

// The level-0 resolution of a slide that records none: judged from the nuclei of up to
// kJudgedRegions regions of kJudgedRegion x kJudgedRegion level-0 pixels spread evenly over its
// tissue (`tissue`, on the overview grid of `overview_ds` level-0 pixels per pixel; in its raster
// order: deterministic, so a resumed run judges the same), or the segmenter's with
// estimate_unknown_mpp off. IoError (give --mpp) when neither can be had.
constexpr int kJudgedRegions = 4;
constexpr int kJudgedRegion = 1024;

double unknown_slide_resolution(const io::Slide& slide, const std::string& slide_path, const Mask& tissue,
                                double overview_ds, Segmenter& segmenter, const SlideRunOptions& options) {
  const double method_mpp = segmenter.microns_per_pixel();
  const std::string refusal = slide_path + ": the slide does not record its resolution (microns per pixel)";
  if (method_mpp <= 0)
    throw IoError(refusal + " and " + segmenter.name() +
                  " does not say which it expects; give it with --mpp");
  if (!options.estimate_unknown_mpp) {
    log::warn(slide_path, ": the slide does not record its resolution; taken to be at ", method_mpp,
              " um/px, the resolution of ", segmenter.name(), " (--unknown-mpp model; --mpp gives it)");
    return method_mpp;
  }
  std::vector<std::pair<int, int>> at;  // tissue pixels of the overview, x and y
  for (int y = 0; y < tissue.height; ++y)
    for (int x = 0; x < tissue.width; ++x)
      if (tissue.at(y, x)) at.emplace_back(x, y);
  if (at.empty()) throw IoError(refusal + " and it has no tissue to judge it from; give it with --mpp");
  const size_t n = std::min<size_t>(kJudgedRegions, at.size());
  const int w = static_cast<int>(std::min<int64_t>(kJudgedRegion, slide.width()));
  const int h = static_cast<int>(std::min<int64_t>(kJudgedRegion, slide.height()));
  std::vector<InputImage> regions;
  std::set<std::pair<int64_t, int64_t>> corners;  // a small slide gives the same region more than once
  for (size_t i = 0; i < n; ++i) {
    const auto [ox, oy] = at[(2 * i + 1) * at.size() / (2 * n)];
    const int64_t x0 =
        std::clamp<int64_t>(static_cast<int64_t>((ox + 0.5) * overview_ds) - w / 2, 0, slide.width() - w);
    const int64_t y0 =
        std::clamp<int64_t>(static_cast<int64_t>((oy + 0.5) * overview_ds) - h / 2, 0, slide.height() - h);
    if (!corners.emplace(x0, y0).second) continue;
    regions.push_back({slide_path + " (region at " + std::to_string(x0) + ", " + std::to_string(y0) + ")", "",
                       [&slide, x0, y0, w, h] { return slide.read_region(0, x0, y0, w, h); }, 0});
  }
  log::info(slide_path, ": the slide does not record its resolution; judging it from the nuclei of ",
            regions.size(), regions.size() == 1 ? " tissue region" : " tissue regions");
  const ResolutionJudgement j =
      judge_resolution(regions, segmenter, options.stains, "tissue regions of " + slide_path);
  if (!j.judged)
    throw IoError(refusal + " and its nuclei could not tell it (" + j.evidence + "); give it with --mpp");
  log::info(slide_path, ": taken to be at ", j.mpp, " um/px",
            j.mpp == method_mpp ? ", the resolution of " + segmenter.name()
                                : std::string(j.mpp > method_mpp ? " (half" : " (twice") +
                                      " the magnification " + segmenter.name() + " was made for)",
            ", as the nuclei of its tissue say (", j.evidence, "; --mpp gives it)");
  return j.mpp;
}

}  // namespace

SlideReport run_slide(const std::string& slide_path, Segmenter& segmenter, const SlideRunOptions& options,
                      const std::string& output_stem_override) {
  const auto wall_start = Clock::now();
  SlideReport report;
  plan_tiles(1, 1, options.tile_size, options.tile_overlap);  // bad sizes: OptionError before any work
  const std::string stem = output_stem_override.empty() ? output_stem(slide_path) : output_stem_override;
  const std::string base = stem_output_path(options.out_dir, stem, "");
  if (const size_t slash = stem.rfind('/'); slash != std::string::npos)  // a mirrored subfolder (--recursive)
    remove_stale_temporaries(stem_output_path(options.out_dir, stem.substr(0, slash), ""));
  const std::vector<std::string> outputs = slide_output_paths(options.out_dir, stem, options);
  const std::string journal_path = stem_output_path(options.out_dir, stem, ".journal", true);
  const std::string geojson_part = stem_output_path(options.out_dir, stem, ".geojson.part", true);
  const std::string csv_part = stem_output_path(options.out_dir, stem, "_nuclei.csv.part", true);
  const std::string labels_part = stem_output_path(options.out_dir, stem, "_labels.runs.part", true);
  std::error_code ec;
  if (!options.overwrite && !fs::exists(journal_path, ec) &&
      std::all_of(outputs.begin(), outputs.end(), [](const std::string& p) { return fs::exists(p); })) {
    log::info(slide_path, ": outputs already in ", options.out_dir, ", skipped (--overwrite redoes them)");
    report.skipped = true;
    return report;
  }

  io::Slide slide(slide_path);
  // Tissue on the overview grid (it needs no resolution; a slide that records none is judged on it).
  const auto t_overview = Clock::now();
  double overview_ds = 1;
  Image overview = read_slide_overview(slide, 2048, &overview_ds);
  Mask tissue;
  if (options.tissue == TissueSource::mask)
    tissue = read_tissue_mask(options.tissue_mask, overview.width, overview.height, overview_ds);
  else if (options.tissue == TissueSource::detect)
    tissue = detect_tissue(overview);
  else
    tissue = Mask(overview.height, overview.width, 1, 255);
  report.times.read += since(t_overview);

  double slide_mpp = options.mpp;
  std::string mpp_source = options.mpp > 0 ? "option" : "file";  // the summary's (infer/run_summary.h)
  if (slide_mpp <= 0 && (slide.mpp_x() <= 0 || slide.mpp_y() <= 0)) {
    // OpenSlide knows no resolution (a generic tiled TIFF): the file's own record, as for images
    // (OME-XML PhysicalSize of QuPath / Bio-Formats exports, TIFF resolution tags).
    slide_mpp = io::read_image_mpp(slide_path);
    if (slide_mpp > 0) {
      log::info(slide_path, ": ", slide_mpp, " um/px, as the file's TIFF tags or OME-XML record");
    } else {
      slide_mpp = unknown_slide_resolution(slide, slide_path, tissue, overview_ds, segmenter, options);
      mpp_source = options.estimate_unknown_mpp ? "nuclei" : "model";
    }
  }
  if (slide_mpp <= 0) {
    if (std::abs(slide.mpp_x() - slide.mpp_y()) > 0.01 * slide.mpp_x())
      log::warn(slide_path, ": pixels are not square (", slide.mpp_x(), " x ", slide.mpp_y(),
                " um); using their mean");
    slide_mpp = 0.5 * (slide.mpp_x() + slide.mpp_y());
  }
  const double target_mpp = segmenter.microns_per_pixel();
  if (target_mpp <= 0)
    log::warn(slide_path, ": ", segmenter.name(), " does not say which resolution it expects; segmenting level 0 as is");
  const SlideResampling rs = plan_slide_resampling(slide.levels(), slide_mpp, target_mpp);
  report.resampling = rs;
  if (rs.width > (int64_t{1} << 30) || rs.height > (int64_t{1} << 30))
    throw IoError(slide_path + ": slide too large for the processing grid");
  log::info(slide_path, ": ", slide.width(), "x", slide.height(), " at ", slide_mpp, " um/px (", slide.vendor(),
            "); segmenting level ", rs.level, " x", 1 / rs.factor, " = ", rs.mpp, " um/px, ", rs.width, "x",
            rs.height, " px");

  int64_t tissue_pixels = 0;
  for (uint8_t v : tissue.data) tissue_pixels += v != 0;
  const double overview_um = overview_ds * slide_mpp;
  report.tissue_mm2 = static_cast<double>(tissue_pixels) * overview_um * overview_um / 1e6;

  // The tile plan and the tiles with tissue in their owned region.
  const std::vector<TileWindow> plan =
      plan_tiles(static_cast<int>(rs.height), static_cast<int>(rs.width), options.tile_size, options.tile_overlap);
  report.tiles = static_cast<int64_t>(plan.size());
  std::vector<TileWindow> todo;
  std::vector<size_t> todo_in_plan;  // plan index of each tissue tile, for the seam stitching
  const double to_overview = rs.downsample / overview_ds;
  for (const TileWindow& t : plan) {
    const int x0 = std::max(0, static_cast<int>(std::floor(t.own_x0 * to_overview)) - 1);
    const int y0 = std::max(0, static_cast<int>(std::floor(t.own_y0 * to_overview)) - 1);
    const int x1 = std::min(tissue.width, static_cast<int>(std::ceil(t.own_x1 * to_overview)) + 1);
    const int y1 = std::min(tissue.height, static_cast<int>(std::ceil(t.own_y1 * to_overview)) + 1);
    bool any = false;
    for (int y = y0; y < y1 && !any; ++y)
      for (int x = x0; x < x1 && !any; ++x) any = tissue.at(y, x) != 0;
    if (any) {
      todo.push_back(t);
      todo_in_plan.push_back(static_cast<size_t>(&t - plan.data()));
    }
  }
  report.tissue_tiles = static_cast<int64_t>(todo.size());
  if (todo.empty())
    log::warn(slide_path, ": no tissue found; writing empty outputs (--process-all segments every tile)");

  // Stains: one estimate for the whole slide, from up to 16 tissue tiles at the centres of equal runs
  // of the tile order (deterministic, so a resumed run finds the same map).
  StainMap stain_map;
  if (options.stains.mode != StainNormalization::Mode::off && !todo.empty()) {
    const auto t0 = Clock::now();
    const size_t n = std::min<size_t>(16, todo.size());
    std::vector<Image> samples;
    for (size_t i = 0; i < n; ++i) {
      const TileWindow& w = todo[i * todo.size() / n + todo.size() / (2 * n)];
      samples.push_back(read_processing_window(slide, rs, w.x, w.y, w.width, w.height));
    }
    std::vector<const Image*> views;
    for (const Image& sample : samples) views.push_back(&sample);
    const StainEstimate estimate = estimate_stains(views);
    stain_map = plan_stain_map(options.stains, estimate);
    report.stains = stain_map.note;
    if (estimate.ok) log::info(slide_path, ": ", stain_map.note);
    else log::warn(slide_path, ": ", stain_map.note);
    report.times.read += since(t0);
  }

  // Resume: the journal's first line says which run it belongs to.
  std::ostringstream fp;
  fp.precision(10);
  fp << "nucleisam-slide-journal 2 " << fs::path(slide_path).filename().string() << ' ' << slide.width() << 'x'
     << slide.height() << " size " << file_size_or_zero(slide_path) << " method " << segmenter.name() << " level "
     << rs.level << " downsample " << rs.downsample << " tile " << options.tile_size << " overlap "
     << options.tile_overlap << " tissue " << static_cast<int>(options.tissue) << ' ' << options.tissue_mask
     << " tiles " << todo.size() << " mpp " << slide_mpp << " labels " << options.labels << " stains";
  for (const auto& row : stain_map.a)
    for (double v : row) fp << ' ' << v;
  const std::string fingerprint = fp.str();
  ensure_parent_dir(journal_path);
  JournalState state;
  if (!options.overwrite) {
    if (auto j = read_journal(journal_path, fingerprint)) {
      if (file_size_or_zero(geojson_part) >= j->geojson_bytes && file_size_or_zero(csv_part) >= j->csv_bytes &&
          file_size_or_zero(labels_part) >= j->label_bytes &&
          j->tiles_done <= static_cast<int64_t>(todo.size())) {
        state = *j;
        log::info(slide_path, ": resuming after ", state.tiles_done, " of ", todo.size(), " tissue tiles (",
                  state.nuclei, " nuclei so far; tiles ", state.replay_from, "-", state.tiles_done - 1,
                  " are segmented again for the seams they share with the rest)");
      }
    } else if (fs::exists(journal_path, ec)) {
      log::warn(slide_path, ": the journal in ", options.out_dir, " is from other settings; starting over");
    }
  }
  report.resumed_tiles = state.tiles_done;
  report.replayed_tiles = state.tiles_done - state.replay_from;
  // Tiles before resume_at were written by an earlier run; those from replay_from on are segmented
  // again only to rebuild the stitcher's pending seams, and their nuclei are not written twice.
  const int64_t resume_at = state.tiles_done;
  SeamStitcher stitcher(plan, todo_in_plan, rs.width, rs.height, options.labels);
  FilePtr geo = open_part(geojson_part, state.geojson_bytes);
  FilePtr csv = open_part(csv_part, state.csv_bytes);
  FilePtr labels = options.labels ? open_part(labels_part, state.label_bytes) : FilePtr();
  if (state.tiles_done == 0) {
    write_or_throw(geo.get(), kGeojsonHeader, geojson_part);
    write_or_throw(csv.get(), std::string(kSlideNucleusHeader) + "\n", csv_part);
    flush_or_throw(geo.get(), geojson_part);
    flush_or_throw(csv.get(), csv_part);
    state.geojson_bytes = file_size_or_zero(geojson_part);
    state.csv_bytes = file_size_or_zero(csv_part);
    std::ofstream j(journal_path, std::ios::binary | std::ios::trunc);
    j << fingerprint << '\n' << journal_line(state);
    if (!j.flush()) throw IoError(journal_path + ": cannot write (disk full?)");
  }
  std::ofstream journal(journal_path, std::ios::binary | std::ios::app);
  if (!journal) throw IoError(journal_path + ": cannot open");

  // The pipeline. Stage times are summed per stage (they overlap in wall time).
  Progress progress(stem, static_cast<int64_t>(todo.size()), "tile");
  progress.set(state.tiles_done);
  BoundedQueue<TileJob> read_q(options.queue_depth), post_q(options.queue_depth);
  std::mutex error_mutex;
  std::exception_ptr error;
  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = e;
    }
    read_q.close();
    post_q.close();
  };
  std::atomic<double> t_read{0}, t_pre{0};
  std::thread reader([&] {
    try {
      for (size_t i = static_cast<size_t>(state.replay_from); i < todo.size(); ++i) {
        TileJob job;
        job.index = static_cast<int64_t>(i);
        job.window = todo[i];
        const auto t0 = Clock::now();
        // Read and resample in one call; the split is measured as the raw read below.
        const TileWindow& w = job.window;
        if (rs.integer_factor && rs.factor == 1) {
          job.image = slide.read_region(rs.level, level0(w.x, rs.level_downsample), level0(w.y, rs.level_downsample),
                                        w.width, w.height);
          t_read = t_read + since(t0);
        } else {
          const int k = static_cast<int>(rs.factor);
          const auto t1 = Clock::now();
          if (rs.integer_factor) {
            Image level = slide.read_region(rs.level, level0(static_cast<int64_t>(w.x) * k, rs.level_downsample),
                                            level0(static_cast<int64_t>(w.y) * k, rs.level_downsample),
                                            w.width * k, w.height * k);
            t_read = t_read + since(t1);
            const auto t2 = Clock::now();
            job.image = block_mean(level, k);
            t_pre = t_pre + since(t2);
          } else {
            job.image = read_processing_window(slide, rs, w.x, w.y, w.width, w.height);
            t_read = t_read + since(t1);  // read and bilinear together
          }
        }
        if (!stain_map.identity) {
          const auto t3 = Clock::now();
          job.image = apply_stain_map(stain_map, job.image);
          t_pre = t_pre + since(t3);
        }
        if (!read_q.push(std::move(job))) return;
      }
      read_q.close();
    } catch (...) {
      fail(std::current_exception());
    }
  });

  std::atomic<double> t_post{0}, t_write{0};
  std::map<std::string, int64_t> per_class;
  std::thread writer([&] {
    try {
      const double mpp = rs.mpp, d = rs.downsample;
      while (auto job = post_q.pop()) {
        const auto t0 = Clock::now();
        std::vector<StitchedNucleus> done = stitcher.add(job->index, job->segmentation);
        job->segmentation = Segmentation();
        if (job->index < resume_at) {  // replayed: already written
          t_post = t_post + since(t0);
          continue;
        }
        std::string geo_text, csv_text_out, label_runs;
        for (StitchedNucleus& sn : done) {
          Nucleus& n = sn.nucleus;
          state.cut_nuclei += sn.cut;
          state.merged_nuclei += sn.merged;
          n.id = static_cast<int>(++state.nuclei);
          for (const PixelRun& r : sn.runs) {
            const LabelRun run{n.id, static_cast<int32_t>(r.y), static_cast<int32_t>(r.x0), static_cast<int32_t>(r.x1)};
            label_runs.append(reinterpret_cast<const char*>(&run), sizeof run);
          }
          const double area_um2 = static_cast<double>(n.area) * mpp * mpp;
          const double perimeter_um = ring_length(n.polygon) * mpp;
          for (auto& p : n.polygon) {
            p.x = static_cast<float>(p.x * d);
            p.y = static_cast<float>(p.y * d);
          }
          const double cx = n.centroid_x * d, cy = n.centroid_y * d;
          if (state.nuclei > 1) geo_text += ",\n";
          geo_text += io::qupath_feature(
              n, {{"id", n.id}, {"Area um^2", area_um2}, {"Perimeter um", perimeter_um}, {"Score", n.score}});
          csv_text_out += std::to_string(n.id) + "," + std::to_string(n.class_id) + "," + csv_text(n.class_name) +
                          "," + format_fixed(cx, 2) + "," + format_fixed(cy, 2) + "," +
                          format_fixed(cx * slide_mpp, 2) + "," + format_fixed(cy * slide_mpp, 2) + "," +
                          format_fixed(area_um2, 2) + "," + format_fixed(perimeter_um, 2) + "," +
                          format_fixed(n.score, 4) + "\n";
        }
        t_post = t_post + since(t0);
        const auto t1 = Clock::now();
        write_or_throw(geo.get(), geo_text, geojson_part);
        write_or_throw(csv.get(), csv_text_out, csv_part);
        flush_or_throw(geo.get(), geojson_part);
        flush_or_throw(csv.get(), csv_part);
        if (labels) {
          write_or_throw(labels.get(), label_runs, labels_part);
          flush_or_throw(labels.get(), labels_part);
          state.label_bytes += label_runs.size();
        }
        state.geojson_bytes += geo_text.size();
        state.csv_bytes += csv_text_out.size();
        state.tiles_done = job->index + 1;
        state.replay_from = stitcher.earliest_held();
        journal << journal_line(state);
        if (!journal.flush()) throw IoError(journal_path + ": cannot write (disk full?)");
        t_write = t_write + since(t1);
        progress.set_note(std::to_string(state.nuclei) + " nuclei");
        progress.advance();
        if (options.stop_after_tiles >= 0 && state.tiles_done - report.resumed_tiles >= options.stop_after_tiles)
          throw IoError(slide_path + ": stopped after " + std::to_string(options.stop_after_tiles) +
                        " tiles (test interruption)");
      }
    } catch (...) {
      fail(std::current_exception());
    }
  });

  double t_model = 0;
  try {
    while (auto job = read_q.pop()) {
      const auto t0 = Clock::now();
      job->segmentation = segmenter.segment(job->image, slide_path + " (tile at " + std::to_string(job->window.x) +
                                                            "," + std::to_string(job->window.y) + ")");
      t_model += since(t0);
      job->image = Image();
      if (!post_q.push(std::move(*job))) break;
    }
    post_q.close();
  } catch (...) {
    fail(std::current_exception());
  }
  reader.join();
  writer.join();
  if (error) std::rethrow_exception(error);
  progress.finish();
  report.times.read += t_read;
  report.times.preprocess = t_pre;
  report.times.model = t_model;
  report.times.postprocess = t_post;
  report.times.write = t_write;
  report.cut_nuclei = state.cut_nuclei;
  report.merged_nuclei = state.merged_nuclei;
  report.nuclei = state.nuclei;
  if (report.cut_nuclei > 0)
    log::info(slide_path, ": ", report.cut_nuclei, " nuclei end at the edge of a tile with no segmented tile beyond ",
              "(no tissue there) and may be cut");

  // Finish: footer, summary and thumbnail from the CSV (so a resumed run draws exactly the same),
  // then rename the parts into place, then drop the journal.
  const auto t_fin = Clock::now();
  write_or_throw(geo.get(), kGeojsonFooter, geojson_part);
  flush_or_throw(geo.get(), geojson_part);
  geo.reset();
  csv.reset();
  if (labels) {
    if (std::fclose(labels.release()) != 0) throw IoError(labels_part + ": cannot write (disk full?)");
    write_label_pyramid(labels_part, base + "_labels.tif", rs.width, rs.height,
                        stem_output_path(options.out_dir, stem, "_labels.band", true));
  }
  std::vector<double> areas_um2;  // of every nucleus, for the summary's sizes
  double score_sum = 0;
  {
    std::ifstream in(csv_part, std::ios::binary);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // id,class,class_name,cx,cy,... : class_name may be quoted; take the fields around it.
      const size_t c1 = line.find(','), c2 = line.find(',', c1 + 1);
      std::string name;
      size_t after = c2;
      if (c2 != std::string::npos && line[c2 + 1] == '"') {
        size_t q = c2 + 2;
        for (; q < line.size(); ++q) {
          if (line[q] == '"' && q + 1 < line.size() && line[q + 1] == '"') {
            name += '"';
            ++q;
          } else if (line[q] == '"') {
            break;
          } else {
            name += line[q];
          }
        }
        after = line.find(',', q);
      } else {
        after = line.find(',', c2 + 1);
        name = line.substr(c2 + 1, after - c2 - 1);
      }
      const int class_id = std::atoi(line.substr(c1 + 1, c2 - c1 - 1).c_str());
      ++per_class[name];
      double cx = 0, cy = 0, area_um2 = 0, score = 0, dummy = 0;
      const bool measured = std::sscanf(line.c_str() + after + 1, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &cx, &cy,
                                        &dummy, &dummy, &area_um2, &dummy, &score) == 7;
      if (measured) {
        areas_um2.push_back(area_um2);
        score_sum += score;
      }
      if (options.thumbnail) {
        if (measured) {
          const double radius_px = std::sqrt(area_um2 / 3.14159265358979) / overview_um;
          const auto c = io::class_colour(class_id);
          cv::Mat img(overview.height, overview.width, CV_8UC3, overview.data.data());
          cv::circle(img, cv::Point(static_cast<int>(cx / overview_ds), static_cast<int>(cy / overview_ds)),
                     std::max(1, static_cast<int>(std::lround(radius_px))), cv::Scalar(c[0], c[1], c[2]), cv::FILLED);
        }
      }
    }
  }
  report.per_class = per_class;
  if (!areas_um2.empty()) {
    const double n = static_cast<double>(areas_um2.size());
    report.mean_area_um2 = std::accumulate(areas_um2.begin(), areas_um2.end(), 0.0) / n;
    report.mean_score = score_sum / n;
    report.median_diameter_um = median_diameter_um(std::move(areas_um2));
  }
  if (options.thumbnail) io::write_image(base + "_thumbnail.png", overview);
  report.times.write += since(t_fin);
  report.times.wall = since(wall_start);

  std::ostringstream s;
  s.precision(6);
  s << "{\n  \"slide\": " << json_string(slide_path) << ",\n  \"width\": " << slide.width()
    << ",\n  \"height\": " << slide.height() << ",\n  \"mpp\": " << slide_mpp << ",\n  \"mpp_source\": \""
    << mpp_source << "\",\n  \"method\": " << json_string(segmenter.name())
    << ",\n  \"processing\": {\"level\": " << rs.level << ", \"downsample\": " << rs.downsample
    << ", \"mpp\": " << rs.mpp << ", \"tile_size\": " << options.tile_size
    << ", \"tile_overlap\": " << options.tile_overlap << "},\n  \"tissue\": "
    << json_string(options.tissue == TissueSource::detect ? "detected"
                   : options.tissue == TissueSource::mask ? options.tissue_mask
                                                          : "all")
    << ",\n  \"stain_normalisation\": "
    << (options.stains.mode == StainNormalization::Mode::off
            ? std::string("null")
            : "{\"mode\": " + json_string(mode_name(options.stains.mode)) + ", \"applied\": " +
                  (stain_map.identity ? "false" : "true") + ", \"note\": " + json_string(report.stains) + "}")
    << ",\n  \"tissue_area_mm2\": " << report.tissue_mm2 << ",\n  \"tiles\": " << report.tiles
    << ",\n  \"tissue_tiles\": " << report.tissue_tiles << ",\n  \"nuclei\": " << report.nuclei
    << ",\n  \"nuclei_per_mm2\": " << (report.tissue_mm2 > 0 ? report.nuclei / report.tissue_mm2 : 0.0)
    << ",\n  \"merged_nuclei\": " << report.merged_nuclei << ",\n  \"cut_nuclei\": " << report.cut_nuclei
    << ",\n  \"mean_area_um2\": " << json_number_or_null(report.mean_area_um2, report.nuclei > 0)
    << ",\n  \"median_diameter_um\": " << json_number_or_null(report.median_diameter_um, report.nuclei > 0)
    << ",\n  \"mean_score\": " << json_number_or_null(report.mean_score, report.nuclei > 0)
    << ",\n  \"nuclei_per_class\": {";
  bool first = true;
  for (const auto& [name, count] : per_class) {
    s << (first ? "" : ", ") << json_string(name.empty() ? "Nucleus" : name) << ": " << count;
    first = false;
  }
  s << "},\n  \"resumed_tiles\": " << report.resumed_tiles << ",\n  \"seconds\": {\"wall\": " << report.times.wall
    << ", \"read\": " << report.times.read << ", \"preprocess\": " << report.times.preprocess
    << ", \"model\": " << report.times.model << ", \"postprocess\": " << report.times.postprocess
    << ", \"write\": " << report.times.write << "}\n}\n";
  write_file_atomic(base + "_summary.json", s.str());

  if (options.geojson) fs::rename(geojson_part, base + ".geojson", ec);
  if (ec) throw IoError(base + ".geojson: cannot rename into place (" + ec.message() + ")");
  if (options.csv) fs::rename(csv_part, base + "_nuclei.csv", ec);
  if (ec) throw IoError(base + "_nuclei.csv: cannot rename into place (" + ec.message() + ")");
  journal.close();
  fs::remove(journal_path, ec);
  fs::remove(geojson_part, ec);
  fs::remove(csv_part, ec);
  fs::remove(labels_part, ec);
  return report;
}

std::vector<std::string> read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot read the manifest");
  const fs::path folder = fs::path(path).parent_path();
  std::vector<std::string> slides;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    fs::path p(line.substr(start));
    slides.push_back((p.is_absolute() ? p : folder / p).lexically_normal().string());
  }
  if (slides.empty()) throw IoError(path + ": the manifest lists no slides");
  std::map<std::string, std::string> by_stem;
  for (const auto& s : slides) {
    auto [it, fresh] = by_stem.emplace(output_stem(s), s);
    if (!fresh)
      throw OptionError(path + ": " + s + " and " + it->second + " share the name \"" + it->first +
                        "\", so their outputs would overwrite each other");
  }
  return slides;
}

Shard parse_shard(const std::string& spec, const std::function<const char*(const char*)>& getenv) {
  auto number = [&](const std::string& text, const std::string& what) {
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || v < 0 || v > (1 << 30))
      throw OptionError("--shard: " + what + " \"" + text + "\" is not a whole number");
    return static_cast<int>(v);
  };
  Shard s;
  if (spec == "auto") {
    const char* task = getenv("SLURM_ARRAY_TASK_ID");
    const char* count = getenv("SLURM_ARRAY_TASK_COUNT");
    const char* min = getenv("SLURM_ARRAY_TASK_MIN");
    const char* k8s = getenv("JOB_COMPLETION_INDEX");
    const char* k8s_count = getenv("NUCLEISAM_SHARD_COUNT");
    if (task && count) {
      s.index = number(task, "SLURM_ARRAY_TASK_ID") - (min ? number(min, "SLURM_ARRAY_TASK_MIN") : 0);
      s.count = number(count, "SLURM_ARRAY_TASK_COUNT");
    } else if (k8s) {
      if (!k8s_count)
        throw OptionError("--shard auto: JOB_COMPLETION_INDEX is set but NUCLEISAM_SHARD_COUNT is not (set it to the "
                          "Job's completions)");
      s.index = number(k8s, "JOB_COMPLETION_INDEX");
      s.count = number(k8s_count, "NUCLEISAM_SHARD_COUNT");
    } else {
      throw OptionError("--shard auto: neither a Slurm array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) nor a "
                        "Kubernetes indexed Job (JOB_COMPLETION_INDEX) is in the environment");
    }
  } else {
    const size_t slash = spec.find('/');
    if (slash == std::string::npos) throw OptionError("--shard: expected i/N (0 <= i < N) or auto, got \"" + spec + "\"");
    s.index = number(spec.substr(0, slash), "index");
    s.count = number(spec.substr(slash + 1), "count");
  }
  if (s.count < 1 || s.index >= s.count)
    throw OptionError("--shard: index " + std::to_string(s.index) + " is not below the count " + std::to_string(s.count));
  return s;
}

std::vector<std::string> shard_slides(const std::vector<std::string>& slides, const Shard& shard) {
  std::vector<std::string> mine;
  for (size_t i = 0; i < slides.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(shard.count)) == shard.index) mine.push_back(slides[i]);
  return mine;
}

}  // namespace nucleisam::infer
