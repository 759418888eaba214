// Segmenting an image at the method's resolution and returning instances on the image's grid.
#include "nucleisam/infer/image_resolution.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>
#include <vector>

#include "nucleisam/errors.h"
#include "nucleisam/infer/tiling.h"
#include "nucleisam/limits.h"
#include "nucleisam/log.h"

namespace nucleisam::infer {

ImageScale plan_image_scale(int width, int height, double image_mpp, double method_mpp) {
  ImageScale s;
  if (image_mpp > 0 && method_mpp > 0) s.factor = snap_scale_factor(image_mpp / method_mpp);
  const double w = std::max(1.0, std::round(width * s.factor)), h = std::max(1.0, std::round(height * s.factor));
  if (w * h > static_cast<double>(limits::kMaxImagePixels)) {
    std::ostringstream m;
    m << "a " << width << "x" << height << " image at " << image_mpp << " um/px resampled to the method's "
      << method_mpp << " um/px would be " << static_cast<long long>(w) << "x" << static_cast<long long>(h)
      << " pixels, over the limit of " << limits::kMaxImagePixels << "; cut it into tiles or segment it as a slide";
    throw OptionError(m.str());
  }
  s.width = static_cast<int>(w);
  s.height = static_cast<int>(h);
  return s;
}

Segmentation resample_segmentation(const Segmentation& s, int width, int height) {
  Segmentation out;
  out.instances = resample_labels(s.instances, width, height);
  out.classes = s.classes;
  out.scores = s.scores;
  out.class_names = s.class_names;
  renumber_instances(out);
  return out;
}

std::pair<int, int> automatic_tile_size(int width, int height, int overlap) {
  constexpr int kLargest = 4096;
  const auto side = [&](int length) {
    if (length <= kLargest) return length;
    const int step = kLargest - overlap;
    const int tiles = (length - overlap + step - 1) / step;
    return (length - overlap + tiles - 1) / tiles + overlap;
  };
  return {side(width), side(height)};
}

Segmentation segment_at_resolution(Segmenter& segmenter, const Image& image, const std::string& source,
                                   double image_mpp, int tile_size, int overlap) {
  const ImageScale scale = plan_image_scale(image.width, image.height, image_mpp, segmenter.microns_per_pixel());
  int tile_width = tile_size, tile_height = tile_size;
  if (tile_size <= 0 && static_cast<int64_t>(scale.width) * scale.height > kWholeImagePixels) {
    std::tie(tile_width, tile_height) = automatic_tile_size(scale.width, scale.height, overlap);
    log::debug(source, ": ", scale.width, "x", scale.height, " processing pixels, segmented in tiles of ",
               tile_width, "x", tile_height, " (--tile-size sets them)");
  }
  if (image.same_size(scale.height, scale.width))
    return segment_in_tiles(segmenter, image, source, tile_width, tile_height, overlap);
  const Segmentation at_method = segment_in_tiles(segmenter, resample_image(image, scale.width, scale.height),
                                                  source, tile_width, tile_height, overlap);
  return resample_segmentation(at_method, image.width, image.height);
}

}  // namespace nucleisam::infer
