// Fuzz bodies of the io readers: .npy, images (PNG / JPEG through OpenCV, TIFF through libtiff),
// Aperio XML, MATLAB .mat, CSV, GeoJSON (polygons and tissue masks).
#include <cstring>
#include <string>

#include "harness.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/slide_run.h"
#include "nucleisam/io/aperio_xml.h"
#include "nucleisam/io/csv.h"
#include "nucleisam/io/geojson.h"
#include "nucleisam/io/mat_file.h"
#include "nucleisam/npy.h"

namespace nucleisam::fuzz {
namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

}  // namespace

void fuzz_npy(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const NpyArray a = parse_npy(bytes, "fuzz.npy");
  (void)a.dtype();
  if (a.kind == 'U') {  // string arrays (PanNuke's types.npy) are only read as strings
    (void)a.to_strings();
    return;
  }
  // As the engine converts: any array to float (SAM embeddings), integer arrays to int64 (label
  // maps). to_vector is a plain numeric cast, so float -> integer is not asked of it.
  (void)a.to_vector<float>();
  if (a.kind != 'f') (void)a.to_vector<int64_t>();
  // The label-map path (shape and value checks) reads the same bytes from a file.
  (void)io::read_label_map(scratch_file(data, size, ".npy"));
}

void fuzz_image(const uint8_t* data, size_t size) {
  // The readers choose libtiff or OpenCV by extension; OpenCV then goes by content.
  const bool tiff = starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
                    starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4);
  const bool jpeg = starts_with(data, size, "\xff\xd8", 2);
  const std::string path = scratch_file(data, size, tiff ? ".tif" : jpeg ? ".jpg" : ".png");
  (void)io::read_image_mpp(path);  // never throws: a resolution, or 0
  try {
    (void)io::read_image(path);
  } catch (const Error&) {
  }
  (void)io::read_label_map(path);
}

void fuzz_aperio_xml(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto regions = io::parse_aperio_xml(text, "fuzz.xml");
  (void)io::rasterize_regions(regions, 64, 64);
}

void fuzz_mat(const uint8_t* data, size_t size) {
  for (const auto& [name, array] : io::read_mat(scratch_file(data, size, ".mat"))) {
    (void)name;
    try {
      (void)array.to_int32("fuzz.mat");
    } catch (const Error&) {
    }
  }
}

void fuzz_csv(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const io::CsvRecord& r : io::parse_csv(text, "fuzz.csv")) {
    for (size_t i = 0; i < r.fields.size(); ++i) {
      try {
        (void)r.integer(i, "fuzz.csv");
      } catch (const Error&) {
      }
      try {
        (void)r.number(i, "fuzz.csv");
      } catch (const Error&) {
      }
    }
  }
}

void fuzz_geojson(const uint8_t* data, size_t size) {
  const std::string path = scratch_file(data, size, ".geojson");
  (void)io::read_geojson_polygons(path);
  // A tissue mask given as GeoJSON: polygons at an overview downsample of 4.
  (void)infer::read_tissue_mask(path, 64, 48, 4.0);
}

}  // namespace nucleisam::fuzz
