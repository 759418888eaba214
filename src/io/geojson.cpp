// QuPath GeoJSON writer for nuclei (layout of QuPath 0.4+: properties.objectType, classification
// {name, color}, measurements as a name -> number object).
#include "nucleisam/io/geojson.h"

#include <functional>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"

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
      std::string name = n.class_name.empty() ? unnamed_class_name(n.class_id) : n.class_name;
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

namespace {

// Shortest fixed notation with at most 3 decimals ("12.5", "7"): exact for the half-pixel grid.
void append_number(std::string& out, double v) {
  char buf[64];
  if (!std::isfinite(v)) v = 0;
  int n = std::snprintf(buf, sizeof buf, "%.3f", v);
  while (n > 0 && buf[n - 1] == '0') --n;
  if (n > 0 && buf[n - 1] == '.') --n;
  out.append(buf, static_cast<size_t>(n));
  if (out.size() >= 2 && out.compare(out.size() - 2, 2, "-0") == 0) out.erase(out.size() - 2, 1);
}

}  // namespace

std::string qupath_feature(const Nucleus& n, const std::vector<std::pair<std::string, double>>& measurements) {
  std::string out = R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[)";
  for (size_t i = 0; i < n.polygon.size(); ++i) {
    out += i ? ",[" : "[";
    append_number(out, n.polygon[i].x);
    out += ',';
    append_number(out, n.polygon[i].y);
    out += ']';
  }
  out += R"(]]},"properties":{"objectType":"detection","classification":{"name":)";
  const std::string name =
      n.class_id > 0 ? (n.class_name.empty() ? unnamed_class_name(n.class_id) : n.class_name) : "Nucleus";
  out += nlohmann::json(name).dump();
  const auto c = class_colour(n.class_id);
  out += ",\"color\":[" + std::to_string(c[0]) + "," + std::to_string(c[1]) + "," + std::to_string(c[2]) +
         "]},\"measurements\":{";
  for (size_t i = 0; i < measurements.size(); ++i) {
    if (i) out += ',';
    out += nlohmann::json(measurements[i].first).dump();
    out += ':';
    append_number(out, measurements[i].second);
  }
  out += "}}}";
  return out;
}

std::vector<std::vector<std::vector<ContourPoint>>> read_geojson_polygons(const std::string& path) {
  nlohmann::json doc;
  try {
    const std::string text = read_file(path);
    limits::check_json_depth(text, path);
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  std::vector<std::vector<std::vector<ContourPoint>>> polygons;
  auto ring_of = [&](const nlohmann::json& r) {
    std::vector<ContourPoint> ring;
    if (!r.is_array()) throw IoError(path + ": a polygon ring is not an array of points");
    for (const auto& p : r) {
      if (!p.is_array() || p.size() < 2 || !p[0].is_number() || !p[1].is_number())
        throw IoError(path + ": a polygon point is not [x, y]");
      ring.push_back({p[0].get<float>(), p[1].get<float>()});
    }
    return ring;
  };
  auto polygon_of = [&](const nlohmann::json& rings) {
    std::vector<std::vector<ContourPoint>> poly;
    if (!rings.is_array()) throw IoError(path + ": Polygon coordinates are not a list of rings");
    for (const auto& r : rings) poly.push_back(ring_of(r));
    if (!poly.empty()) polygons.push_back(std::move(poly));
  };
  std::function<void(const nlohmann::json&)> visit = [&](const nlohmann::json& j) {
    if (!j.is_object()) return;
    const auto type_it = j.find("type");
    const std::string type = type_it != j.end() && type_it->is_string() ? type_it->get<std::string>() : "";
    if (type == "FeatureCollection" && j.contains("features") && j["features"].is_array()) {
      for (const auto& f : j["features"]) visit(f);
    } else if (type == "Feature" && j.contains("geometry")) {
      visit(j["geometry"]);
    } else if (type == "GeometryCollection" && j.contains("geometries") && j["geometries"].is_array()) {
      for (const auto& g : j["geometries"]) visit(g);
    } else if (type == "Polygon" && j.contains("coordinates")) {
      polygon_of(j["coordinates"]);
    } else if (type == "MultiPolygon" && j.contains("coordinates") && j["coordinates"].is_array()) {
      for (const auto& p : j["coordinates"]) polygon_of(p);
    }
  };
  try {
    visit(doc);
  } catch (const nlohmann::json::exception& e) {  // a value of another type than GeoJSON's, missed above
    throw IoError(path + ": not a GeoJSON of polygons (" + std::string(e.what()) + ")");
  }
  if (polygons.empty()) throw IoError(path + ": no Polygon or MultiPolygon in this GeoJSON");
  return polygons;
}

}  // namespace nucleisam::io
