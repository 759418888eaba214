// Evaluation as a library: predictions and ground truth in, a report out. The `eval` command, the
// trainer's validation and the benchmarks call the same code. Two entry points:
//  - evaluate(EvalRequest): predictions are label-map files (one file or a folder), ground truth
//    is label-map files or a dataset split; files are paired by name (match_key) and read one
//    pair at a time, so memory stays at one image pair whatever the dataset size;
//  - evaluate(pairs, ...): images already in memory (a trainer's validation predictions).
// File naming rules and the sidecar formats are in docs/metrics.md.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "nucleisam/metrics/evaluation.h"
#include "nucleisam/raster.h"

namespace nucleisam::eval {

// One side of an evaluated image.
struct LabelledInstances {
  LabelMap instances;          // 0 background, 1..N consecutive
  std::vector<int> classes;    // class of instance k + 1; empty when unclassified
  std::vector<double> scores;  // score of instance k + 1; empty when absent (all 1)
  bool classed = false;
  std::string group;  // e.g. tissue type, for PanNuke's averages; "" when not known
  // The names the prediction gives its class ids (segment's nucleus table), when it gives them.
  std::map<int, std::string> class_names;
};

struct ImagePair {
  std::string name;
  LabelledInstances gt, pred;
};

struct EvalRequest {
  std::string pred;                 // a label map, or a folder of them
  std::string gt;                   // a label map, a folder of them, or a dataset split
  std::string gt_format = "auto";   // auto, labels, or a dataset format (monuseg, consep, ...)
  // Names of classes 1..C. Empty: the dataset's class names when every prediction carries
  // classes (and names no class otherwise than the dataset does), else class-agnostic.
  std::vector<std::string> classes;
  bool class_agnostic = false;  // class-agnostic scores only, whatever both sides carry
  metrics::EvaluationOptions options;  // num_classes is taken from the classes
  // Evaluate the matched images only when some have no counterpart (else DataError).
  bool allow_missing = false;
  // A CSV naming each image's group (columns `image` and `group` or `tissue`) for PanNuke's
  // per-tissue averages; "" = the dataset's own groups (PanNuke's types.npy), if any.
  std::string groups;
};

struct EvalReport {
  std::string pred, gt;                 // as requested ("" for in-memory evaluations)
  std::vector<std::string> classes;     // evaluated classes 1..C (empty: class-agnostic)
  metrics::EvaluationOptions options;
  std::vector<metrics::ImageEvaluation> images;
  metrics::EvaluationSummary summary;
  std::vector<std::string> missing_predictions;    // ground-truth keys with no prediction
  std::vector<std::string> unmatched_predictions;  // prediction files with no ground truth
};

// Throws IoError / DataError naming the file for unreadable or inconsistent input, missing
// counterparts (unless allow_missing), and class information that is missing while classes are
// evaluated.
EvalReport evaluate(const EvalRequest& request);

// Images in memory. `classes` names classes 1..C (empty: class-agnostic); every side must then be
// classed. Throws DataError naming the image.
EvalReport evaluate(const std::vector<ImagePair>& pairs, const std::vector<std::string>& classes,
                    const metrics::EvaluationOptions& options = {});

// ---- files ----------------------------------------------------------------------------------

// The name an image's label map is matched by: its stem without one tool suffix ("_label",
// "_pred", "_instances", ...), so "TCGA-18_label.png" meets "TCGA-18_pred.tif".
std::string match_key(const std::string& stem);
// Label maps (.png .tif .tiff .npy, not class maps "<stem>_class.*" nor overlays) of a folder,
// sorted by name, not recursive.
std::vector<std::string> label_files_in(const std::string& folder);
// Reads a label map (relabelled 1..N) with its optional sidecars: "<stem>.csv" (id, class and/or
// score columns; for segment's "<key>_labels.tif" its "<key>_nuclei.csv") or a class map
// "<stem>_class.<ext>" (each instance takes its most frequent non-zero class, ties to the lower).
LabelledInstances read_labelled_instances(const std::string& label_file);

// ---- reports --------------------------------------------------------------------------------

// per_image.csv: one row per image (binary metrics, then PQ/F1/counts per class).
std::string per_image_csv(const EvalReport& report);
// summary.json: means, pooled counts, mAP, R^2 and per-class results, with the request's paths
// and the unmatched names. Two-space indentation, NaN as null, newline-terminated.
std::string summary_json(const EvalReport& report);
// The table `eval` prints.
void print_table(std::ostream& out, const EvalReport& report);
// Writes per_image.csv and summary.json into `folder` atomically (the folder is created).
void write_report(const EvalReport& report, const std::string& folder);

}  // namespace nucleisam::eval
