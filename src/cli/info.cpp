// `nucleisam info`: what a file is, as the engine reads it (image size, label-map instance count).
#include <nlohmann/json.hpp>
#include <iostream>
#include <set>

#include "cli/command.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"

namespace nucleisam::cli {
namespace {

nlohmann::json describe(const std::string& path, bool labels) {
  nlohmann::json j;
  j["file"] = path;
  if (labels) {
    LabelMap m = io::read_label_map(path);
    std::set<int32_t> ids(m.data.begin(), m.data.end());
    ids.erase(0);
    j["kind"] = "label map";
    j["width"] = m.width;
    j["height"] = m.height;
    j["labels"] = ids.size();
    j["max_label"] = ids.empty() ? 0 : *ids.rbegin();
  } else {
    Image img = io::read_image(path);
    double sum[3] = {0, 0, 0};
    for (size_t i = 0; i < img.pixels(); ++i)
      for (int c = 0; c < 3; ++c) sum[c] += img.data[3 * i + c];
    j["kind"] = "image";
    j["width"] = img.width;
    j["height"] = img.height;
    j["mean_rgb"] = {sum[0] / img.pixels(), sum[1] / img.pixels(), sum[2] / img.pixels()};
  }
  if (const double mpp = io::read_image_mpp(path); mpp > 0) j["mpp"] = mpp;  // the resolution the file records
  return j;
}

CommandRegistration reg("info", "Describe images or label maps as nucleisam reads them", [](CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  auto labels = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  app.add_option("files", *files, "Image or label-map files")->required();
  app.add_flag("--labels", *labels, "Read the files as integer label maps");
  app.add_flag("--json", *json, "Print JSON instead of text");
  return [=]() {
    for (const auto& f : *files) {
      auto j = describe(f, *labels);
      if (*json) {
        std::cout << j.dump() << '\n';
      } else {
        std::cout << f << ": " << j["kind"].get<std::string>() << ' ' << j["width"] << 'x' << j["height"];
        if (*labels) std::cout << ", " << j["labels"] << " labels (max " << j["max_label"] << ')';
        if (j.contains("mpp")) std::cout << ", " << j["mpp"].get<double>() << " um/px";
        std::cout << '\n';
      }
    }
    return 0;
  };
});

}  // namespace
}  // namespace nucleisam::cli
