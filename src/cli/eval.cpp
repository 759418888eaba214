// `nucleisam eval`: scores predicted instance maps against ground truth with every metric of
// src/metrics (Dice, IoU, AJI, AJI+, PQ, object F1, COCO mAP, count R^2, and per class mPQ+, F1,
// AP, IoU, R^2), writes per_image.csv and summary.json atomically and prints a table. The work is
// eval::evaluate (src/eval); this file parses the options and prints.
#include <algorithm>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/eval/evaluate.h"

namespace nucleisam::cli {
namespace {

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

struct EvalArgs {
  eval::EvalRequest request;
  std::string classes, out;
};

CommandRegistration reg(
    "eval", "Score predicted instance maps against ground truth (Dice, AJI, PQ, mPQ+, F1, F_d, F_c, mAP, R2)",
    [](CLI::App& app) {
      auto a = std::make_shared<EvalArgs>();
      eval::EvalRequest& r = a->request;
      app.add_option("--pred", r.pred, "Predicted instance map, or a folder of them (.png/.tif/.tiff/.npy)")
          ->required();
      app.add_option("--gt", r.gt, "Ground-truth instance map, folder of them, or a dataset split")
          ->required();
      app.add_option("--gt-format", r.gt_format,
                     "How to read --gt: auto, labels (a folder of label maps) or a dataset format "
                     "(monuseg, consep, lizard, conic, pannuke, folder)");
      app.add_option("--classes", a->classes,
                     "Class names for ids 1..C, comma-separated, a number of classes, or none (class-agnostic "
                     "scores only; default: the dataset's classes when the predictions carry classes)");
      app.add_option("--out", a->out, "Folder for per_image.csv and summary.json");
      app.add_option("--pq-iou", r.options.pq_match_iou, "PQ / mPQ+ match threshold (IoU > value)")
          ->check(CLI::Range(0.0, 0.999999));
      app.add_option("--f1-iou", r.options.f1_match_iou, "Object F1 match threshold (IoU >= value)")
          ->check(CLI::Range(0.0, 1.0));
      app.add_option("--pair-radius", r.options.pair_radius,
                     "F_d / F_c: centroids paired within this many pixels (HoVer-Net: 12 at 0.25 um/px)")
          ->check(CLI::NonNegativeNumber);
      app.add_option(
             "--max-dets", r.options.max_detections,
             "mAP: detections kept per image and class, by score (0 = all; COCO's 100 truncates dense tiles)")
          ->check(CLI::NonNegativeNumber);
      app.add_option(
          "--groups", r.groups,
          "CSV with 'image' and 'group' (or 'tissue') columns: PanNuke's mPQ / bPQ average each "
          "group's images, then the groups (default: the dataset's tissue types when it has them)");
      app.add_flag("--allow-missing", r.allow_missing,
                   "Evaluate matched images only when some have no counterpart (reported either way)");
      return [a]() {
        if (a->classes == "none") a->request.class_agnostic = true;
        else if (!a->classes.empty()) a->request.classes = parse_class_list(a->classes);
        const eval::EvalReport report = eval::evaluate(a->request);
        if (!a->out.empty()) {
          remove_stale_temporaries(a->out);  // of an earlier run killed mid-write
          eval::write_report(report, a->out);
        }
        eval::print_table(std::cout, report);
        return 0;
      };
    });

}  // namespace
}  // namespace nucleisam::cli
