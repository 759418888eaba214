// The target table and the scratch files of the fuzz bodies.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "harness.h"
#include "nucleisam/errors.h"

namespace nucleisam::fuzz {
namespace fs = std::filesystem;

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"zip", fuzz_zip,
       ".pth zip container: central directory, ZIP64 records, local headers, stored entries"},
      {"pickle", fuzz_pickle, ".pth data.pkl: the restricted unpickler (opcodes, allow-listed globals)"},
      {"pth", fuzz_pth, "whole .pth read_checkpoint: zip + pickle + tensors over the mapped file"},
      {"safetensors", fuzz_safetensors, ".safetensors read_checkpoint and read_safetensors_metadata"},
      {"weights_json", fuzz_weights_json,
       "the safetensors header JSON subset parser (weights/header_json.h)"},
      {"npy", fuzz_npy, ".npy header and payload (parse_npy, to_vector, to_strings) and .npy label maps"},
      {"image", fuzz_image, "read_image / read_label_map: PNG and JPEG (OpenCV), TIFF (libtiff)"},
      {"aperio_xml", fuzz_aperio_xml, "Aperio ImageScope XML (pugixml) and the polygon rasteriser"},
      {"mat", fuzz_mat, "MATLAB .mat through matio (read_mat, to_int32)"},
      {"csv", fuzz_csv, "the RFC 4180 CSV reader and its strict number fields"},
      {"geojson", fuzz_geojson, "GeoJSON polygons (read_geojson_polygons) and GeoJSON tissue masks"},
      {"model_card", fuzz_model_card,
       "model card metadata of a model file (card_from_metadata, ModelOptions)"},
      {"recipe", fuzz_recipe,
       "training recipes (configs/*.json): JSON depth check, nlohmann-json, parse_recipe"},
      {"refine_session", fuzz_refine_session,
       "refine sessions (<out>/<image>.refine-session): read_refine_session"},
      {"points", fuzz_points, "refine's points files: JSON points and QuPath GeoJSON point annotations"},
  };
  return all;
}

const Target* find_target(const std::string& name) {
  for (const Target& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

std::string scratch_file(const uint8_t* data, size_t size, const std::string& extension) {
  static std::mutex mutex;
  static std::map<std::string, std::string> paths;
  std::lock_guard<std::mutex> lock(mutex);
  std::string& path = paths[extension];
  if (path.empty()) {
    std::error_code ec;
    fs::path dir = fs::path("/dev/shm");
    if (!fs::is_directory(dir, ec) || access(dir.c_str(), W_OK) != 0) dir = fs::temp_directory_path();
    dir /= "nucleisam-fuzz-" + std::to_string(getpid());
    fs::create_directories(dir);
    static const fs::path made = dir;
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(made, ignored);
    });
    path = (dir / ("input" + extension)).string();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) throw std::runtime_error("cannot write the fuzz scratch file " + path);
  return path;
}

}  // namespace nucleisam::fuzz
