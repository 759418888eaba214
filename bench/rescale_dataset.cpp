// Writes an annotated dataset split again at another resolution, as a `folder` dataset
// (images/<name>.png, labels/<name>.tif, and classes/ + class_names.txt when it has classes): what a
// scanner at another magnification would have given. Images are resampled by area (shrinking) or
// bilinear (enlarging), labels by the nearest pixel centre; nuclei left with no pixel are dropped.
// Used to measure `segment --mpp` on images that are not at the model's resolution
// (docs/BENCHMARKS.md, "Images at another resolution").
//
//   bench_rescale_dataset --data ../shared/data/monuseg/test --factor 0.5 --out /tmp/monuseg_20x
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/resample.h"
#include "nucleisam/relabel.h"

using namespace nucleisam;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string data_path, out;
  double factor = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--data") data_path = v;
    else if (k == "--factor") factor = std::stod(v);
    else if (k == "--out") out = v;
    else {
      std::cerr << "unknown option " << k << '\n';
      return 2;
    }
  }
  if (data_path.empty() || out.empty() || !(factor > 0)) {
    std::cerr << "usage: bench_rescale_dataset --data SPLIT --factor F --out FOLDER\n";
    return 2;
  }
  try {
    const auto dataset = data::open_dataset(data_path);
    const bool classed = !dataset->class_names().empty();
    for (const char* d : {"images", "labels"}) fs::create_directories(fs::path(out) / d);
    if (classed) {
      fs::create_directories(fs::path(out) / "classes");
      std::ofstream names(fs::path(out) / "class_names.txt");
      for (size_t c = 1; c < dataset->class_names().size(); ++c) names << dataset->class_names()[c] << '\n';
    }
    long long before = 0, after = 0;
    for (size_t i = 0; i < dataset->size(); ++i) {
      const data::Sample s = dataset->get(i);
      const int w = std::max(1, static_cast<int>(std::lround(s.image.width * factor)));
      const int h = std::max(1, static_cast<int>(std::lround(s.image.height * factor)));
      LabelMap labels = resample_labels(s.instances, w, h);
      const std::vector<int32_t> old_ids = relabel_consecutive(labels);
      before += s.instance_count();
      after += static_cast<long long>(old_ids.size());
      io::write_image((fs::path(out) / "images" / (s.name + ".png")).string(), resample_image(s.image, w, h));
      io::write_label_map((fs::path(out) / "labels" / (s.name + ".tif")).string(), labels);
      if (classed) {
        std::ofstream csv(fs::path(out) / "classes" / (s.name + ".csv"));
        csv << "instance,class\n";
        for (size_t k = 0; k < old_ids.size(); ++k) csv << k + 1 << ',' << s.classes.at(old_ids[k] - 1) << '\n';
      }
    }
    std::cout << dataset->size() << " samples x" << factor << " -> " << out << "; " << before << " nuclei, " << after
              << " kept\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_rescale_dataset: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
