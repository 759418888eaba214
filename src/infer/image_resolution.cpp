// Segmenting an image at the method's resolution and returning instances on the image's grid.
#include "nucleisam/infer/image_resolution.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <vector>

#include "nucleisam/errors.h"
#include "nucleisam/infer/tiling.h"
#include "nucleisam/limits.h"

namespace nucleisam::infer {

ImageScale plan_image_scale(int width, int height, double image_mpp, double method_mpp) {
  ImageScale s;
  if (image_mpp > 0 && method_mpp > 0) {
    const double f = image_mpp / method_mpp;
    const double g = f >= 1 ? f : 1 / f;  // the larger of the factor and its inverse
    const double whole = std::round(g);
    const double snapped = std::abs(g - whole) <= 0.03 * g ? whole : g;
    s.factor = f >= 1 ? snapped : 1 / snapped;
  }
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

Image resample_image(const Image& image, int width, int height) {
  if (image.same_size(height, width)) return image;
  Image out(height, width, image.channels);
  const int type = CV_8UC(image.channels);
  cv::Mat src(image.height, image.width, type, const_cast<uint8_t*>(image.data.data()));
  cv::Mat dst(height, width, type, out.data.data());
  const bool shrinking = width <= image.width && height <= image.height;
  cv::resize(src, dst, dst.size(), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

LabelMap resample_labels(const LabelMap& labels, int width, int height) {
  if (labels.same_size(height, width)) return labels;
  LabelMap out(height, width);
  std::vector<int> src_x(static_cast<size_t>(width));
  for (int x = 0; x < width; ++x)
    src_x[x] = std::min(labels.width - 1, static_cast<int>((x + 0.5) * labels.width / width));
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(labels.height - 1, static_cast<int>((y + 0.5) * labels.height / height));
    const int32_t* in = labels.row(sy);
    int32_t* o = out.row(y);
    for (int x = 0; x < width; ++x) o[x] = in[src_x[x]];
  }
  return out;
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

Segmentation segment_at_resolution(Segmenter& segmenter, const Image& image, const std::string& source,
                                   double image_mpp, int tile_size, int overlap) {
  const ImageScale scale = plan_image_scale(image.width, image.height, image_mpp, segmenter.microns_per_pixel());
  if (image.same_size(scale.height, scale.width)) return segment_in_tiles(segmenter, image, source, tile_size, overlap);
  const Segmentation at_method =
      segment_in_tiles(segmenter, resample_image(image, scale.width, scale.height), source, tile_size, overlap);
  return resample_segmentation(at_method, image.width, image.height);
}

}  // namespace nucleisam::infer
