// Shared reader checks, the class-name tables, and format detection/dispatch.
#include <algorithm>
#include <filesystem>
#include <map>

#include "data/readers/dataset_readers.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"

namespace fs = std::filesystem;

namespace nucleisam::data {

void check_same_size(const Image& image, const LabelMap& labels, const std::string& image_file,
                     const std::string& label_file) {
  if (!labels.same_size(image))
    throw DataError(label_file + ": labels are " + std::to_string(labels.width) + "x" +
                    std::to_string(labels.height) + " but the image " + image_file + " is " +
                    std::to_string(image.width) + "x" + std::to_string(image.height));
}

void finish_sample(Sample& sample, const std::map<int32_t, int>* class_of_old_id, int num_classes,
                   const std::string& file) {
  std::vector<int32_t> old_ids = relabel_consecutive(sample.instances, file);
  sample.classes.clear();
  sample.classed = class_of_old_id != nullptr;
  if (!class_of_old_id) return;
  sample.classes.reserve(old_ids.size());
  for (int32_t old : old_ids) {
    auto it = class_of_old_id->find(old);
    if (it == class_of_old_id->end())
      throw DataError(file + ": instance " + std::to_string(old) + " has no class");
    if (it->second < 1 || it->second > num_classes)
      throw DataError(file + ": instance " + std::to_string(old) + " has unknown class id " +
                      std::to_string(it->second) + " (expected 1.." + std::to_string(num_classes) + ")");
    sample.classes.push_back(it->second);
  }
}

std::vector<std::string> list_files(const std::string& folder, const std::vector<std::string>& extensions) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string p = it->path().string();
    if (std::find(extensions.begin(), extensions.end(), io::lower_extension(p)) != extensions.end())
      out.push_back(p);
  }
  if (ec) throw IoError(folder + ": cannot list folder (" + ec.message() + ")");
  std::sort(out.begin(), out.end());
  return out;
}

std::string stem_of(const std::string& path) { return fs::path(path).stem().string(); }

const ClassNames& consep_class_names() {
  static const ClassNames names = {"background", "other", "inflammatory", "epithelial", "spindle-shaped"};
  return names;
}
const ClassNames& lizard_class_names() {
  static const ClassNames names = {"background", "neutrophil", "epithelial", "lymphocyte",
                                   "plasma",     "eosinophil", "connective"};
  return names;
}
const ClassNames& pannuke_class_names() {
  static const ClassNames names = {"background", "neoplastic", "inflammatory", "connective", "dead",
                                   "epithelial"};
  return names;
}

namespace {

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool has_mat_files(const fs::path& folder, int depth) {
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && io::lower_extension(it->path().string()) == ".mat") return true;
    if (depth > 0 && it->is_directory(ec) && has_mat_files(it->path(), depth - 1)) return true;
  }
  return false;
}

// The format of a split folder, or "" when nothing fits.
std::string sniff(const fs::path& p) {
  if (is_file(p / "images.npy") && is_file(p / "labels.npy")) return "conic";
  if (is_file(p / "images.npy") && is_file(p / "masks.npy")) return "pannuke";
  if (is_dir(p / "images") && is_dir(p / "masks")) return "pannuke";  // official "Fold k" layout
  if (is_dir(p / "images") && (is_dir(p / "instance_labels") || is_dir(p / "annotations_xml")))
    return "monuseg";
  if (is_dir(p / "images") && is_dir(p / "inst_png")) return "consep";
  if (is_dir(p / "images") && is_dir(p / "labels")) return "folder";
  if (has_mat_files(p, 3)) return "lizard";
  return "";
}

}  // namespace

std::string detect_format(const std::string& path) {
  fs::path p(path);
  if (!is_dir(p)) throw DataError(path + ": not a folder (a dataset is opened from its split folder)");
  std::string f = sniff(p);
  if (!f.empty()) return f;
  std::vector<std::string> splits;
  std::error_code ec;
  for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && !sniff(it->path()).empty()) splits.push_back(it->path().string());
  std::sort(splits.begin(), splits.end());
  if (!splits.empty()) {
    std::string list;
    for (const auto& s : splits) list += (list.empty() ? "" : ", ") + s;
    throw DataError(path + ": is a dataset root; open one split folder instead: " + list);
  }
  throw DataError(path + ": unknown dataset layout (expected images/ with instance_labels/, "
                  "annotations_xml/, inst_png/ or labels/; images.npy with labels.npy or masks.npy; "
                  "or Lizard .mat labels)");
}

std::unique_ptr<Dataset> open_dataset(const std::string& path, const std::string& format) {
  std::string f = format == "auto" ? detect_format(path) : format;
  if (!is_dir(path)) throw DataError(path + ": not a folder");
  if (f == "monuseg") return open_monuseg(path);
  if (f == "consep") return open_consep(path);
  if (f == "lizard") return open_lizard(path);
  if (f == "conic") return open_conic(path);
  if (f == "pannuke") return open_pannuke(path);
  if (f == "folder") return open_folder(path);
  throw DataError(path + ": unknown dataset format '" + format +
                  "' (expected auto, monuseg, consep, lizard, conic, pannuke or folder)");
}

}  // namespace nucleisam::data
