// Aperio ImageScope XML reading (pugixml) and the scanline rasterisation of its polygons.
// The rasterisation rule is documented in the header and in docs/data.md.
#include "nucleisam/io/aperio_xml.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <pugixml.hpp>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/relabel.h"

namespace nucleisam::io {
namespace {

double parse_coordinate(const pugi::xml_node& vertex, const char* attr, const std::string& name,
                        int region_id) {
  pugi::xml_attribute a = vertex.attribute(attr);
  const char* text = a ? a.value() : nullptr;
  char* end = nullptr;
  double v = text ? std::strtod(text, &end) : 0.0;
  if (!text || end == text || !std::isfinite(v))
    throw IoError(name + ": Region " + std::to_string(region_id) + " has a Vertex without a numeric " +
                  attr + " attribute");
  return v;
}

}  // namespace

std::vector<AperioRegion> parse_aperio_xml(const std::string& text, const std::string& name) {
  pugi::xml_document doc;
  pugi::xml_parse_result ok = doc.load_buffer(text.data(), text.size());
  if (!ok)
    throw IoError(name + ": not well-formed XML (" + ok.description() + " at byte " +
                  std::to_string(ok.offset) + ")");
  pugi::xml_node root = doc.child("Annotations");
  if (!root) throw IoError(name + ": not an Aperio annotation file (no <Annotations> root element)");
  std::vector<AperioRegion> regions;
  for (pugi::xml_node ann : root.children("Annotation")) {
    for (pugi::xml_node region : ann.child("Regions").children("Region")) {
      AperioRegion r;
      r.id = region.attribute("Id").as_int(0);
      for (pugi::xml_node v : region.child("Vertices").children("Vertex"))
        r.vertices.push_back({parse_coordinate(v, "X", name, r.id), parse_coordinate(v, "Y", name, r.id)});
      regions.push_back(std::move(r));
    }
  }
  return regions;
}

std::vector<AperioRegion> read_aperio_xml(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError(path + ": no such file");
  return parse_aperio_xml(read_file(path), path);
}

LabelMap rasterize_polygons(const std::vector<std::vector<PolygonPoint>>& polygons, int height,
                            int width) {
  if (height < 0 || width < 0) throw DataError("rasterize_polygons: negative raster size");
  LabelMap out(height, width, 1, 0);
  std::vector<double> crossings;
  // Tolerance against x = 3.9999999 from the intersection division turning a centre that lies
  // exactly on an edge into the wrong side; far below any real coordinate precision.
  constexpr double kEps = 1e-9;
  for (size_t p = 0; p < polygons.size(); ++p) {
    const auto& poly = polygons[p];
    if (poly.size() < 3) continue;
    double ymin = poly[0].y, ymax = poly[0].y;
    for (const auto& v : poly) ymin = std::min(ymin, v.y), ymax = std::max(ymax, v.y);
    // Clamped to the raster while still doubles: casting a coordinate like 1e53 to int is undefined.
    const double first_row = std::max(0.0, std::ceil(ymin - kEps));
    const double last_row = std::min(height - 1.0, std::ceil(ymax - kEps) - 1);
    if (!(first_row <= last_row)) continue;
    const int row0 = static_cast<int>(first_row), row1 = static_cast<int>(last_row);
    const int32_t id = static_cast<int32_t>(p + 1);
    for (int y = row0; y <= row1; ++y) {
      crossings.clear();
      for (size_t i = 0; i < poly.size(); ++i) {
        const PolygonPoint& a = poly[i];
        const PolygonPoint& b = poly[(i + 1) % poly.size()];
        // Half-open in y: an edge covers rows with min(y) <= row < max(y), so a vertex shared by two
        // edges is counted once and horizontal edges never cross.
        bool crosses = (a.y <= y && y < b.y) || (b.y <= y && y < a.y);
        if (!crosses) continue;
        crossings.push_back(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y));
      }
      std::sort(crossings.begin(), crossings.end());
      int32_t* row = out.row(y);
      for (size_t k = 0; k + 1 < crossings.size(); k += 2) {
        // Centres x with left <= x < right.
        double lo = std::ceil(crossings[k] - kEps), hi = std::ceil(crossings[k + 1] - kEps) - 1;
        lo = std::max(0.0, lo);
        hi = std::min(width - 1.0, hi);
        if (!(lo <= hi)) continue;
        const int x0 = static_cast<int>(lo), x1 = static_cast<int>(hi);
        for (int x = x0; x <= x1; ++x) row[x] = id;
      }
    }
  }
  // Renumber survivors 1..N in drawing order (ids were given in drawing order).
  relabel_consecutive(out);
  return out;
}

LabelMap rasterize_regions(const std::vector<AperioRegion>& regions, int height, int width) {
  std::vector<std::vector<PolygonPoint>> polys;
  polys.reserve(regions.size());
  for (const auto& r : regions) polys.push_back(r.vertices);
  return rasterize_polygons(polys, height, width);
}

}  // namespace nucleisam::io
