// Private to src/data/readers: one opener per format and the checks every reader shares.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "nucleisam/data/dataset.h"
#include "nucleisam/data/readers.h"

namespace nucleisam::data {

std::unique_ptr<Dataset> open_monuseg(const std::string& path);
std::unique_ptr<Dataset> open_consep(const std::string& path);
std::unique_ptr<Dataset> open_lizard(const std::string& path);
std::unique_ptr<Dataset> open_conic(const std::string& path);
std::unique_ptr<Dataset> open_pannuke(const std::string& path);
std::unique_ptr<Dataset> open_folder(const std::string& path);

// Throws DataError naming both files when the image and its labels differ in size.
void check_same_size(const Image& image, const LabelMap& labels, const std::string& image_file,
                     const std::string& label_file);

// Relabels sample.instances to 1..N and, when class_of_old_id is given, fills sample.classes from
// it. Throws DataError naming `file` when an instance has no class or a class outside
// 1..num_classes.
void finish_sample(Sample& sample, const std::map<int32_t, int>* class_of_old_id, int num_classes,
                   const std::string& file);

// Sorted regular files directly in `folder` whose lower-case extension is one of `extensions`.
std::vector<std::string> list_files(const std::string& folder, const std::vector<std::string>& extensions);
// File name without folder and extension.
std::string stem_of(const std::string& path);

}  // namespace nucleisam::data
