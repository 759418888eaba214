// Quality-control picture: nucleus outlines drawn over the input tile.
#pragma once

#include <vector>

#include "nucleisam/nucleus.h"
#include "nucleisam/raster.h"

namespace nucleisam::io {

// A copy of `image` (RGB) with each nucleus polygon drawn one pixel wide in class_colour(class_id).
Image draw_nucleus_overlay(const Image& image, const std::vector<Nucleus>& nuclei);

}  // namespace nucleisam::io
