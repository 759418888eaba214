// Datasets stored as stacked NumPy arrays, read one sample at a time:
// - CoNIC: images.npy (N, H, W, 3) uint8 and labels.npy (N, H, W, 2) with channel 0 the instance
//   map and channel 1 the per-pixel class 0..6 (Lizard's classes). An instance's class is the
//   majority class over its pixels (they agree in the published data).
// - PanNuke: images.npy (N, H, W, 3) (float64 0..255 in the release, any numeric dtype accepted)
//   and masks.npy (N, H, W, 6): channels 0..4 hold instance ids of neoplastic, inflammatory,
//   connective, dead and epithelial nuclei, channel 5 background. Instance (channel c, id k)
//   becomes one instance of class c + 1; where channels overlap the later channel wins.
//   Found either directly in the folder or in the release's images/<fold>/ and masks/<fold>/;
//   the release's types.npy beside images.npy (each image's tissue) becomes Sample::group.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "data/readers/dataset_readers.h"
#include "data/readers/npy_slices.h"
#include "nucleisam/errors.h"
#include "nucleisam/log.h"
#include "nucleisam/npy.h"

namespace fs = std::filesystem;

namespace nucleisam::data {
namespace {

std::string index_name(const std::string& prefix, size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%05zu", prefix.c_str(), i);
  return buf;
}

Image to_image(const std::vector<double>& v, int h, int w) {
  Image img(h, w, 3);
  for (size_t k = 0; k < v.size(); ++k) img.data[k] = static_cast<uint8_t>(std::clamp(std::lround(v[k]), 0L, 255L));
  return img;
}

int32_t to_id(double v, const std::string& file, size_t sample) {
  if (v != std::floor(v) || v < 0 || v > 2147483647.0)
    throw DataError(file + ": sample " + std::to_string(sample) + " holds label value " + std::to_string(v) +
                    ", expected a non-negative integer");
  return static_cast<int32_t>(v);
}

// Both arrays stack the same number of H x W samples; the channel counts are as given.
void check_stacks(const NpySlices& images, const NpySlices& labels, int64_t label_channels) {
  const auto& a = images.shape();
  const auto& b = labels.shape();
  if (a.size() != 4 || a[3] != 3)
    throw DataError(images.path() + ": expected shape (N, H, W, 3)");
  if (b.size() != 4 || b[3] != label_channels)
    throw DataError(labels.path() + ": expected shape (N, H, W, " + std::to_string(label_channels) + ")");
  if (a[0] != b[0] || a[1] != b[1] || a[2] != b[2])
    throw DataError(labels.path() + ": shape (" + std::to_string(b[0]) + ", " + std::to_string(b[1]) + ", " +
                    std::to_string(b[2]) + ", ...) does not match " + images.path() + " (" +
                    std::to_string(a[0]) + ", " + std::to_string(a[1]) + ", " + std::to_string(a[2]) + ", 3)");
}

class ConicDataset : public Dataset {
 public:
  explicit ConicDataset(const std::string& path)
      : images_((fs::path(path) / "images.npy").string()), labels_((fs::path(path) / "labels.npy").string()) {
    check_stacks(images_, labels_, 2);
  }
  size_t size() const override { return static_cast<size_t>(images_.count()); }
  std::string name(size_t i) const override { return index_name("conic_", i); }
  const ClassNames& class_names() const override { return lizard_class_names(); }
  std::string format() const override { return "conic"; }
  double microns_per_pixel() const override { return 0.5; }

  Sample get(size_t i) const override {
    const int h = static_cast<int>(images_.shape()[1]), w = static_cast<int>(images_.shape()[2]);
    Sample s;
    s.name = name(i);
    s.image = to_image(images_.read(static_cast<int64_t>(i)), h, w);
    std::vector<double> lab = labels_.read(static_cast<int64_t>(i));
    s.instances = LabelMap(h, w);
    const int num_classes = static_cast<int>(lizard_class_names().size()) - 1;
    std::map<int32_t, std::vector<int64_t>> votes;  // old id -> pixel count per class 0..max
    for (size_t p = 0; p < s.instances.pixels(); ++p) {
      int32_t id = to_id(lab[2 * p], labels_.path(), i);
      s.instances.data[p] = id;
      if (!id) continue;
      int32_t c = to_id(lab[2 * p + 1], labels_.path(), i);
      auto& v = votes[id];
      if (static_cast<size_t>(c) >= v.size()) v.resize(static_cast<size_t>(std::min(c, 1 << 16)) + 1, 0);
      ++v[std::min(c, 1 << 16)];
    }
    std::map<int32_t, int> class_of;
    for (auto& [id, v] : votes)
      class_of[id] = static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
    finish_sample(s, &class_of, num_classes, labels_.path() + " sample " + std::to_string(i));
    return s;
  }

