// Prediction and ground-truth label-map files: name matching, sidecar CSVs (classes, scores) and
// class maps beside a label map.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>

#include "eval/label_files.h"
#include "nucleisam/eval/evaluate.h"
#include "nucleisam/data/dataset.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/csv.h"
#include "nucleisam/io/nucleus_table.h"
#include "nucleisam/nucleus.h"

namespace fs = std::filesystem;

namespace nucleisam::eval {
namespace {

// Suffixes a tool may append to an image's stem when it writes a label map; one is dropped before
// matching so "TCGA-18_label.png" (ground truth) meets "TCGA-18_pred.tif" (prediction).
const std::vector<std::string> kStemSuffixes = {"_instances", "_instance", "_prediction", "_labels",
                                                "_label",     "_inst",     "_pred"};
const std::vector<std::string> kLabelExtensions = {".png", ".tif", ".tiff", ".npy"};
// `nucleisam segment` writes <key>_overlay.png beside <key>_labels.tif: a picture, not a label map.
const std::string kOverlaySuffix = "_overlay";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_label_file(const fs::path& p) {
  const std::string ext = io::lower_extension(p.string());
  return std::find(kLabelExtensions.begin(), kLabelExtensions.end(), ext) != kLabelExtensions.end() &&
         !ends_with(p.stem().string(), kClassMapSuffix) && !ends_with(p.stem().string(), kOverlaySuffix);
}

// The per-instance CSV of a label map: "<stem>.csv", or for `nucleisam segment` output
// ("<key>_labels.tif") its nucleus table "<key>_nuclei.csv" (same id/class/score columns).
fs::path sidecar_csv_for(const fs::path& label_file) {
  const std::string stem = label_file.stem().string();
  fs::path plain = label_file.parent_path() / (stem + ".csv");
  if (fs::exists(plain) || !ends_with(stem, "_labels")) return plain;
  fs::path nuclei = label_file.parent_path() / (stem.substr(0, stem.size() - 7) + "_nuclei.csv");
  return fs::exists(nuclei) ? nuclei : plain;
}

struct SidecarRow {
  int cls = 0;
  double score = 1.0;
  std::string class_name;  // segment's nucleus tables name each class; "" elsewhere
};

// "<stem>.csv" beside a label map: a header naming the columns (id or instance; class; score),
// then one row per instance id.
std::map<int32_t, SidecarRow> read_sidecar_csv(const std::string& path, bool& has_class, bool& has_score) {
  const std::vector<io::CsvRecord> records = io::read_csv(path);
  if (records.empty()) throw IoError(path + ": empty file (expected a header such as 'id,class,score')");
  const std::vector<std::string>& header = records[0].fields;
  int id_col = -1, class_col = -1, score_col = -1;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    if (header[i] == "id" || header[i] == "instance")
      id_col = i;
    else if (header[i] == "class" || header[i] == "type")
      class_col = i;
    else if (header[i] == "score")
      score_col = i;
  }
  if (id_col < 0 || (class_col < 0 && score_col < 0)) {
    std::string line;
    for (size_t i = 0; i < header.size(); ++i) line += (i ? "," : "") + header[i];
    throw IoError(path + ": header must name an 'id' column and a 'class' and/or 'score' column, got '" +
                  line + "'");
  }
  has_class = class_col >= 0;
  has_score = score_col >= 0;
  std::map<int32_t, SidecarRow> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    const io::CsvRecord& rec = records[r];
    SidecarRow row;
    const int64_t id = rec.integer(static_cast<size_t>(id_col), path);
    if (has_class) row.cls = static_cast<int>(rec.integer(static_cast<size_t>(class_col), path));
    if (has_score) row.score = rec.number(static_cast<size_t>(score_col), path);
    if (id < INT32_MIN || id > INT32_MAX)
      throw IoError(path + ": line " + std::to_string(rec.line) + ": instance id " + rec.fields[id_col] + " out of range");
    if (!rows.emplace(static_cast<int32_t>(id), row).second)
      throw IoError(path + ": line " + std::to_string(rec.line) + ": instance " + std::to_string(id) + " listed twice");
  }
  // Class 0 means "unclassified" (what a class-agnostic model such as segment's classical
  // baseline writes): a table with no other class carries no classes.
  if (has_class && std::all_of(rows.begin(), rows.end(), [](const auto& r) { return r.second.cls == 0; }))
    has_class = false;
  return rows;
}

