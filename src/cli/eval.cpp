// `nucleisam eval`: scores predicted instance maps against ground truth with every metric of
// src/metrics (Dice, IoU, AJI, AJI+, PQ, object F1, COCO mAP, count R^2, and per class mPQ+, F1,
// AP, IoU, R^2), writes per_image.csv and summary.json atomically and prints a table.
// Matching rules for file names and the sidecar formats are in docs/metrics.md.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/nucleus_table.h"
#include "nucleisam/log.h"
#include "nucleisam/metrics/evaluation.h"
#include "nucleisam/progress.h"

namespace fs = std::filesystem;

namespace nucleisam::cli {
namespace {

// Suffixes a tool may append to an image's stem when it writes a label map; one is dropped before
// matching so "TCGA-18_label.png" (ground truth) meets "TCGA-18_pred.tif" (prediction).
const std::vector<std::string> kStemSuffixes = {"_instances", "_instance", "_prediction", "_labels",
                                                "_label",     "_inst",     "_pred"};
// A label map whose stem ends with this is the class map of the file without it, not an image.
const std::string kClassMapSuffix = "_class";
const std::vector<std::string> kLabelExtensions = {".png", ".tif", ".tiff", ".npy"};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string match_key(const std::string& stem) {
  for (const auto& suffix : kStemSuffixes)
    if (ends_with(stem, suffix) && stem.size() > suffix.size())
      return stem.substr(0, stem.size() - suffix.size());
  return stem;
}

// `nucleisam segment` writes <key>_overlay.png beside <key>_labels.tif: a picture, not a label map.
const std::string kOverlaySuffix = "_overlay";

bool is_label_file(const fs::path& p) {
  const std::string ext = lower_extension(p.string());
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

// Label-map files of a folder (not recursive), sorted by name.
std::vector<fs::path> label_files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_label_file(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// One side of an evaluated image, read from files or taken from a dataset sample.
struct LoadedInstances {
  LabelMap instances;          // relabelled 1..N
  std::vector<int> classes;    // by label - 1; empty when unclassified
  std::vector<double> scores;  // by label - 1; empty when absent
  bool classed = false;
};

struct SidecarRow {
  int cls = 0;
  double score = 1.0;
};

// "<stem>.csv" beside a label map: a header naming the columns (id or instance; class; score),
// then one row per instance id.
std::map<int32_t, SidecarRow> read_sidecar_csv(const std::string& path, bool& has_class, bool& has_score) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open");
  auto split = [](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    return cells;
  };
  std::string line;
  if (!std::getline(in, line))
    throw IoError(path + ": empty file (expected a header such as 'id,class,score')");
  std::vector<std::string> header = split(line);
  int id_col = -1, class_col = -1, score_col = -1;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    if (header[i] == "id" || header[i] == "instance")
      id_col = i;
    else if (header[i] == "class" || header[i] == "type")
      class_col = i;
    else if (header[i] == "score")
      score_col = i;
  }
  if (id_col < 0 || (class_col < 0 && score_col < 0))
    throw IoError(path + ": header must name an 'id' column and a 'class' and/or 'score' column, got '" +
                  line + "'");
  has_class = class_col >= 0;
  has_score = score_col >= 0;
  std::map<int32_t, SidecarRow> rows;
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    std::vector<std::string> cells = split(line);
    if (cells.empty() || (cells.size() == 1 && cells[0].empty())) continue;
    auto cell = [&](int col) -> const std::string& {
      if (col >= static_cast<int>(cells.size()))
        throw IoError(path + ":" + std::to_string(lineno) + ": missing column " + header[col]);
      return cells[col];
    };
    SidecarRow row;
    int32_t id = 0;
    try {
      id = std::stoi(cell(id_col));
      if (has_class) row.cls = std::stoi(cell(class_col));
      if (has_score) row.score = std::stod(cell(score_col));
    } catch (const std::logic_error&) {
      throw IoError(path + ":" + std::to_string(lineno) + ": not a number in '" + line + "'");
    }
    if (!rows.emplace(id, row).second)
      throw IoError(path + ":" + std::to_string(lineno) + ": instance " + std::to_string(id) +
                    " listed twice");
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
  for (const Nucleus& n : read_nucleus_table(csv.string())) {
    rows[n.id] = SidecarRow{n.class_id, n.score};
    has_class = has_class || n.class_id != 0;  // class 0 = unclassified, as in read_sidecar_csv
  }
  return rows;
}

std::optional<fs::path> class_map_beside(const fs::path& label_file) {
  for (const auto& ext : kLabelExtensions) {
    fs::path p = label_file.parent_path() / (label_file.stem().string() + kClassMapSuffix + ext);
    if (fs::exists(p)) return p;
  }
  return std::nullopt;
}

// Whether a label map has per-instance classes beside it (a class map, or a CSV whose header has a
// class column), judged without reading the maps.
bool has_class_sidecar(const fs::path& label_file) {
  if (class_map_beside(label_file)) return true;
  const fs::path csv = sidecar_csv_for(label_file);
  if (!fs::exists(csv)) return false;
  bool has_class = false, has_score = false;
  read_sidecar(csv, has_class, has_score);
  return has_class;
}

// Reads a label map and its optional sidecars: <stem>.csv (classes and/or scores) or
// <stem>_class.<ext> (a class map; each instance takes its most frequent non-zero class).
LoadedInstances load_label_file(const fs::path& file) {
  LoadedInstances out;
  out.instances = read_label_map(file.string());
  if (out.instances.channels != 1)
    throw DataError(file.string() + ": expected a single-channel label map, got " +
                    std::to_string(out.instances.channels) + " channels");
  const std::vector<int32_t> old_ids = data::relabel_consecutive(out.instances, file.string());

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
    }
    out.classed = has_class;
  }
  if (auto class_file = class_map_beside(file)) {
    if (out.classed)
      throw UsageError(file.string() + " has both " + csv.string() + " with classes and class map " +
                       class_file->string() + ": keep one");
    LabelMap class_map = read_label_map(class_file->string());
    if (class_map.channels != 1 || !class_map.same_size(out.instances))
      throw DataError(class_file->string() + ": class map is " + std::to_string(class_map.width) + "x" +
                      std::to_string(class_map.height) + " but " + file.string() + " is " +
                      std::to_string(out.instances.width) + "x" + std::to_string(out.instances.height));
    // Votes per instance; instances are few, classes fewer, so a map per instance is cheap.
    std::vector<std::map<int, int64_t>> votes(old_ids.size());
    for (size_t i = 0; i < class_map.data.size(); ++i) {
      const int32_t inst = out.instances.data[i];
      if (inst > 0 && class_map.data[i] != 0) ++votes[inst - 1][class_map.data[i]];
    }
    out.classes.assign(old_ids.size(), 0);
    for (size_t k = 0; k < votes.size(); ++k) {
      int64_t best = 0;
      for (const auto& [cls, n] : votes[k])
        if (n > best) {  // ascending class order: ties go to the lower class
          best = n;
          out.classes[k] = cls;
        }
    }
    out.classed = true;
  }
  return out;
}

