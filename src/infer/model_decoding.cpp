// Instance decodings of network head maps (see model_decoding.h).
#include "nucleisam/infer/model_decoding.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdlib>

#include "nucleisam/errors.h"

namespace nucleisam::infer {
namespace {

float parse_float(const std::string& text, const std::string& key, const std::string& source) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size())
    throw ModelError(source + ": decoding option '" + key + "' is not a number ('" + text + "')");
  return static_cast<float>(v);
}

std::string number(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void check_size(const ProbabilityMap& a, const ProbabilityMap& b, const char* what) {
  if (!a.same_size(b)) throw ModelError(std::string("instance decoding: the ") + what + " map has another size");
}

}  // namespace

DecodingOptions decoding_from_map(const std::map<std::string, std::string>& entries, const std::string& source) {
  DecodingOptions o;
  for (const auto& [k, v] : entries) {
    if (k == "method") {
      if (v != "three_class" && v != "distance")
        throw ModelError(source + ": decoding method '" + v + "' is not three_class or distance");
      o.method = v;
    } else if (k == "boundary_boost") o.three_class.boundary_boost = parse_float(v, k, source);
    else if (k == "min_interior_area") o.three_class.min_interior_area = static_cast<int>(parse_float(v, k, source));
    else if (k == "max_growth") o.three_class.max_growth = static_cast<int>(parse_float(v, k, source));
    else if (k == "foreground_threshold") o.foreground_threshold = parse_float(v, k, source);
    else if (k == "marker_threshold") o.marker_threshold = parse_float(v, k, source);
    else if (k == "min_marker_area") o.min_marker_area = static_cast<int>(parse_float(v, k, source));
    else if (k == "min_area") o.min_area = static_cast<int>(parse_float(v, k, source));
    else throw ModelError(source + ": unknown decoding option '" + k + "'");
  }
  return o;
}

std::map<std::string, std::string> decoding_to_map(const DecodingOptions& o) {
  return {{"method", o.method},
          {"boundary_boost", number(o.three_class.boundary_boost)},
          {"min_interior_area", std::to_string(o.three_class.min_interior_area)},
          {"max_growth", std::to_string(o.three_class.max_growth)},
          {"foreground_threshold", number(o.foreground_threshold)},
          {"marker_threshold", number(o.marker_threshold)},
          {"min_marker_area", std::to_string(o.min_marker_area)},
          {"min_area", std::to_string(o.min_area)}};
}

LabelMap decode_instances(const HeadMaps& maps, const DecodingOptions& options) {
  check_size(maps.interior, maps.boundary, "boundary");
  if (options.method == "three_class") {
    ThreeClassOptions t = options.three_class;
    t.min_area = std::max(t.min_area, options.min_area);
    return instances_from_three_class(maps.interior, maps.boundary, t);
  }
  if (maps.distance.empty()) throw ModelError("instance decoding: the distance decoding needs a distance head");
  check_size(maps.interior, maps.distance, "distance");
  const int h = maps.interior.height, w = maps.interior.width;
  Mask foreground(h, w);
  cv::Mat1b seeds(h, w, uchar(0));
  ProbabilityMap elevation(h, w);
  for (size_t i = 0; i < maps.interior.data.size(); ++i) {
    const bool fg = maps.interior.data[i] + maps.boundary.data[i] > options.foreground_threshold;
    foreground.data[i] = fg ? 1 : 0;
    if (fg && maps.distance.data[i] > options.marker_threshold) seeds(static_cast<int>(i)) = 255;
    elevation.data[i] = 1.0f - maps.distance.data[i];
  }
  cv::Mat1i labels;
  cv::connectedComponents(seeds, labels, 8, CV_32S);
  LabelMap markers(h, w);
  std::copy(labels.begin(), labels.end(), markers.data.begin());
  markers = remove_small_instances(markers, std::max(options.min_marker_area, 1));
  LabelMap instances = watershed_from_markers(elevation, markers, foreground);
  return remove_small_instances(instances, std::max(options.min_area, 1));
}

Segmentation assemble_segmentation(const HeadMaps& maps, LabelMap instances,
                                   const std::vector<std::string>& class_names) {
  Segmentation s;
  int n = 0;
  for (int32_t id : instances.data) n = std::max(n, id);
  std::vector<double> fg_sum(static_cast<size_t>(n) + 1, 0.0);
  std::vector<int64_t> area(static_cast<size_t>(n) + 1, 0);
  const int types = class_names.empty() ? 0 : static_cast<int>(maps.types.size()) - 1;
  std::vector<std::vector<int64_t>> votes;
  std::vector<std::vector<double>> type_sum;
  if (types > 0) {
    votes.assign(static_cast<size_t>(n) + 1, std::vector<int64_t>(static_cast<size_t>(types) + 1, 0));
    type_sum.assign(static_cast<size_t>(n) + 1, std::vector<double>(static_cast<size_t>(types) + 1, 0.0));
  }
  for (size_t i = 0; i < instances.data.size(); ++i) {
    const int32_t id = instances.data[i];
    if (id <= 0) continue;
    fg_sum[id] += maps.interior.data[i] + maps.boundary.data[i];
    ++area[id];
    if (types > 0) {
      int best = 1;
      for (int c = 2; c <= types; ++c)
        if (maps.types[c].data[i] > maps.types[best].data[i]) best = c;
      ++votes[id][best];
      for (int c = 1; c <= types; ++c) type_sum[id][c] += maps.types[c].data[i];
    }
  }
  s.scores.resize(static_cast<size_t>(n));
  if (types > 0) {
    s.classes.resize(static_cast<size_t>(n));
    s.class_names = class_names;
  }
  for (int id = 1; id <= n; ++id) {
    const double a = std::max<int64_t>(area[id], 1);
    double score = std::min(1.0, fg_sum[id] / a);
    if (types > 0) {
      int best = 1;
      for (int c = 2; c <= types; ++c)
        if (votes[id][c] > votes[id][best]) best = c;
      s.classes[id - 1] = best;
      score *= type_sum[id][best] / a;
    }
    s.scores[id - 1] = static_cast<float>(score);
  }
  s.instances = std::move(instances);
  return s;
}

}  // namespace nucleisam::infer
