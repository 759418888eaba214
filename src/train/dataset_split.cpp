// Subsets and concatenations of datasets (see dataset_split.h).
#include "nucleisam/train/dataset_split.h"

#include <cmath>
#include <set>

#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/relabel.h"
#include "nucleisam/resample.h"

namespace nucleisam::train {

bool name_matches(const std::string& pattern, const std::string& name) {
  // Iterative glob with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p, ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

SubsetDataset::SubsetDataset(std::shared_ptr<const data::Dataset> base, const std::vector<std::string>& include,
                             const std::vector<std::string>& exclude, const std::string& source)
    : base_(std::move(base)) {
  std::vector<std::string> names(base_->size());
  for (size_t i = 0; i < base_->size(); ++i) names[i] = base_->name(i);
  auto any = [&names](const std::vector<std::string>& patterns, const std::string& name) {
    for (const std::string& p : patterns)
      if (name_matches(p, name)) return true;
    return false;
  };
  for (const auto* list : {&include, &exclude})
    for (const std::string& p : *list) {
      bool found = false;
      for (const std::string& n : names) found = found || name_matches(p, n);
      if (!found) throw DataError(source + ": no sample named '" + p + "' in this dataset");
    }
  for (size_t i = 0; i < names.size(); ++i)
    if ((include.empty() || any(include, names[i])) && !any(exclude, names[i])) indices_.push_back(i);
  if (indices_.empty()) throw DataError(source + ": the selection leaves no samples");
}

ConcatDataset::ConcatDataset(std::vector<std::shared_ptr<const data::Dataset>> parts) : parts_(std::move(parts)) {
  if (parts_.empty()) throw DataError("no datasets to concatenate");
  for (const auto& p : parts_) {
    const data::ClassNames& names = p->class_names();
    if (!names.empty() && class_names_.empty()) class_names_ = names;
    if (!names.empty() && names != class_names_)
      throw DataError("datasets with different classes cannot be trained together (" +
                      std::to_string(names.size()) + " vs " + std::to_string(class_names_.size()) +
                      " class names)");
    size_ += p->size();
  }
}

std::pair<size_t, size_t> ConcatDataset::locate(size_t i) const {
  for (size_t k = 0; k < parts_.size(); ++k) {
    if (i < parts_[k]->size()) return {k, i};
    i -= parts_[k]->size();
  }
  throw DataError("sample index " + std::to_string(i) + " is past the end of the concatenated datasets");
}

data::Sample ConcatDataset::get(size_t i) const {
  auto [k, j] = locate(i);
  return parts_[k]->get(j);
}

std::string ConcatDataset::name(size_t i) const {
  auto [k, j] = locate(i);
  return parts_[k]->name(j);
}

RepeatedDataset::RepeatedDataset(std::shared_ptr<const data::Dataset> base, int times)
    : base_(std::move(base)), times_(times > 0 ? static_cast<size_t>(times) : 0) {
  if (times <= 0) throw DataError("a dataset repeat must be at least 1 (got " + std::to_string(times) + ")");
}

data::Sample RepeatedDataset::get(size_t i) const {
  data::Sample s = base_->get(i % base_->size());
  s.name = name(i);
  return s;
}

std::string RepeatedDataset::name(size_t i) const {
  if (i >= size()) throw DataError("sample index " + std::to_string(i) + " is past the end of the repeated dataset");
  const size_t copy = i / base_->size();
  return base_->name(i % base_->size()) + (copy ? "#" + std::to_string(copy) : "");
}

data::Sample ClassAgnosticDataset::get(size_t i) const {
  data::Sample s = base_->get(i);
  s.classes.clear();
  s.classed = false;
  return s;
}

ResampledDataset::ResampledDataset(std::shared_ptr<const data::Dataset> base, double factor)
    : base_(std::move(base)), factor_(snap_scale_factor(factor)) {
  if (!(factor > 0) || !std::isfinite(factor))
    throw DataError("resampling factor must be a positive number, not " + std::to_string(factor));
}

data::Sample ResampledDataset::get(size_t i) const {
  data::Sample s = base_->get(i);
  if (factor_ == 1) return s;
  const double w = std::round(s.image.width * factor_), h = std::round(s.image.height * factor_);
  if (w < 1 || h < 1 || w * h > static_cast<double>(limits::kMaxImagePixels))
    throw DataError(s.name + ": " + std::to_string(s.image.width) + "x" + std::to_string(s.image.height) +
                    " resampled by " + std::to_string(factor_) + " would be " + std::to_string(static_cast<long long>(w)) +
                    "x" + std::to_string(static_cast<long long>(h)) + " pixels");
  const int width = static_cast<int>(w), height = static_cast<int>(h);
  s.image = resample_image(s.image, width, height);
  s.instances = resample_labels(s.instances, width, height);
  const std::vector<int32_t> old_ids = relabel_consecutive(s.instances, s.name);
  if (!s.classes.empty()) {
    std::vector<int> classes;
    classes.reserve(old_ids.size());
    for (int32_t id : old_ids) classes.push_back(s.classes.at(static_cast<size_t>(id) - 1));
    s.classes = std::move(classes);
  }
  return s;
}

}  // namespace nucleisam::train