// Ground truth is either label-map files (one file, or a folder holding them) or a dataset.
struct GroundTruthSource {
  std::vector<fs::path> files;             // label-map mode
  std::unique_ptr<data::Dataset> dataset;  // dataset mode
  std::vector<std::string> keys;           // match key per item
  data::ClassNames class_names;            // from the dataset (index 0 = background)
};

GroundTruthSource open_ground_truth(const std::string& path, const std::string& format) {
  GroundTruthSource gt;
  if (!fs::exists(path)) throw IoError(path + ": no such file or folder");
  if (fs::is_regular_file(path)) {
    gt.files.push_back(path);
  } else if (format == "labels" || (format == "auto" && !label_files_in(path).empty())) {
    gt.files = label_files_in(path);
    if (gt.files.empty()) throw DataError(path + ": no label maps (.png, .tif, .tiff, .npy) in this folder");
  } else {
    gt.dataset = data::open_dataset(path, format);
    gt.class_names = gt.dataset->class_names();
    for (size_t i = 0; i < gt.dataset->size(); ++i) gt.keys.push_back(gt.dataset->name(i));
    return gt;
  }
  for (const auto& f : gt.files) gt.keys.push_back(match_key(f.stem().string()));
  return gt;
}

LoadedInstances load_ground_truth(const GroundTruthSource& gt, size_t i) {
  if (!gt.dataset) return load_label_file(gt.files[i]);
  data::Sample s = gt.dataset->get(i);
  LoadedInstances out;
  out.instances = std::move(s.instances);
  out.classes = std::move(s.classes);
  out.classed = s.classed;
  return out;
}

