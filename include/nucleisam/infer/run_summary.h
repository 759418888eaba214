// The table of a folder run (`segment_summary.csv` in the output folder): one row per image or slide with
// what was done to it and what was found, so that a run over a hundred tiles answers "how many
// nuclei, of which classes, how large, at which resolution" without a script. Rows are keyed by
// the image's output stem and outlive the run: a resumed run keeps the rows of the images an
// earlier run finished (or rebuilds them from their nucleus tables when the summary was lost) and
// the rows of images of other runs into the same folder.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nucleisam/nucleus.h"

namespace nucleisam::infer {

inline constexpr const char* kRunSummaryFile = "segment_summary.csv";

// One image's row: column name -> value ("" or missing = blank). The columns, in this order:
//  image, stem, status ("segmented" | "failed"), width, height,
//  mpp (the resolution the image was taken to be at), mpp_source ("option": --mpp; "file": what the
//  file records; "dataset": what its dataset states; "nuclei": judged from a sample's nuclei;
//  "model": taken to be at the method's resolution, unjudged: estimation off, or a sample the
//  method could not judge from), method,
//  nuclei, nuclei_<class> for each class of a classifying method, tissue_mm2 and nuclei_per_mm2
//  (slides: of their detected tissue or mask), mean_area_um2, median_diameter_um (both blank when
//  the resolution is unknown), mean_score, stains ("normalised", "as is", "not estimated: <why>",
//  "off"), seconds, error;
// then any other column a summary already held (written by another version), as it was.
using RunSummaryRow = std::map<std::string, std::string>;

// Fills row's nuclei, nuclei_<class>, mean_area_um2, median_diameter_um and mean_score from one
// image's nuclei at `mpp` um/px (0: unknown, sizes blank). class_names: the method's classes
// (index = class id, 0 unused; empty for an unclassifying method): every named class gets a
// count, 0 included; nuclei of class 0 from a classifying method count as "nuclei_unclassified",
// and classes a nucleus names beyond class_names are counted under its own name. Returns the
// class columns written, in class-id order (for RunSummary::set).
std::vector<std::string> describe_nuclei(const std::vector<Nucleus>& nuclei,
                                         const std::vector<std::string>& class_names, double mpp,
                                         RunSummaryRow& row);

// The row of a finished slide, from its <stem>_summary.json (infer/slide_run.h). Throws DataError
// naming the file when it is not such a summary.
RunSummaryRow slide_summary_row(const std::string& summary_json);

class RunSummary {
 public:
  // Loads the rows of `path` when it exists. A file that is not such a table (no "stem" column,
  // unreadable CSV) is not an error: it is logged and will be written anew, since every row can be
  // rebuilt.
  explicit RunSummary(std::string path);

  const std::string& path() const { return path_; }
  // The row of `stem`; null when there is none.
  const RunSummaryRow* find(const std::string& stem) const;
  // Sets the row of `stem` (its "stem" column too), replacing any earlier one. class_columns: the
  // row's class columns in the order they are to appear (describe_nuclei's), when not yet placed.
  void set(const std::string& stem, RunSummaryRow row, const std::vector<std::string>& class_columns = {});
  // Takes, from the file as it is now, the row of every stem not in `own`: what other runs into the
  // same folder (another folder's images, other shards' slides) wrote since this table was loaded.
  // A file that is missing or not such a table changes nothing.
  void reload_others(const std::vector<std::string>& own);
  // The table: the rows of `first` (stems, in that order, those that have a row), then every other
  // row in the order it was loaded or set.
  std::string csv(const std::vector<std::string>& first) const;
  // Writes csv(first) to path() atomically.
  void write(const std::vector<std::string>& first) const;

 private:
  std::string path_;
  std::vector<std::string> order_;  // stems, first loaded or set first
  std::map<std::string, RunSummaryRow> rows_;
  std::vector<std::string> ordered_class_columns_;  // nuclei_<class> in a method's class order (set)
  std::vector<std::string> class_columns_;          // nuclei_<class> as loaded or set
  std::vector<std::string> extra_columns_;  // columns of a loaded file that are not ours, in its order
};

}  // namespace nucleisam::infer
