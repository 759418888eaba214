// Dataset readers: MoNuSeg, CoNSeP, Lizard, CoNIC, PanNuke and a generic folder, opened by name
// or detected from the folder layout. They read files through io (OpenCV, libtiff, matio,
// pugixml), so they live in nucleisam_data, above the standard-library data core.
#pragma once

#include <memory>
#include <string>

#include "nucleisam/data/dataset.h"

namespace nucleisam::data {

// Opens a dataset by format name ("monuseg", "consep", "lizard", "conic", "pannuke", "folder")
// or, with format "auto", by looking at the folder (detect_format). `path` is one split: e.g.
// .../monuseg/test or .../consep256/train; a dataset root that only holds split folders is
// rejected with a message listing them. Throws DataError / IoError naming the path.
std::unique_ptr<Dataset> open_dataset(const std::string& path, const std::string& format = "auto");

// The format open_dataset("auto") would pick for `path`; throws DataError when none fits.
std::string detect_format(const std::string& path);

// Class names of the supported classed formats (index 0 = background).
const ClassNames& consep_class_names();   // other, inflammatory, epithelial, spindle-shaped
const ClassNames& lizard_class_names();   // CoNIC / Lizard: neutrophil ... connective
const ClassNames& pannuke_class_names();  // neoplastic, inflammatory, connective, dead, epithelial

}  // namespace nucleisam::data