std::string describe_ground_truth(const GroundTruthSource& gt, size_t i) {
  return gt.dataset ? gt.dataset->name(i) + " of the ground-truth dataset" : gt.files[i].string();
}

// --classes: names separated by commas, or a number of unnamed classes.
std::vector<std::string> parse_class_list(const std::string& text) {
  std::vector<std::string> names;
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    const int n = std::stoi(text);
    if (n < 1 || n > 1000) throw UsageError("--classes " + text + ": expected 1..1000 classes");
    for (int c = 1; c <= n; ++c) names.push_back("class" + std::to_string(c));
    return names;
  }
  std::stringstream ss(text);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) throw UsageError("--classes '" + text + "': empty class name");
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw UsageError("--classes '" + text + "': class '" + name + "' given twice");
    names.push_back(name);
  }
  return names;
}

std::string number(double v, int precision = 10) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

nlohmann::json json_number(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

// Names may end up as CSV column names: keep them free of separators.
std::string column_safe(std::string s) {
  for (char& c : s)
    if (c == ',' || c == ' ' || c == '"' || c == '\n') c = '_';
  return s;
}

std::string per_image_csv(const metrics::Evaluation& ev, const std::vector<std::string>& classes) {
  std::ostringstream out;
  out << "image,gt_instances,pred_instances,dice,iou,aji,aji_plus,dq,sq,pq,tp,fp,fn,object_f1";
  for (const auto& c : classes) {
    const std::string n = column_safe(c);
    out << ",pq_" << n << ",f1_" << n << ",gt_count_" << n << ",pred_count_" << n;
  }
  out << '\n';
  for (const auto& e : ev.images()) {
    out << column_safe(e.name) << ',' << e.gt_instances << ',' << e.pred_instances << ','
        << number(e.pixels.dice()) << ',' << number(e.pixels.iou()) << ',' << number(e.aji) << ','
        << number(e.aji_plus) << ',' << number(e.pq.dq()) << ',' << number(e.pq.sq()) << ','
        << number(e.pq.pq()) << ',' << e.pq.tp << ',' << e.pq.fp << ',' << e.pq.fn << ','
        << number(e.detection.f1());
    for (size_t c = 0; c < classes.size(); ++c)
      out << ',' << number(e.class_pq[c].pq()) << ',' << number(e.class_detection[c].f1()) << ','
          << e.gt_counts[c] << ',' << e.pred_counts[c];
    out << '\n';
  }
  return out.str();
}

nlohmann::json summary_json(const metrics::EvaluationSummary& s, const metrics::EvaluationOptions& options,
                            const std::vector<std::string>& classes) {
  using nlohmann::json;
  json j;
  j["images"] = s.images;
  j["options"] = {
      {"pq_match_iou", options.pq_match_iou},
      {"f1_match_iou", options.f1_match_iou},
      {"max_detections", options.max_detections > 0 ? json(options.max_detections) : json("unlimited")}};
  auto mean = [](const metrics::MeanOverImages& m) {
    return json{{"mean", json_number(m.mean)}, {"images", m.counted}};
  };
  j["binary"] = {
      {"dice", mean(s.dice)},
      {"iou", mean(s.iou)},
      {"aji", mean(s.aji)},
      {"aji_plus", mean(s.aji_plus)},
      {"dq", mean(s.dq)},
      {"sq", mean(s.sq)},
      {"pq", mean(s.pq)},
      {"pixel_dice_pooled", json_number(s.pixels.dice())},
      {"object_f1",
       {{"f1", json_number(s.detection.f1())},
        {"precision", json_number(s.detection.precision())},
        {"recall", json_number(s.detection.recall())},
        {"tp", s.detection.tp},
        {"fp", s.detection.fp},
        {"fn", s.detection.fn}}},
      {"map", json_number(s.map.map)},
      {"map50", json_number(s.map.map50)},
      {"map75", json_number(s.map.map75)},
      {"count_r2", json_number(s.count_r2)},
  };
  if (!classes.empty()) {
    json per_class = json::object();
    for (size_t c = 0; c < classes.size(); ++c) {
      const auto& k = s.classes[c];
      per_class[classes[c]] = {{"id", c + 1},
                               {"pq_plus", json_number(k.pq_plus)},
                               {"dq", json_number(k.pq.dq())},
                               {"sq", json_number(k.pq.sq())},
                               {"tp", k.pq.tp},
                               {"fp", k.pq.fp},
                               {"fn", k.pq.fn},
                               {"object_f1", json_number(k.detection.f1())},
                               {"ap", json_number(k.ap)},
                               {"ap50", json_number(k.ap50)},
                               {"ap75", json_number(k.ap75)},
                               {"pixel_iou", json_number(k.pixel_iou)},
                               {"pixel_dice", json_number(k.pixel_dice)},
                               {"count_r2", json_number(k.count_r2)}};
    }
    j["classes"] = {{"names", classes},
                    {"mpq_plus", json_number(s.mpq_plus)},
                    {"mean_object_f1", json_number(s.mean_f1)},
                    {"map", json_number(s.class_map)},
                    {"map50", json_number(s.class_map50)},
                    {"map75", json_number(s.class_map75)},
                    {"miou", json_number(s.miou)},
                    {"mean_count_r2", json_number(s.mean_count_r2)},
                    {"per_class", per_class}};
  }
  return j;
}

void print_table(std::ostream& out, const metrics::EvaluationSummary& s,
                 const metrics::EvaluationOptions& options, const std::vector<std::string>& classes) {
  auto row = [&](const std::string& name, double v, const std::string& note) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "  %-14s %8s  %s\n", name.c_str(), number(v, 4).c_str(), note.c_str());
    out << buf;
  };
  auto over = [](const metrics::MeanOverImages& m) {
    return "mean of " + std::to_string(m.counted) + " images";
  };
  out << "images: " << s.images << "   max detections per image (mAP): "
      << (options.max_detections > 0 ? std::to_string(options.max_detections) : std::string("unlimited"))
      << '\n';
  row("Dice", s.dice.mean, over(s.dice));
  row("IoU", s.iou.mean, over(s.iou));
  row("AJI", s.aji.mean, over(s.aji));
  row("AJI+", s.aji_plus.mean, over(s.aji_plus));
  row("DQ", s.dq.mean, over(s.dq));
  row("SQ", s.sq.mean, over(s.sq));
  row("PQ", s.pq.mean, over(s.pq));
  row("object F1", s.detection.f1(), "pooled, IoU >= " + number(options.f1_match_iou, 3));
  row("mAP", s.map.map, "IoU 0.50:0.95, class-agnostic");
  row("AP50", s.map.map50, "");
  row("count R2", s.count_r2, "instances per image");
  if (classes.empty()) return;
  row("mPQ+", s.mpq_plus, "counts pooled over images (CoNIC)");
  row("mean F1", s.mean_f1, "over classes");
  row("class mAP", s.class_map, "over classes with ground truth");
  row("mIoU", s.miou, "pixels pooled");
  row("mean R2", s.mean_count_r2, "per-class counts");
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-18s %8s %8s %8s %8s %8s %8s\n", "class", "PQ+", "F1", "AP", "IoU", "R2",
                "GT");
  out << buf;
  for (size_t c = 0; c < classes.size(); ++c) {
    const auto& k = s.classes[c];
    std::snprintf(buf, sizeof buf, "  %-18s %8s %8s %8s %8s %8s %8lld\n", classes[c].substr(0, 18).c_str(),
                  number(k.pq_plus, 4).c_str(), number(k.detection.f1(), 4).c_str(), number(k.ap, 4).c_str(),
                  number(k.pixel_iou, 4).c_str(), number(k.count_r2, 4).c_str(),
                  static_cast<long long>(k.pq.tp + k.pq.fn));
    out << buf;
  }
}

