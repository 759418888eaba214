// Writes an annotated dataset split again as another scanner or lab would have given it, as a
// `folder` dataset (images/<name>.png, labels/<name>.tif, and classes/ + class_names.txt when it has
// classes). Each shift is optional and they are applied in this order, the order in which they
// happen to a slide:
//   --factor F        another magnification, through train::ResampledDataset (images by area or
//                     bilinear, labels by the nearest pixel centre, nuclei left with no pixel dropped)
//   --stain H,E       haematoxylin and eosin amounts scaled: paler or darker staining
//   --stain-basis B   the stain colours that scaling uses: `ruifrok` (default; the fixed Ruifrok and
//                     Johnston matrix of the training stain jitter, data::stain_jitter) or `image`
//                     (each image's own Macenko estimate, scale_stain_amounts: a shift independent
//                     of the training augmentation's basis; an image with too little tissue for its
//                     own estimate takes the estimate of all the split's images together)
//   --color B,C,S,HUE brightness, contrast, saturation factors and a hue shift in turns
//                     (data::color_jitter): another scanner's colour response
//   --blur SIGMA      Gaussian blur of SIGMA pixels: a scan slightly out of focus
//   --jpeg Q          JPEG at quality Q: a compressed archive
// Labels move only with --factor. Used to measure how the models hold up on images unlike the
// training data (docs/BENCHMARKS.md, "Images at another resolution", "Images from other labs").
//
//   bench_shift_dataset --data ../shared/data/monuseg/test --factor 0.5 --out /tmp/monuseg_20x
//   bench_shift_dataset --data ../shared/data/monuseg/test --stain 0.6,1.4 --jpeg 60 --out /tmp/pale
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "nucleisam/data/augment.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/stain.h"
#include "nucleisam/train/dataset_split.h"

using namespace nucleisam;
namespace fs = std::filesystem;

namespace {

std::vector<double> numbers(const std::string& option, const std::string& text, size_t count) {
  std::vector<double> v;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) v.push_back(std::stod(item));
  if (v.size() != count)
    throw std::invalid_argument(option + " takes " + std::to_string(count) + " comma-separated numbers");
  return v;
}

struct Shift {
  double factor = 1;
  std::vector<double> stain, color;
  bool image_basis = false;  // --stain-basis image
  double blur = 0;
  int jpeg = 0;
};

// The Macenko estimate of all of a split's images together (for images too small to estimate).
StainVectors split_stains(const data::Dataset& dataset) {
  std::vector<Image> images;
  for (size_t i = 0; i < dataset.size(); ++i) images.push_back(dataset.get(i).image);
  std::vector<const Image*> all;
  for (const Image& image : images) all.push_back(&image);
  const StainEstimate e = estimate_stains(all);
  if (!e.ok) throw DataError("cannot estimate the split's stains: " + e.why);
  return e.stains;
}

Image apply(Image image, const Shift& s, const std::function<StainVectors()>& fallback_stains) {
  if (!s.stain.empty() && s.image_basis) {
    const StainEstimate e = estimate_stains({&image});
    const double factor[2] = {s.stain[0], s.stain[1]};
    image = scale_stain_amounts(image, e.ok ? e.stains : fallback_stains(), factor);
  } else if (!s.stain.empty()) {
    data::StainFactors f;
    f.alpha[0] = s.stain[0];
    f.alpha[1] = s.stain[1];
    image = data::stain_jitter(image, f);
  }
  if (!s.color.empty()) image = data::color_jitter(image, {s.color[0], s.color[1], s.color[2], s.color[3]});
  cv::Mat m(image.height, image.width, CV_8UC3, image.data.data());
  if (s.blur > 0) cv::GaussianBlur(m, m, cv::Size(0, 0), s.blur, s.blur, cv::BORDER_REFLECT101);
  if (s.jpeg > 0) {
    std::vector<uchar> bytes;
    cv::imencode(".jpg", m, bytes, {cv::IMWRITE_JPEG_QUALITY, s.jpeg});  // channel order is kept
    cv::imdecode(bytes, cv::IMREAD_COLOR).copyTo(m);
  }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_path, out;
  Shift shift;
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string k = argv[i], v = argv[i + 1];
      if (k == "--data") data_path = v;
      else if (k == "--factor") shift.factor = std::stod(v);
      else if (k == "--stain") shift.stain = numbers(k, v, 2);
      else if (k == "--stain-basis") {
        if (v != "ruifrok" && v != "image")
          throw std::invalid_argument("--stain-basis takes ruifrok or image");
        shift.image_basis = v == "image";
      }
      else if (k == "--color") shift.color = numbers(k, v, 4);
      else if (k == "--blur") shift.blur = std::stod(v);
      else if (k == "--jpeg") shift.jpeg = std::stoi(v);
      else if (k == "--out") out = v;
      else throw std::invalid_argument("unknown option " + k);
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_shift_dataset: " << e.what() << '\n';
    return 2;
  }
  if (data_path.empty() || out.empty() || !(shift.factor > 0) || shift.jpeg < 0 || shift.jpeg > 100) {
    std::cerr << "usage: bench_shift_dataset --data SPLIT --out FOLDER [--factor F] [--stain H,E] "
                 "[--stain-basis ruifrok|image] [--color B,C,S,HUE] [--blur SIGMA] [--jpeg Q]\n";
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
    const train::ResampledDataset scaled(dataset, shift.factor);
    long long before = 0, after = 0;
    std::optional<StainVectors> joint;
    int fallbacks = 0;
    const auto fallback_stains = [&] {
      if (!joint) joint = split_stains(scaled);
      ++fallbacks;
      return *joint;
    };
    for (size_t i = 0; i < dataset->size(); ++i) {
      const data::Sample s = scaled.get(i);
      before += dataset->get(i).instance_count();
      after += s.instance_count();
      io::write_image((fs::path(out) / "images" / (s.name + ".png")).string(),
                      apply(s.image, shift, fallback_stains));
      io::write_label_map((fs::path(out) / "labels" / (s.name + ".tif")).string(), s.instances);
      if (classed) {
        std::ofstream csv(fs::path(out) / "classes" / (s.name + ".csv"));
        csv << "instance,class\n";
        for (size_t k = 0; k < s.classes.size(); ++k) csv << k + 1 << ',' << s.classes[k] << '\n';
      }
    }
    std::cout << dataset->size() << " samples x" << scaled.factor() << " -> " << out << "; " << before
              << " nuclei, " << after << " kept";
    if (fallbacks > 0) std::cout << "; " << fallbacks << " with too little tissue took the split's stains";
    std::cout << '\n';
  } catch (const std::exception& e) {
    std::cerr << "bench_shift_dataset: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
