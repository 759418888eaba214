// Training targets derived from an instance map: foreground, three-class (background / interior /
// boundary) and per-class masks. Plain rasters, no LibTorch.
#pragma once

#include "nucleisam/raster.h"

namespace nucleisam::data {

// 1 where an instance is, 0 elsewhere.
Mask foreground_mask(const LabelMap& instances);

enum ThreeClass : int32_t { kBackground = 0, kInterior = 1, kBoundary = 2 };
// Boundary: an instance pixel whose 4-neighbour (up, down, left, right) holds a different value,
// background included; everything else inside an instance is interior. The image border is not a
// boundary (the nucleus may continue outside a crop). Boundaries are one pixel thick on each side
// of a contact between two nuclei, so touching nuclei stay separated by two boundary pixels.
LabelMap three_class_map(const LabelMap& instances);

// One channel per class (H x W x num_classes): channel c - 1 is 1 where class_map == c.
// Throws DataError when class_map holds an id outside 0..num_classes.
Mask per_class_masks(const LabelMap& class_map, int num_classes);

}  // namespace nucleisam::data