 private:
  NpySlices images_, labels_;
};

std::string find_in(const fs::path& root, const std::string& sub, const std::string& file) {
  std::error_code ec;
  if (fs::is_regular_file(root / file, ec)) return (root / file).string();
  std::vector<std::string> hits;
  for (fs::directory_iterator it(root / sub, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && fs::is_regular_file(it->path() / file, ec)) hits.push_back((it->path() / file).string());
  if (fs::is_regular_file(root / sub / file, ec)) hits.push_back((root / sub / file).string());
  if (hits.size() != 1)
    throw DataError(root.string() + ": expected one " + file + " (directly or in " + sub + "/<fold>/), found " +
                    std::to_string(hits.size()));
  return hits[0];
}

class PannukeDataset : public Dataset {
 public:
  explicit PannukeDataset(const std::string& path)
      : images_(find_in(path, "images", "images.npy")), masks_(find_in(path, "masks", "masks.npy")) {
    check_stacks(images_, masks_, 6);
    // The release's tissue type of each image (types.npy beside images.npy), used to average
    // PanNuke's mPQ / bPQ per tissue. Optional.
    const fs::path types = fs::path(images_.path()).parent_path() / "types.npy";
    std::error_code ec;
    if (fs::is_regular_file(types, ec)) {
      try {
        tissues_ = read_npy(types.string()).to_strings();
      } catch (const IoError& e) {  // the images stay readable; only the per-tissue averages go
        log::warn(types.string(), ": ", e.what(), "; its images are read without their tissue types");
      }
      if (!tissues_.empty() && static_cast<int64_t>(tissues_.size()) != images_.count())
        throw DataError(types.string() + ": " + std::to_string(tissues_.size()) + " tissue types for " +
                        std::to_string(images_.count()) + " images");
    }
  }
  size_t size() const override { return static_cast<size_t>(images_.count()); }
  std::string name(size_t i) const override { return index_name("pannuke_", i); }
  const ClassNames& class_names() const override { return pannuke_class_names(); }
  std::string format() const override { return "pannuke"; }
  double microns_per_pixel() const override { return 0.25; }

  Sample get(size_t i) const override {
    const int h = static_cast<int>(images_.shape()[1]), w = static_cast<int>(images_.shape()[2]);
    Sample s;
    s.name = name(i);
    s.image = to_image(images_.read(static_cast<int64_t>(i)), h, w);
    std::vector<double> m = masks_.read(static_cast<int64_t>(i));
    const size_t n = static_cast<size_t>(h) * w;
    // Number (channel, id) pairs in channel order, then by id, so relabelling keeps that order.
    std::vector<std::map<int32_t, int32_t>> ids(5);
    for (size_t p = 0; p < n; ++p)
      for (int c = 0; c < 5; ++c) {
        int32_t id = to_id(m[p * 6 + c], masks_.path(), i);
        if (id) ids[c][id] = 0;
      }
    std::map<int32_t, int> class_of;
    int32_t next = 0;
    for (int c = 0; c < 5; ++c)
      for (auto& kv : ids[c]) {
        kv.second = ++next;
        class_of[next] = c + 1;
      }
    s.instances = LabelMap(h, w);
    for (size_t p = 0; p < n; ++p)
      for (int c = 0; c < 5; ++c) {
        int32_t id = static_cast<int32_t>(m[p * 6 + c]);
        if (id) s.instances.data[p] = ids[c][id];
      }
    finish_sample(s, &class_of, 5, masks_.path() + " sample " + std::to_string(i));
    if (!tissues_.empty()) s.group = tissues_[i];
    return s;
  }

 private:
  NpySlices images_, masks_;
  std::vector<std::string> tissues_;  // by image; empty without types.npy
};

}  // namespace

std::unique_ptr<Dataset> open_conic(const std::string& path) { return std::make_unique<ConicDataset>(path); }
std::unique_ptr<Dataset> open_pannuke(const std::string& path) { return std::make_unique<PannukeDataset>(path); }

}  // namespace nucleisam::data
