// MoNuSeg split folder: images/<stem>.tif with either instance_labels/<stem>_label.png (the
// published training label maps, preferred when both exist) or annotations_xml/<stem>.xml
// (Aperio polygons, rasterised by nucleisam::rasterize_regions). No classes.
#include <filesystem>

#include "data/readers/dataset_readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/aperio_xml.h"

namespace fs = std::filesystem;

namespace nucleisam::data {
namespace {

struct MonusegEntry {
  std::string name, image, labels;
  bool xml = false;
};

class MonusegDataset : public Dataset {
 public:
  explicit MonusegDataset(std::vector<MonusegEntry> entries) : entries_(std::move(entries)) {}
  size_t size() const override { return entries_.size(); }
  std::string name(size_t i) const override { return entries_.at(i).name; }
  const ClassNames& class_names() const override { return names_; }
  std::string format() const override { return "monuseg"; }
  double microns_per_pixel() const override { return 0.25; }

  Sample get(size_t i) const override {
    const MonusegEntry& e = entries_.at(i);
    Sample s;
    s.name = e.name;
    s.image = io::read_image(e.image);
    if (e.xml) {
      s.instances = io::rasterize_regions(io::read_aperio_xml(e.labels), s.image.height, s.image.width);
    } else {
      s.instances = io::read_label_map(e.labels);
      check_same_size(s.image, s.instances, e.image, e.labels);
    }
    finish_sample(s, nullptr, 0, e.labels);
    return s;
  }

 private:
  std::vector<MonusegEntry> entries_;
  ClassNames names_;
};

}  // namespace

std::unique_ptr<Dataset> open_monuseg(const std::string& path) {
  fs::path root(path);
  std::vector<std::string> images = list_files((root / "images").string(), {".tif", ".tiff", ".png"});
  if (images.empty()) throw DataError(path + ": no images in " + (root / "images").string());
  std::vector<MonusegEntry> entries;
  for (const std::string& image : images) {
    MonusegEntry e;
    e.name = stem_of(image);
    e.image = image;
    fs::path png = root / "instance_labels" / (e.name + "_label.png");
    fs::path xml = root / "annotations_xml" / (e.name + ".xml");
    std::error_code ec;
    if (fs::is_regular_file(png, ec)) {
      e.labels = png.string();
    } else if (fs::is_regular_file(xml, ec)) {
      e.labels = xml.string();
      e.xml = true;
    } else {
      throw DataError(image + ": no annotation (looked for " + png.string() + " and " + xml.string() + ")");
    }
    entries.push_back(std::move(e));
  }
  return std::make_unique<MonusegDataset>(std::move(entries));
}

}  // namespace nucleisam::data
