// QuPath GeoJSON writer for nuclei (layout of QuPath 0.4+: properties.objectType, classification
// {name, color}, measurements as a name -> number object).
#include "nucleisam/io/geojson.h"

#include <nlohmann/json.hpp>

#include "nucleisam/atomic_file.h"

namespace nucleisam::io {

std::array<uint8_t, 3> class_colour(int class_id) {
  static const std::array<std::array<uint8_t, 3>, 10> palette = {{{230, 25, 75},
                                                                   {0, 130, 200},
                                                                   {255, 225, 25},
                                                                   {145, 30, 180},
                                                                   {245, 130, 48},
                                                                   {70, 240, 240},
                                                                   {240, 50, 230},
                                                                   {128, 0, 0},
                                                                   {0, 0, 128},
                                                                   {170, 110, 40}}};
  if (class_id <= 0) return {0, 200, 0};
  return palette[static_cast<size_t>(class_id - 1) % palette.size()];
}

std::string qupath_geojson(const std::vector<Nucleus>& nuclei) {
  nlohmann::json features = nlohmann::json::array();
  for (const Nucleus& n : nuclei) {
    if (n.polygon.empty()) continue;
    nlohmann::json ring = nlohmann::json::array();
    for (const auto& p : n.polygon) ring.push_back({static_cast<double>(p.x), static_cast<double>(p.y)});
    nlohmann::json properties = {{"objectType", "detection"}};
    if (n.class_id > 0) {
      auto c = class_colour(n.class_id);
      std::string name = n.class_name.empty() ? "class " + std::to_string(n.class_id) : n.class_name;
      properties["classification"] = {{"name", name}, {"color", {c[0], c[1], c[2]}}};
    }
    properties["measurements"] = {{"id", n.id}, {"area", n.area}, {"score", static_cast<double>(n.score)}};
    features.push_back({{"type", "Feature"},
                        {"geometry", {{"type", "Polygon"}, {"coordinates", nlohmann::json::array({ring})}}},
                        {"properties", properties}});
  }
  nlohmann::json doc = {{"type", "FeatureCollection"}, {"features", features}};
  return doc.dump() + "\n";
}

void write_qupath_geojson(const std::string& path, const std::vector<Nucleus>& nuclei) {
  write_file_atomic(path, qupath_geojson(nuclei));
}

}  // namespace nucleisam::io
