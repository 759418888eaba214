// `nucleisam info`: what a file is, as the engine reads it (image size, recorded resolution, stain
// amounts against the shipped models' training range; label-map instance count).
#include <nlohmann/json.hpp>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include <filesystem>

#include "cli/command.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/stain.h"

namespace nucleisam::cli {
namespace {

// A dataset split (a folder open_dataset reads): its format, size, classes and resolution, from
// the first sample only (a PanNuke fold holds thousands).
nlohmann::json describe_dataset(const std::string& path) {
  std::string format;
  try {
    format = data::detect_format(path);
  } catch (const DataError& e) {
    throw IoError(path + ": is a folder, and not a dataset split nucleisam reads (" + e.what() + ")");
  }
  const auto dataset = data::open_dataset(path, format);
  nlohmann::json j;
  j["file"] = path;
  j["kind"] = "dataset";
  j["format"] = format;
  j["samples"] = dataset->size();
  std::vector<std::string> classes;
  for (size_t c = 1; c < dataset->class_names().size(); ++c) classes.push_back(dataset->class_names()[c]);
  j["classes"] = classes;
  if (dataset->microns_per_pixel() > 0) j["mpp"] = dataset->microns_per_pixel();
  if (dataset->size() > 0) {
    const data::Sample s = dataset->get(0);
    j["first"] = {{"name", s.name}, {"width", s.image.width}, {"height", s.image.height},
                  {"nuclei", s.instance_count()}};
    if (!s.group.empty()) j["first"]["group"] = s.group;
  }
  return j;
}

nlohmann::json describe(const std::string& path, bool labels) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return describe_dataset(path);
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
    if (img.channels == 3) {
      // Its stains against the range the shipped models learned from (segment --stain-normalize).
      const StainEstimate e = estimate_stains({&img});
      if (e.ok) {
        const StainVectors& v = e.stains;
        const StainAmountRange& r = reference_amount_range();
        std::vector<std::string> outside;
        for (int k = 0; k < 2; ++k)
          if (v.max_amount[k] < r.low[k] || v.max_amount[k] > r.high[k])
            outside.push_back(std::string(k == 0 ? "haematoxylin" : "eosin") +
                              (v.max_amount[k] < r.low[k] ? " below" : " above"));
        j["stains"] = {{"haematoxylin", {v.colour[0][0], v.colour[0][1], v.colour[0][2]}},
                       {"eosin", {v.colour[1][0], v.colour[1][1], v.colour[1][2]}},
                       {"amounts", {v.max_amount[0], v.max_amount[1]}},
                       {"outside_training_range", outside},
                       {"ink_or_dye_fraction",  // of the tissue pixels, left out of the estimate
                        static_cast<double>(e.dye_pixels) /
                            static_cast<double>(std::max<int64_t>(1, e.dye_pixels + e.tissue_pixels))}};
      } else {
        j["stains"] = {{"why", e.why}};
      }
    }
  }
  if (const double mpp = io::read_image_mpp(path); mpp > 0) j["mpp"] = mpp;  // the resolution the file records
  return j;
}

CommandRegistration reg("info", "Describe images, label maps or dataset splits as nucleisam reads them", [](CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  auto labels = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  app.add_option("files", *files, "Image or label-map files, or dataset splits (folders)")->required();
  app.add_flag("--labels", *labels, "Read the files as integer label maps");
  app.add_flag("--json", *json, "Print JSON instead of text");
  return [=]() {
    for (const auto& f : *files) {
      auto j = describe(f, *labels);
      if (*json) {
        std::cout << j.dump() << '\n';
      } else {
        if (j["kind"] == "dataset") {
          std::cout << f << ": " << j["format"].get<std::string>() << " split, " << j["samples"] << " samples";
          if (j.contains("first"))
            std::cout << " (the first " << j["first"]["width"] << 'x' << j["first"]["height"] << ", "
                      << j["first"]["nuclei"] << " nuclei"
                      << (j["first"].contains("group") ? ", " + j["first"]["group"].get<std::string>() : "") << ')';
          std::string classes;
          for (const auto& c : j["classes"]) classes += (classes.empty() ? "" : ", ") + c.get<std::string>();
          std::cout << (classes.empty() ? ", no classes" : ", classes " + classes);
          if (j.contains("mpp")) std::cout << ", released at " << j["mpp"].get<double>() << " um/px";
          std::cout << '\n';
          continue;
        }
        std::cout << f << ": " << j["kind"].get<std::string>() << ' ' << j["width"] << 'x' << j["height"];
        if (*labels) std::cout << ", " << j["labels"] << " labels (max " << j["max_label"] << ')';
        if (j.contains("mpp")) std::cout << ", " << j["mpp"].get<double>() << " um/px";
        if (j.contains("stains") && j["stains"].contains("amounts")) {
          const auto& st = j["stains"];
          std::ostringstream amounts;  // two decimals here only
          amounts << std::fixed << std::setprecision(2) << st["amounts"][0].get<double>() << " E "
                  << st["amounts"][1].get<double>();
          std::cout << ", stain amounts H " << amounts.str();
          std::string outside;
          for (const auto& o : st["outside_training_range"]) outside += (outside.empty() ? "" : ", ") + o.get<std::string>();
          std::cout << (outside.empty() ? " (within the range the shipped models learned from)"
                                        : " (" + outside + " the range the shipped models learned from; segment "
                                          "brings it in)");
          if (const double ink = st["ink_or_dye_fraction"].get<double>(); ink >= 0.001) {
            std::ostringstream share;
            share << std::fixed << std::setprecision(1) << 100 * ink;
            std::cout << "; " << share.str() << "% of the tissue left out as ink or dye";
          }
        }
        if (!*labels && !j.contains("mpp"))
          std::cout << "; no resolution recorded (segment judges it from the nuclei; --mpp gives it)";
        std::cout << '\n';
      }
    }
    return 0;
  };
});

}  // namespace
}  // namespace nucleisam::cli
