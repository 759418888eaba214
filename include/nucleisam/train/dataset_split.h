// Training and validation sets made from datasets: a subset by sample name (hold tiles out of a
// training split for validation) and the concatenation of several datasets (MoNuSeg + CoNSeP).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nucleisam/data/dataset.h"

namespace nucleisam::train {

// True when `name` matches `pattern`, where '*' stands for any run of characters ("train_3_*").
bool name_matches(const std::string& pattern, const std::string& name);

// The samples of `base` whose names match a pattern of `include` (when non-empty) and none of
// `exclude`, in base order. Throws DataError naming `source` for a pattern that matches no sample (a
// typo would otherwise silently leak a validation tile into training) and for an empty result.
class SubsetDataset : public data::Dataset {
 public:
  SubsetDataset(std::shared_ptr<const data::Dataset> base, const std::vector<std::string>& include,
                const std::vector<std::string>& exclude, const std::string& source);
  size_t size() const override { return indices_.size(); }
  data::Sample get(size_t i) const override { return base_->get(indices_.at(i)); }
  std::string name(size_t i) const override { return base_->name(indices_.at(i)); }
  const data::ClassNames& class_names() const override { return base_->class_names(); }
  std::string format() const override { return base_->format(); }

 private:
  std::shared_ptr<const data::Dataset> base_;
  std::vector<size_t> indices_;
};

// Several datasets one after the other. Every part that has classes must have the same class names
// (DataError otherwise); class-agnostic parts (no class names) may join them: the concatenation has
// the classed parts' names, and the samples of a class-agnostic part keep Sample::classed false, so
// a type head learns only from the classed ones (train/objective.h).
class ConcatDataset : public data::Dataset {
 public:
  explicit ConcatDataset(std::vector<std::shared_ptr<const data::Dataset>> parts);
  size_t size() const override { return size_; }
  data::Sample get(size_t i) const override;
  std::string name(size_t i) const override;
  const data::ClassNames& class_names() const override { return class_names_; }

 private:
  std::pair<size_t, size_t> locate(size_t i) const;
  std::vector<std::shared_ptr<const data::Dataset>> parts_;
  data::ClassNames class_names_;
  size_t size_ = 0;
};

// Every sample of `base` `times` times in a row of copies (index k * base.size() + i is sample i):
// weights one dataset against another in a concatenation. The trainer draws a different crop and
// augmentation for each copy. Names get "#k" for copies after the first.
class RepeatedDataset : public data::Dataset {
 public:
  RepeatedDataset(std::shared_ptr<const data::Dataset> base, int times);
  size_t size() const override { return base_->size() * times_; }
  data::Sample get(size_t i) const override;
  std::string name(size_t i) const override;
  const data::ClassNames& class_names() const override { return base_->class_names(); }
  std::string format() const override { return base_->format(); }

 private:
  std::shared_ptr<const data::Dataset> base_;
  size_t times_;
};

// `base` with its classes dropped: every nucleus is just a nucleus, so a classed data set (CoNSeP)
// can train a class-agnostic model together with an unclassed one (MoNuSeg).
class ClassAgnosticDataset : public data::Dataset {
 public:
  explicit ClassAgnosticDataset(std::shared_ptr<const data::Dataset> base) : base_(std::move(base)) {}
  size_t size() const override { return base_->size(); }
  data::Sample get(size_t i) const override;
  std::string name(size_t i) const override { return base_->name(i); }
  const data::ClassNames& class_names() const override { return none_; }
  std::string format() const override { return base_->format(); }

 private:
  std::shared_ptr<const data::Dataset> base_;
  data::ClassNames none_;
};

// `base` at another resolution: every sample resampled by `factor` (target pixels per source
// pixel: the data's microns per pixel over the model's, e.g. 2 for 20x data and a 40x model),
// snapped to a whole number within 3% (snap_scale_factor), so data from scanners at different
// magnifications train one model at one resolution. Images by area (shrinking) or bilinear
// (enlarging), instances by the nearest pixel centre; nuclei left without a pixel are dropped with
// their classes, the rest renumbered 1..N. Extras are copied unchanged (as augmentation does).
// Throws DataError naming the sample when a resampled image would be empty or larger than
// limits::kMaxImagePixels.
class ResampledDataset : public data::Dataset {
 public:
  ResampledDataset(std::shared_ptr<const data::Dataset> base, double factor);
  size_t size() const override { return base_->size(); }
  data::Sample get(size_t i) const override;
  std::string name(size_t i) const override { return base_->name(i); }
  const data::ClassNames& class_names() const override { return base_->class_names(); }
  std::string format() const override { return base_->format(); }
  double factor() const { return factor_; }

 private:
  std::shared_ptr<const data::Dataset> base_;
  double factor_;
};

}  // namespace nucleisam::train
