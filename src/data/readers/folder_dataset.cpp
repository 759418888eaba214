// Generic folder: images/<stem>.<png|jpg|jpeg|tif|tiff|bmp> with labels/<stem>.<png|tif|tiff|npy>
// (an integer instance map). Optional classes: classes/<stem>.csv with a header "instance,class"
// and one row per instance id of the label file, plus class_names.txt (one name per line for
// classes 1, 2, ...). When classes/ exists every image must have its CSV.
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/readers/dataset_readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/csv.h"

namespace fs = std::filesystem;

namespace nucleisam::data {
namespace {

struct FolderEntry {
  std::string name, image, labels, classes;
};

std::map<int32_t, int> read_class_csv(const std::string& path) {
  const std::vector<io::CsvRecord> records = io::read_csv(path);
  if (records.empty() || records[0].fields != std::vector<std::string>{"instance", "class"})
    throw IoError(path + ": expected the header line 'instance,class'");
  std::map<int32_t, int> out;
  for (size_t r = 1; r < records.size(); ++r) {
    const io::CsvRecord& rec = records[r];
    if (rec.fields.size() != 2)
      throw IoError(path + ": line " + std::to_string(rec.line) + ": expected two integers 'instance,class'");
    const int64_t id = rec.integer(0, path), c = rec.integer(1, path);
    if (id < 0 || id > INT32_MAX || c < INT32_MIN || c > INT32_MAX)
      throw IoError(path + ": line " + std::to_string(rec.line) + ": value out of range");
    if (!out.emplace(static_cast<int32_t>(id), static_cast<int>(c)).second)
      throw IoError(path + ": line " + std::to_string(rec.line) + ": instance " + rec.fields[0] + " listed twice");
  }
  return out;
}

class FolderDataset : public Dataset {
 public:
  FolderDataset(std::vector<FolderEntry> entries, ClassNames names, bool classed)
      : entries_(std::move(entries)), names_(std::move(names)), classed_(classed) {}
  size_t size() const override { return entries_.size(); }
  std::string name(size_t i) const override { return entries_.at(i).name; }
  const ClassNames& class_names() const override { return names_; }
  std::string format() const override { return "folder"; }

  Sample get(size_t i) const override {
    const FolderEntry& e = entries_.at(i);
    Sample s;
    s.name = e.name;
    s.image = io::read_image(e.image);
    s.instances = io::read_label_map(e.labels);
    check_same_size(s.image, s.instances, e.image, e.labels);
    if (!classed_) {
      finish_sample(s, nullptr, 0, e.labels);
    } else {
      std::map<int32_t, int> class_of = read_class_csv(e.classes);
      // Without class_names.txt any positive class id is accepted.
      int num_classes = names_.empty() ? std::numeric_limits<int>::max() : static_cast<int>(names_.size()) - 1;
      finish_sample(s, &class_of, num_classes, e.classes);
    }
    return s;
  }

 private:
  std::vector<FolderEntry> entries_;
  ClassNames names_;
  bool classed_;
};

}  // namespace

std::unique_ptr<Dataset> open_folder(const std::string& path) {
  fs::path root(path);
  std::vector<std::string> images =
      list_files((root / "images").string(), {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"});
  if (images.empty()) throw DataError(path + ": no images in " + (root / "images").string());
  std::error_code ec;
  bool classed = fs::is_directory(root / "classes", ec);
  ClassNames names;
  fs::path names_file = root / "class_names.txt";
  if (fs::is_regular_file(names_file, ec)) {
    // Names without per-image classes would make a "classified" set whose nuclei have no type.
    if (!classed)
      throw DataError(names_file.string() + ": class names without a classes/ folder of <stem>.csv files in " + path);
    std::ifstream in(names_file);
    names.push_back("background");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
  }
  std::vector<FolderEntry> entries;
  std::set<std::string> stems;
  for (const std::string& image : images) {
    FolderEntry e;
    e.name = stem_of(image);
    e.image = image;
    for (const char* ext : {".png", ".tif", ".tiff", ".npy"}) {
      fs::path p = root / "labels" / (e.name + ext);
      if (fs::is_regular_file(p, ec)) {
        e.labels = p.string();
        break;
      }
    }
    if (e.labels.empty())
      throw DataError(image + ": no label map labels/" + e.name + ".{png,tif,tiff,npy} in " + path);
    if (classed) {
      e.classes = (root / "classes" / (e.name + ".csv")).string();
      if (!fs::is_regular_file(e.classes, ec))
        throw DataError(image + ": classes/ exists but " + e.classes + " is missing");
    }
    if (!stems.insert(e.name).second) throw DataError(image + ": two images share the stem '" + e.name + "'");
    entries.push_back(std::move(e));
  }
  return std::make_unique<FolderDataset>(std::move(entries), std::move(names), classed);
}

}  // namespace nucleisam::data
