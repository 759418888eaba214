// Bit-exact reimplementation of Pillow's BILINEAR Image.resize on 8-bit images (Pillow 9.x
// ImagingResample: separable triangle filter whose support widens with the downscale factor,
// 22-bit fixed-point weights, horizontal pass first with rounding to uint8 in between).
// SAM's official preprocessing resizes with it, and OpenCV's INTER_LINEAR differs by one grey
// level on ~30% of values, which is far above the float noise of the model.
#pragma once

#include "nucleisam/raster.h"

namespace nucleisam::sam {

// Any channel count; out_width, out_height >= 1. Throws std::invalid_argument on empty input.
Raster<uint8_t> resize_bilinear_pillow(const Raster<uint8_t>& src, int out_width, int out_height);

}  // namespace nucleisam::sam