// A per-instance sidecar: segment's nucleus table (quoted class names) through its own reader,
// anything else through read_sidecar_csv.
std::map<int32_t, SidecarRow> read_sidecar(const fs::path& csv, bool& has_class, bool& has_score) {
  if (!ends_with(csv.filename().string(), "_nuclei.csv")) return read_sidecar_csv(csv.string(), has_class, has_score);
  std::map<int32_t, SidecarRow> rows;
  has_class = false;
  has_score = true;
  for (const Nucleus& n : io::read_nucleus_table(csv.string())) {
    rows[n.id] = SidecarRow{n.class_id, n.score, n.class_name};
    has_class = has_class || n.class_id != 0;  // class 0 = unclassified, as in read_sidecar_csv
  }
  // A table without nuclei (an image where nothing was found) says nothing against classes: it
  // must not turn a classed evaluation of a whole folder into a class-agnostic one.
  if (rows.empty()) has_class = true;
  return rows;
}

std::optional<fs::path> class_map_beside(const fs::path& label_file) {
  for (const auto& ext : kLabelExtensions) {
    fs::path p = label_file.parent_path() / (label_file.stem().string() + kClassMapSuffix + ext);
    if (fs::exists(p)) return p;
  }
  return std::nullopt;
}

}  // namespace

const std::string kClassMapSuffix = "_class";

std::string match_key(const std::string& stem) {
  for (const auto& suffix : kStemSuffixes)
    if (ends_with(stem, suffix) && stem.size() > suffix.size())
      return stem.substr(0, stem.size() - suffix.size());
  return stem;
}

std::vector<std::string> label_files_in(const std::string& folder) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.is_regular_file() && is_label_file(e.path())) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (const auto& p : found) out.push_back(p.string());
  return out;
}

bool has_class_sidecar(const std::string& label_file) {
  if (class_map_beside(label_file)) return true;
  const fs::path csv = sidecar_csv_for(label_file);
  if (!fs::exists(csv)) return false;
  bool has_class = false, has_score = false;
  read_sidecar(csv, has_class, has_score);
  return has_class;
}

std::vector<int> majority_classes(const LabelMap& instances, int instance_count, const LabelMap& class_map) {
  // Votes per instance; instances are few, classes fewer, so a map per instance is cheap.
  std::vector<std::map<int, int64_t>> votes(static_cast<size_t>(instance_count));
  for (size_t i = 0; i < class_map.data.size(); ++i) {
    const int32_t inst = instances.data[i];
    if (inst > 0 && class_map.data[i] != 0) ++votes[inst - 1][class_map.data[i]];
  }
  std::vector<int> classes(votes.size(), 0);
  for (size_t k = 0; k < votes.size(); ++k) {
    int64_t best = 0;
    for (const auto& [cls, n] : votes[k])
      if (n > best) {  // ascending class order: ties go to the lower class
        best = n;
        classes[k] = cls;
      }
  }
  return classes;
}

LabelledInstances read_labelled_instances(const std::string& label_file) {
  const fs::path file(label_file);
  LabelledInstances out;
  out.instances = io::read_label_map(file.string());
  if (out.instances.channels != 1)
    throw DataError(file.string() + ": expected a single-channel label map, got " +
                    std::to_string(out.instances.channels) + " channels");
  const std::vector<int32_t> old_ids = relabel_consecutive(out.instances, file.string());

  const fs::path csv = sidecar_csv_for(file);
  if (fs::exists(csv)) {
    bool has_class = false, has_score = false;
    auto rows = read_sidecar(csv, has_class, has_score);
    if (has_class) out.classes.reserve(old_ids.size());
    if (has_score) out.scores.reserve(old_ids.size());
    for (int32_t old : old_ids) {
      auto it = rows.find(old);
      if (it == rows.end())
        throw DataError(csv.string() + ": no row for instance " + std::to_string(old) + " of " +
                        file.string());
      if (has_class) out.classes.push_back(it->second.cls);
      if (has_score) out.scores.push_back(it->second.score);
      // unnamed_class_name is what segment writes for a class its model does not name.
      const std::string& name = it->second.class_name;
      if (has_class && it->second.cls > 0 && !name.empty() && name != unnamed_class_name(it->second.cls))
        out.class_names.emplace(it->second.cls, name);
    }
    out.classed = has_class;
  }
  if (auto class_file = class_map_beside(file)) {
    if (out.classed)
      throw DataError(file.string() + " has both " + csv.string() + " with classes and class map " +
                       class_file->string() + ": keep one");
    LabelMap class_map = io::read_label_map(class_file->string());
    if (class_map.channels != 1 || !class_map.same_size(out.instances))
      throw DataError(class_file->string() + ": class map is " + std::to_string(class_map.width) + "x" +
                      std::to_string(class_map.height) + " but " + file.string() + " is " +
                      std::to_string(out.instances.width) + "x" + std::to_string(out.instances.height));
    out.classes = majority_classes(out.instances, static_cast<int>(old_ids.size()), class_map);
    out.classed = true;
  }
  return out;
}

}  // namespace nucleisam::eval
