// evaluate(): pairs predictions with ground truth (files or a dataset split) and runs
// metrics::Evaluation over them.
#include "nucleisam/eval/evaluate.h"

#include <filesystem>
#include <map>
#include <memory>

#include "eval/label_files.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/io/csv.h"
#include "nucleisam/log.h"
#include "nucleisam/progress.h"

namespace fs = std::filesystem;

namespace nucleisam::eval {
namespace {

// A folder holding a dataset stored as stacked arrays (PanNuke, CoNIC): its .npy files are whole
// datasets, not label maps.
bool stacked_arrays(const std::string& path) {
  try {
    const std::string format = data::detect_format(path);
    return format == "pannuke" || format == "conic";
  } catch (const DataError&) {
    return false;
  }
}

// Ground truth is either label-map files (one file, or a folder holding them) or a dataset.
class GroundTruth {
 public:
  GroundTruth(const std::string& path, const std::string& format) {
    if (!fs::exists(path)) throw IoError(path + ": no such file or folder");
    if (fs::is_regular_file(path)) {
      files_.push_back(path);
    } else if (format == "labels" ||
               (format == "auto" && !stacked_arrays(path) && !label_files_in(path).empty())) {
      files_ = label_files_in(path);
      if (files_.empty()) throw DataError(path + ": no label maps (.png, .tif, .tiff, .npy) in this folder");
    } else {
      dataset_ = data::open_dataset(path, format);
      class_names_ = dataset_->class_names();
      for (size_t i = 0; i < dataset_->size(); ++i) keys_.push_back(dataset_->name(i));
      return;
    }
    for (const auto& f : files_) keys_.push_back(match_key(fs::path(f).stem().string()));
  }

  const std::vector<std::string>& keys() const { return keys_; }
  // Index 0 = background; empty unless the ground truth is a classed dataset.
  const data::ClassNames& class_names() const { return class_names_; }

  LabelledInstances load(size_t i) const {
    if (!dataset_) return read_labelled_instances(files_[i]);
    data::Sample s = dataset_->get(i);
    LabelledInstances out;
    out.instances = std::move(s.instances);
    out.classes = std::move(s.classes);
    out.classed = s.classed;
    out.group = std::move(s.group);
    return out;
  }

  std::string describe(size_t i) const {
    return dataset_ ? dataset_->name(i) + " of the ground-truth dataset" : files_[i];
  }

 private:
  std::vector<std::string> files_;          // label-map mode
  std::unique_ptr<data::Dataset> dataset_;  // dataset mode
  std::vector<std::string> keys_;           // match key per item
  data::ClassNames class_names_;
};

std::string name_list(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 5; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 5) s += ", ... (" + std::to_string(names.size() - 5) + " more)";
  return s;
}

metrics::EvaluationOptions with_classes(metrics::EvaluationOptions options, const std::vector<std::string>& classes) {
  options.num_classes = static_cast<int>(classes.size());
  return options;
}

void add_pair(metrics::Evaluation& ev, const std::string& name, const LabelledInstances& g,
              const LabelledInstances& p, const std::string& group) {
  ev.add_image(name, {&g.instances, &g.classes, nullptr}, {&p.instances, &p.classes, &p.scores}, group);
}

// The groups CSV: a header naming an `image` column and a `group` (or `tissue`) column; images
// by their match key.
std::map<std::string, std::string> read_groups(const std::string& path) {
  const std::vector<io::CsvRecord> rows = io::read_csv(path);
  if (rows.empty()) throw DataError(path + ": empty groups file");
  int image_col = -1, group_col = -1;
  for (size_t c = 0; c < rows[0].fields.size(); ++c) {
    const std::string& h = rows[0].fields[c];
    if (h == "image") image_col = static_cast<int>(c);
    if (h == "group" || h == "tissue") group_col = static_cast<int>(c);
  }
  if (image_col < 0 || group_col < 0)
    throw DataError(path + ": the header must name an 'image' and a 'group' (or 'tissue') column");
  std::map<std::string, std::string> groups;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::string key = match_key(fs::path(rows[r].field(image_col, path)).stem().string());
    const std::string& group = rows[r].field(group_col, path);
    const auto [it, fresh] = groups.emplace(key, group);
    if (!fresh && it->second != group)
      throw DataError(path + ": line " + std::to_string(rows[r].line) + ": image '" + key +
                      "' is given two groups");
  }
  return groups;
}

EvalReport finish(const metrics::Evaluation& ev, const std::vector<std::string>& classes) {
  EvalReport report;
  report.classes = classes;
  report.options = ev.options();
  report.images = ev.images();
  report.summary = ev.summary();
  return report;
}

}  // namespace

EvalReport evaluate(const std::vector<ImagePair>& pairs, const std::vector<std::string>& classes,
                    const metrics::EvaluationOptions& options) {
  metrics::Evaluation ev(with_classes(options, classes));
  for (const ImagePair& pair : pairs) {
    if (!classes.empty() && (!pair.gt.classed || !pair.pred.classed))
      throw DataError(pair.name + ": " + (pair.gt.classed ? "prediction" : "ground truth") + " has no classes while " +
                      std::to_string(classes.size()) + " classes are evaluated");
    try {
      add_pair(ev, pair.name, pair.gt, pair.pred, pair.gt.group);
    } catch (const DataError& e) {
      throw DataError(pair.name + ": " + e.what());
    }
  }
  return finish(ev, classes);
}

