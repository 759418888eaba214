// Aperio ImageScope XML annotations (MoNuSeg's format): polygons in level-0 pixel coordinates,
// and the rasterisation that turns them into an instance label map.
#pragma once

#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::io {

struct PolygonPoint {
  double x = 0;
  double y = 0;
};

struct AperioRegion {
  int id = 0;                          // the Region's Id attribute (0 when absent)
  std::vector<PolygonPoint> vertices;  // in file order, not closed (first != last is not required)
};

// Every <Region> under every <Annotation>, in document order. Throws IoError naming the path when
// the file is missing, is not well-formed XML, has no <Annotations> root, or a Vertex lacks a
// numeric X or Y.
std::vector<AperioRegion> read_aperio_xml(const std::string& path);
std::vector<AperioRegion> parse_aperio_xml(const std::string& text, const std::string& name_for_errors);

// Rasterises polygons into a height x width instance map.
// Rule: pixel (col x, row y) has its centre at (x, y) in vertex coordinates (integer vertices lie
// on pixel centres, as ImageScope writes traced outlines). A pixel belongs to a polygon when its
// centre is inside by the even-odd rule, with half-open edges: a centre exactly on a left or top
// edge is inside, on a right or bottom edge outside. So an axis-aligned square with corners
// (x0, y0), (x1, y1) covers exactly columns x0..x1-1 and rows y0..y1-1, its pixel count equals its
// area, and two polygons sharing an edge never claim the same pixel.
// Overlaps: polygons are drawn in order and later ones overwrite earlier ones (polygon i gets
// id i + 1 before relabelling). Ids that end with no pixel (degenerate polygons, polygons outside
// the image or fully covered by later ones) are removed and the rest renumbered 1..N in order.
LabelMap rasterize_polygons(const std::vector<std::vector<PolygonPoint>>& polygons, int height, int width);
LabelMap rasterize_regions(const std::vector<AperioRegion>& regions, int height, int width);

}  // namespace nucleisam::io
