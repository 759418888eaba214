// Renumbering label maps to consecutive ids: the one implementation that datasets, augmentation,
// post-processing, stitching and the Aperio XML rasteriser all call. Standard library only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam {

enum class RelabelOrder {
  ascending,   // new ids follow the old ids' ascending order
  first_seen,  // new ids follow the order in which ids first appear in raster order
};

// Renumbers the non-zero ids of `labels` to 1..N and returns the original id of each new id
// (result[k] is the old id of new id k + 1). Negative ids throw DataError naming `file` ("instance
// map" when empty). Fast for any id range (a table up to 2^24, a sorted map beyond).
std::vector<int32_t> relabel_consecutive(LabelMap& labels, const std::string& file = "",
                                         RelabelOrder order = RelabelOrder::ascending);

}  // namespace nucleisam