std::string name_list(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 5; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 5) s += ", ... (" + std::to_string(names.size() - 5) + " more)";
  return s;
}

struct EvalArgs {
  std::string pred, gt, gt_format = "auto", classes, out;
  double pq_iou = 0.5, f1_iou = 0.5;
  int max_dets = 0;
  bool allow_missing = false;
};

int run_eval(const EvalArgs& a) {
  // Predictions by match key.
  if (!fs::exists(a.pred)) throw IoError(a.pred + ": no such file or folder");
  const bool single_pred = fs::is_regular_file(a.pred);
  std::vector<fs::path> pred_files = single_pred ? std::vector<fs::path>{a.pred} : label_files_in(a.pred);
  if (pred_files.empty())
    throw DataError(a.pred + ": no label maps (.png, .tif, .tiff, .npy) in this folder");
  std::map<std::string, fs::path> pred_by_key;
  for (const auto& f : pred_files) {
    auto [it, fresh] = pred_by_key.emplace(match_key(f.stem().string()), f);
    if (!fresh)
      throw DataError(a.pred + ": " + it->second.filename().string() + " and " + f.filename().string() +
                      " both match image '" + it->first + "'");
  }

  GroundTruthSource gt = open_ground_truth(a.gt, a.gt_format);
  std::map<std::string, size_t> gt_by_key;
  for (size_t i = 0; i < gt.keys.size(); ++i)
    if (!gt_by_key.emplace(gt.keys[i], i).second)
      throw DataError(a.gt + ": two ground-truth images match the name '" + gt.keys[i] + "'");
  if (single_pred && fs::is_regular_file(a.gt)) {
    // Two single files: the user named the pair, whatever the names.
    pred_by_key = {{gt.keys[0], pred_files[0]}};
  }

  std::vector<std::pair<std::string, size_t>> pairs;  // key, ground-truth index
  std::vector<std::string> missing_pred, missing_gt;
  for (size_t i = 0; i < gt.keys.size(); ++i) {
    if (pred_by_key.count(gt.keys[i]))
      pairs.push_back({gt.keys[i], i});
    else if (!single_pred)
      missing_pred.push_back(gt.keys[i]);
  }
  for (const auto& [key, file] : pred_by_key)
    if (!gt_by_key.count(key)) missing_gt.push_back(file.filename().string());
  if (!missing_pred.empty() || !missing_gt.empty()) {
    std::string msg;
    if (!missing_pred.empty())
      msg += std::to_string(missing_pred.size()) + " ground-truth image(s) have no prediction in " + a.pred +
             ": " + name_list(missing_pred);
    if (!missing_gt.empty())
      msg += std::string(msg.empty() ? "" : "; ") + std::to_string(missing_gt.size()) +
             " prediction(s) have no ground truth in " + a.gt + ": " + name_list(missing_gt);
    if (!a.allow_missing) throw DataError(msg + " (use --allow-missing to evaluate the matched images only)");
    log::warn(msg + "; evaluating the " + std::to_string(pairs.size()) + " matched image(s) only");
  }
  if (pairs.empty())
    throw DataError("no prediction in " + a.pred + " matches a ground-truth image in " + a.gt);

  // Classes: --classes, else the dataset's names when the predictions carry classes.
  std::vector<std::string> classes;
  if (!a.classes.empty()) classes = parse_class_list(a.classes);

  // Whether classes can be evaluated depends on every prediction: decide from the sidecars' presence
  // (cheap), then stream the images so memory stays at one pair whatever the dataset size.
  bool preds_classed = true;
  for (const auto& [key, gi] : pairs) preds_classed = preds_classed && has_class_sidecar(pred_by_key.at(key));
  if (classes.empty() && gt.class_names.size() > 1) {
    if (preds_classed)
      classes.assign(gt.class_names.begin() + 1, gt.class_names.end());
    else
      log::info("predictions carry no classes: class-agnostic metrics only");
  }

  metrics::EvaluationOptions options;
  options.num_classes = static_cast<int>(classes.size());
  options.pq_match_iou = a.pq_iou;
  options.f1_match_iou = a.f1_iou;
  options.max_detections = a.max_dets;
  metrics::Evaluation ev(options);
  {
    Progress progress("evaluating", static_cast<int64_t>(pairs.size()), "images");
    for (const auto& [key, gi] : pairs) {
      const fs::path& pred_file = pred_by_key.at(key);
      const LoadedInstances p = load_label_file(pred_file);
      const LoadedInstances g = load_ground_truth(gt, gi);
      if (!classes.empty() && !p.classed)
        throw DataError(pred_file.string() + ": no classes (expected " + pred_file.stem().string() +
                        ".csv with a class column or a " + kClassMapSuffix + " class map) while " +
                        std::to_string(classes.size()) + " classes are evaluated");
      if (!classes.empty() && !g.classed)
        throw DataError(describe_ground_truth(gt, gi) + ": ground truth has no classes while " +
                        std::to_string(classes.size()) + " classes are evaluated");
      try {
        ev.add_image(key, {&g.instances, &g.classes, nullptr}, {&p.instances, &p.classes, &p.scores});
      } catch (const DataError& e) {
        throw DataError(pred_file.string() + " vs " + describe_ground_truth(gt, gi) + ": " + e.what());
      }
      progress.advance();
    }
  }
  const metrics::EvaluationSummary summary = ev.summary();
  nlohmann::json j = summary_json(summary, options, classes);
  j["pred"] = a.pred;
  j["gt"] = a.gt;
  j["missing_predictions"] = missing_pred;
  j["unmatched_predictions"] = missing_gt;
  if (!a.out.empty()) {
    write_file_atomic((fs::path(a.out) / "per_image.csv").string(), per_image_csv(ev, classes));
    write_file_atomic((fs::path(a.out) / "summary.json").string(), j.dump(2) + "\n");
    log::info("wrote ", (fs::path(a.out) / "per_image.csv").string(), " and ",
              (fs::path(a.out) / "summary.json").string());
  }
  print_table(std::cout, summary, options, classes);
  return 0;
}

