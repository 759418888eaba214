// Writes an annotated dataset split again at another resolution, as a `folder` dataset
// (images/<name>.png, labels/<name>.tif, and classes/ + class_names.txt when it has classes): what a
// scanner at another magnification would have given, through train::ResampledDataset (images by
// area or bilinear, labels by the nearest pixel centre, nuclei left with no pixel dropped).
// Used to measure `segment --mpp` on images that are not at the model's resolution
// (docs/BENCHMARKS.md, "Images at another resolution").
//
//   bench_rescale_dataset --data ../shared/data/monuseg/test --factor 0.5 --out /tmp/monuseg_20x
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/train/dataset_split.h"

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
    const std::shared_ptr<const data::Dataset> dataset = data::open_dataset(data_path);
    const bool classed = !dataset->class_names().empty();
    for (const char* d : {"images", "labels"}) fs::create_directories(fs::path(out) / d);
    if (classed) {
      fs::create_directories(fs::path(out) / "classes");
      std::ofstream names(fs::path(out) / "class_names.txt");
      for (size_t c = 1; c < dataset->class_names().size(); ++c) names << dataset->class_names()[c] << '\n';
    }
    const train::ResampledDataset scaled(dataset, factor);
    long long before = 0, after = 0;
    for (size_t i = 0; i < dataset->size(); ++i) {
      const data::Sample s = scaled.get(i);
      before += dataset->get(i).instance_count();
      after += s.instance_count();
      io::write_image((fs::path(out) / "images" / (s.name + ".png")).string(), s.image);
      io::write_label_map((fs::path(out) / "labels" / (s.name + ".tif")).string(), s.instances);
      if (classed) {
        std::ofstream csv(fs::path(out) / "classes" / (s.name + ".csv"));
        csv << "instance,class\n";
        for (size_t k = 0; k < s.classes.size(); ++k) csv << k + 1 << ',' << s.classes[k] << '\n';
      }
    }
    std::cout << dataset->size() << " samples x" << scaled.factor() << " -> " << out << "; " << before << " nuclei, " << after
              << " kept\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_rescale_dataset: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