EvalReport evaluate(const EvalRequest& request) {
  const EvalRequest& a = request;
  // Predictions by match key.
  if (!fs::exists(a.pred)) throw IoError(a.pred + ": no such file or folder");
  const bool single_pred = fs::is_regular_file(a.pred);
  std::vector<std::string> pred_files = single_pred ? std::vector<std::string>{a.pred} : label_files_in(a.pred);
  if (pred_files.empty())
    throw DataError(a.pred + ": no label maps (.png, .tif, .tiff, .npy) in this folder");
  std::map<std::string, fs::path> pred_by_key;
  for (const auto& f : pred_files) {
    auto [it, fresh] = pred_by_key.emplace(match_key(fs::path(f).stem().string()), f);
    if (!fresh)
      throw DataError(a.pred + ": " + it->second.filename().string() + " and " + fs::path(f).filename().string() +
                      " both match image '" + it->first + "'");
  }

  GroundTruth gt(a.gt, a.gt_format);
  const std::vector<std::string>& keys = gt.keys();
  std::map<std::string, size_t> gt_by_key;
  for (size_t i = 0; i < keys.size(); ++i)
    if (!gt_by_key.emplace(keys[i], i).second)
      throw DataError(a.gt + ": two ground-truth images match the name '" + keys[i] + "'");
  if (single_pred && fs::is_regular_file(a.gt)) {
    // Two single files: the user named the pair, whatever the names.
    pred_by_key = {{keys[0], pred_files[0]}};
  }

  std::vector<std::pair<std::string, size_t>> pairs;  // key, ground-truth index
  EvalReport report;
  std::vector<std::string>& missing_pred = report.missing_predictions;
  std::vector<std::string>& missing_gt = report.unmatched_predictions;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (pred_by_key.count(keys[i]))
      pairs.push_back({keys[i], i});
    else if (!single_pred)
      missing_pred.push_back(keys[i]);
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

  // Classes: the requested ones, else the dataset's names when the predictions carry classes.
  // Whether classes can be evaluated depends on every prediction: decide from the sidecars'
  // presence (cheap), then stream the images so memory stays at one pair.
  std::vector<std::string> classes = a.class_agnostic ? std::vector<std::string>{} : a.classes;
  bool preds_classed = true;
  for (const auto& [key, gi] : pairs)
    preds_classed = preds_classed && has_class_sidecar(pred_by_key.at(key).string());
  const bool classes_from_dataset = classes.empty() && !a.class_agnostic && gt.class_names().size() > 1;
  if (classes_from_dataset) {
    if (preds_classed)
      classes.assign(gt.class_names().begin() + 1, gt.class_names().end());
    else
      log::info("predictions carry no classes: class-agnostic metrics only");
  }

  std::map<std::string, std::string> groups;
  if (!a.groups.empty()) {
    groups = read_groups(a.groups);
    for (const auto& [key, gi] : pairs)
      if (!groups.count(key)) throw DataError(a.groups + ": no group for image '" + key + "'");
  }

  metrics::Evaluation ev(with_classes(a.options, classes));
  {
    Progress progress("evaluating", static_cast<int64_t>(pairs.size()), "images");
    for (const auto& [key, gi] : pairs) {
      const fs::path& pred_file = pred_by_key.at(key);
      const LabelledInstances p = read_labelled_instances(pred_file.string());
      const LabelledInstances g = gt.load(gi);
      if (!classes.empty() && !p.classed)
        throw DataError(pred_file.string() + ": no classes (expected " + pred_file.stem().string() +
                        ".csv with a class column or a " + kClassMapSuffix + " class map) while " +
                        std::to_string(classes.size()) + " classes are evaluated");
      if (!classes.empty() && !g.classed)
        throw DataError(gt.describe(gi) + ": ground truth has no classes while " +
                        std::to_string(classes.size()) + " classes are evaluated");
      if (classes_from_dataset && !classes.empty())
        for (const auto& [id, name] : p.class_names)
          if (id >= 1 && id <= static_cast<int>(classes.size()) && name != classes[id - 1])
            throw DataError(pred_file.string() + ": class " + std::to_string(id) + " is '" + name +
                            "' there but '" + classes[id - 1] + "' in " + a.gt +
                            " (a model of other classes: --classes none scores without classes)");
      try {
        add_pair(ev, key, g, p, groups.empty() ? g.group : groups.at(key));
      } catch (const DataError& e) {
        throw DataError(pred_file.string() + " vs " + gt.describe(gi) + ": " + e.what());
      }
      progress.advance();
    }
  }
  EvalReport done = finish(ev, classes);
  done.pred = a.pred;
  done.gt = a.gt;
  done.missing_predictions = std::move(report.missing_predictions);
  done.unmatched_predictions = std::move(report.unmatched_predictions);
  return done;
}

}  // namespace nucleisam::eval
