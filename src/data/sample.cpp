// Sample helpers: the standard-library part of the dataset interface.
#include <algorithm>

#include "nucleisam/data/dataset.h"
#include "nucleisam/errors.h"

namespace nucleisam::data {

int Sample::instance_count() const {
  int32_t m = 0;
  for (int32_t v : instances.data) m = std::max(m, v);
  return m;
}

LabelMap Sample::class_map() const {
  LabelMap out(instances.height, instances.width, 1, 0);
  for (size_t i = 0; i < instances.data.size(); ++i) {
    int32_t id = instances.data[i];
    if (id <= 0) continue;
    if (!classed) {
      out.data[i] = 1;
    } else if (static_cast<size_t>(id) <= classes.size()) {
      out.data[i] = classes[id - 1];
    } else {
      throw DataError(name + ": instance " + std::to_string(id) + " has no class (" +
                      std::to_string(classes.size()) + " classes listed)");
    }
  }
  return out;
}

}  // namespace nucleisam::data

namespace nucleisam::data {

std::optional<StainAmountRange> dataset_stain_range(const Dataset& dataset, size_t max_images) {
  const size_t n = std::min(dataset.size(), max_images);
  std::vector<StainVectors> stains;
  for (size_t i = 0; i < n; ++i) {
    // The centres of n equal runs of the dataset.
    const Sample s = dataset.get(i * dataset.size() / n + dataset.size() / (2 * n));
    const StainEstimate e = estimate_stains({&s.image});
    if (e.ok) stains.push_back(e.stains);
  }
  if (stains.empty()) return std::nullopt;
  return training_amount_range(stains);
}

}  // namespace nucleisam::data