CommandRegistration reg(
    "eval", "Score predicted instance maps against ground truth (Dice, AJI, PQ, mPQ+, F1, mAP, R2)",
    [](CLI::App& app) {
      auto a = std::make_shared<EvalArgs>();
      app.add_option("--pred", a->pred, "Predicted instance map, or a folder of them (.png/.tif/.tiff/.npy)")
          ->required();
      app.add_option("--gt", a->gt, "Ground-truth instance map, folder of them, or a dataset split")
          ->required();
      app.add_option("--gt-format", a->gt_format,
                     "How to read --gt: auto, labels (a folder of label maps) or a dataset format "
                     "(monuseg, consep, lizard, conic, pannuke, folder)");
      app.add_option("--classes", a->classes,
                     "Class names for ids 1..C, comma-separated, or a number of classes (default: the "
                     "dataset's classes when the predictions carry classes)");
      app.add_option("--out", a->out, "Folder for per_image.csv and summary.json");
      app.add_option("--pq-iou", a->pq_iou, "PQ / mPQ+ match threshold (IoU > value)")
          ->check(CLI::Range(0.0, 0.999999));
      app.add_option("--f1-iou", a->f1_iou, "Object F1 match threshold (IoU >= value)")
          ->check(CLI::Range(0.0, 1.0));
      app.add_option(
             "--max-dets", a->max_dets,
             "mAP: detections kept per image and class, by score (0 = all; COCO's 100 truncates dense tiles)")
          ->check(CLI::NonNegativeNumber);
      app.add_flag("--allow-missing", a->allow_missing,
                   "Evaluate matched images only when some have no counterpart (reported either way)");
      return [a]() { return run_eval(*a); };
    });

}  // namespace
}  // namespace nucleisam::cli
