// Point prompts for `nucleisam refine` (see points.h).
#include "cli/points.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli/usage_error.h"
#include "nucleisam/limits.h"

namespace nucleisam::cli {
using nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

double coordinate(const json& v, const std::string& where) {
  if (!v.is_number()) throw UsageError(where + ": coordinates must be numbers");
  return v.get<double>();
}

}  // namespace

// A class given by name (the model's class names, "background", "boundary"; any case) or number.
int category_of(const json& value, const models::ModelCard& card, const std::string& where) {
  const int k = static_cast<int>(card.heads.category_count());
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0 || v >= k)
      throw UsageError(where + ": class " + std::to_string(v) + " is not one of the model's 0.." + std::to_string(k - 1));
    return static_cast<int>(v);
  }
  if (!value.is_string()) throw UsageError(where + ": the class must be a name or a number");
  const std::string name = lower(value.get<std::string>());
  char* end = nullptr;
  const long number = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && end == name.c_str() + name.size()) return category_of(json(number), card, where);
  std::string known = "background";
  for (size_t i = 1; i < card.class_names.size(); ++i) {
    if (lower(card.class_names[i]) == name) return static_cast<int>(i);
    known += ", " + card.class_names[i];
  }
  if (card.class_names.empty()) {
    if (name == "nucleus") return 1;
    known += ", nucleus";
  }
  if (name == "background") return 0;
  if (name == "boundary") return k - 1;
  throw UsageError(where + ": unknown class '" + value.get<std::string>() + "' (the model's classes: " + known +
                   ", boundary)");
}

namespace {

// The string at `key` of object `j`, "" when it is absent or not a string.
std::string string_at(const json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The value at `key` of object `j`, null when `j` is not an object or has no such key.
json at_or_null(const json& j, const char* key) {
  if (!j.is_object()) return json();
  const auto it = j.find(key);
  return it != j.end() ? *it : json();
}

std::vector<predict::PointPrompt> points_of(const json& j, const std::string& path, const models::ModelCard& card) {
  std::vector<predict::PointPrompt> out;
  auto add = [&](double x, double y, int category) {
    out.push_back({static_cast<float>(x), static_cast<float>(y), category});
  };
  const std::string doc_type = string_at(j, "type");
  if (doc_type == "FeatureCollection" || doc_type == "Feature") {
    const json features = doc_type == "Feature" ? json::array({j}) : at_or_null(j, "features");
    if (!features.is_array()) throw UsageError(path + ": a FeatureCollection needs a list of features");
    for (size_t i = 0; i < features.size(); ++i) {
      const std::string where = path + ": feature " + std::to_string(i);
      const json geometry = at_or_null(features[i], "geometry");
      const std::string type = string_at(geometry, "type");
      if (type != "Point" && type != "MultiPoint")
        throw UsageError(where + ": geometry '" + type + "' is not a Point or MultiPoint (QuPath point annotations)");
      const json classification = at_or_null(at_or_null(features[i], "properties"), "classification");
      const json cls = classification.is_object() ? at_or_null(classification, "name") : classification;
      if (cls.is_null()) throw UsageError(where + ": has no classification (give each point annotation a class)");
      const int category = category_of(cls, card, where);
      const json coords = at_or_null(geometry, "coordinates");
      const json list = type == "Point" ? json::array({coords}) : coords;
      if (!list.is_array()) throw UsageError(where + ": MultiPoint coordinates must be a list of [x, y]");
      for (const json& c : list) {
        if (!c.is_array() || c.size() < 2) throw UsageError(where + ": a point needs [x, y]");
        add(coordinate(c[0], where), coordinate(c[1], where), category);
      }
    }
    return out;
  }
  const json list = j.is_object() ? at_or_null(j, "points") : j;
  if (!list.is_array())
    throw UsageError(path + ": expected {\"points\": [{\"x\": .., \"y\": .., \"class\": ..}, ...]} or a GeoJSON "
                            "FeatureCollection of points");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = path + ": point " + std::to_string(i);
    const json& p = list[i];
    if (!p.is_object() || !p.contains("x") || !p.contains("y") || !p.contains("class"))
      throw UsageError(where + ": needs x, y and class");
    add(coordinate(p["x"], where), coordinate(p["y"], where), category_of(p["class"], card, where));
  }
  return out;
}

}  // namespace

std::vector<predict::PointPrompt> read_points_file(const std::string& path, const models::ModelCard& card) {
  std::ifstream in(path);
  if (!in) throw UsageError(path + ": cannot open the points file");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    limits::check_json_depth(text.str(), path);
    j = json::parse(text.str());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999999
    throw UsageError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  try {
    return points_of(j, path, card);
  } catch (const json::exception& e) {  // a value of another type than the format's, missed above
    throw UsageError(path + ": not a points file (" + std::string(e.what()) + ")");
  }
}

predict::PointPrompt parse_point_option(const std::string& text, const models::ModelCard& card) {
  const std::string where = "--point " + text;
  std::stringstream s(text);
  std::string xs, ys, cls;
  std::getline(s, xs, ',');
  std::getline(s, ys, ',');
  std::getline(s, cls);
  char* ex = nullptr;
  char* ey = nullptr;
  const double x = std::strtod(xs.c_str(), &ex), y = std::strtod(ys.c_str(), &ey);
  if (xs.empty() || ys.empty() || cls.empty() || *ex != '\0' || *ey != '\0')
    throw UsageError(where + ": expected x,y,class (pixels, and a class name or number)");
  return {static_cast<float>(x), static_cast<float>(y), category_of(json(cls), card, where)};
}

}  // namespace nucleisam::cli
