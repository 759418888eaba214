// CoNSeP patches (../shared/data/consep256 layout): images/<stem>.jpg, inst_png/<stem>.png and the
// class of each instance from type_mat/<stem>.mat ('inst_type', one row per instance in
// ascending label order) or, when that file is absent, from the split's instances.csv
// (tile, inst_label, type, ...). Classes 1 other, 2 inflammatory, 3 epithelial, 4 spindle-shaped.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "data/readers/dataset_readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/csv.h"
#include "nucleisam/io/mat_file.h"

namespace fs = std::filesystem;

namespace nucleisam::data {
namespace {

struct ConsepEntry {
  std::string name, image, labels, type_mat;  // type_mat empty: classes from instances.csv
};

using ClassTable = std::map<std::string, std::map<int32_t, int>>;  // stem -> label -> type

ClassTable read_instances_csv(const std::string& path) {
  const std::vector<io::CsvRecord> records = io::read_csv(path);
  if (records.empty() || records[0].fields.size() < 3 || records[0].fields[0] != "tile" ||
      records[0].fields[1] != "inst_label" || records[0].fields[2] != "type")
    throw IoError(path + ": expected a header starting with tile,inst_label,type");
  ClassTable table;
  for (size_t r = 1; r < records.size(); ++r) {
    const io::CsvRecord& rec = records[r];
    const int64_t label = rec.integer(1, path), type = rec.integer(2, path);
    if (label < INT32_MIN || label > INT32_MAX || type < INT32_MIN || type > INT32_MAX)
      throw IoError(path + ": line " + std::to_string(rec.line) + ": inst_label/type out of range");
    table[rec.fields[0]][static_cast<int32_t>(label)] = static_cast<int>(type);
  }
  return table;
}

class ConsepDataset : public Dataset {
 public:
  ConsepDataset(std::vector<ConsepEntry> entries, ClassTable csv, std::string csv_path)
      : entries_(std::move(entries)), csv_(std::move(csv)), csv_path_(std::move(csv_path)) {}
  size_t size() const override { return entries_.size(); }
  std::string name(size_t i) const override { return entries_.at(i).name; }
  const ClassNames& class_names() const override { return consep_class_names(); }
  std::string format() const override { return "consep"; }
  double microns_per_pixel() const override { return 0.25; }

  Sample get(size_t i) const override {
    const ConsepEntry& e = entries_.at(i);
    Sample s;
    s.name = e.name;
    s.image = io::read_image(e.image);
    s.instances = io::read_label_map(e.labels);
    check_same_size(s.image, s.instances, e.image, e.labels);
    const int num_classes = static_cast<int>(consep_class_names().size()) - 1;
    if (!e.type_mat.empty()) {
      auto vars = io::read_mat(e.type_mat, {"inst_type"});
      if (!vars.count("inst_type")) throw DataError(e.type_mat + ": no variable 'inst_type'");
      std::vector<int32_t> types = vars["inst_type"].to_int32(e.type_mat);
      // type_mat rows follow the ascending instance labels of the PNG.
      LabelMap ids = s.instances;
      std::vector<int32_t> old_ids = relabel_consecutive(ids, e.labels);
      if (types.size() != old_ids.size())
        throw DataError(e.type_mat + ": " + std::to_string(types.size()) + " types for " +
                        std::to_string(old_ids.size()) + " instances in " + e.labels);
      std::map<int32_t, int> class_of;
      for (size_t k = 0; k < types.size(); ++k) class_of[old_ids[k]] = types[k];
      finish_sample(s, &class_of, num_classes, e.type_mat);
    } else {
      auto it = csv_.find(e.name);
      static const std::map<int32_t, int> none;
      finish_sample(s, it == csv_.end() ? &none : &it->second, num_classes, csv_path_ + " (" + e.name + ")");
    }
    return s;
  }

 private:
  std::vector<ConsepEntry> entries_;
  ClassTable csv_;
  std::string csv_path_;
};

}  // namespace

std::unique_ptr<Dataset> open_consep(const std::string& path) {
  fs::path root(path);
  std::vector<std::string> images = list_files((root / "images").string(), {".jpg", ".jpeg", ".png", ".tif"});
  if (images.empty()) throw DataError(path + ": no images in " + (root / "images").string());
  std::vector<ConsepEntry> entries;
  bool need_csv = false;
  std::error_code ec;
  for (const std::string& image : images) {
    ConsepEntry e;
    e.name = stem_of(image);
    e.image = image;
    e.labels = (root / "inst_png" / (e.name + ".png")).string();
    if (!fs::is_regular_file(e.labels, ec))
      throw DataError(image + ": no instance map (looked for " + e.labels + ")");
    fs::path mat = root / "type_mat" / (e.name + ".mat");
    if (fs::is_regular_file(mat, ec))
      e.type_mat = mat.string();
    else
      need_csv = true;
    entries.push_back(std::move(e));
  }
  ClassTable csv;
  std::string csv_path = (root / "instances.csv").string();
  if (need_csv) {
    if (!fs::is_regular_file(csv_path, ec))
      throw DataError(path + ": some patches have no type_mat/<stem>.mat and there is no " + csv_path);
    csv = read_instances_csv(csv_path);
  }
  return std::make_unique<ConsepDataset>(std::move(entries), std::move(csv), csv_path);
}

}  // namespace nucleisam::data
