// Target maps for segmentation training, computed from instance and class maps.
#include "nucleisam/data/targets.h"

#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::data {

Mask foreground_mask(const LabelMap& instances) {
  Mask m(instances.height, instances.width, 1, 0);
  for (size_t i = 0; i < instances.data.size(); ++i) m.data[i] = instances.data[i] != 0;
  return m;
}

LabelMap three_class_map(const LabelMap& instances) {
  const int h = instances.height, w = instances.width;
  LabelMap out(h, w, 1, kBackground);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int32_t id = instances.at(y, x);
      if (!id) continue;
      const bool edge = (y > 0 && instances.at(y - 1, x) != id) || (y + 1 < h && instances.at(y + 1, x) != id) ||
                        (x > 0 && instances.at(y, x - 1) != id) || (x + 1 < w && instances.at(y, x + 1) != id);
      out.at(y, x) = edge ? kBoundary : kInterior;
    }
  return out;
}

Mask per_class_masks(const LabelMap& class_map, int num_classes) {
  if (num_classes < 1) throw DataError("per_class_masks: num_classes must be at least 1");
  Mask out(class_map.height, class_map.width, num_classes, 0);
  for (size_t i = 0; i < class_map.data.size(); ++i) {
    const int32_t c = class_map.data[i];
    if (c < 0 || c > num_classes)
      throw DataError("class map holds class id " + std::to_string(c) + ", expected 0.." +
                      std::to_string(num_classes));
    if (c) out.data[i * num_classes + (c - 1)] = 1;
  }
  return out;
}

}  // namespace nucleisam::data
