// Lizard: one MATLAB v5 .mat per image ('inst_map' H x W, 'id' N x 1 instance ids, 'class' N x 1
// class ids 1..6) and a PNG image with the same stem. The published archive splits images over
// Lizard_Images1/ and Lizard_Images2/ and labels under Lizard_Labels/Labels/, so both are found
// by searching the folder (four levels deep) rather than by fixed sub-paths.
#include <algorithm>
#include <filesystem>
#include <map>

#include "data/readers/dataset_readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/mat_file.h"

namespace fs = std::filesystem;

namespace nucleisam::data {
namespace {

struct LizardEntry {
  std::string name, image, mat;
};

class LizardDataset : public Dataset {
 public:
  explicit LizardDataset(std::vector<LizardEntry> entries) : entries_(std::move(entries)) {}
  size_t size() const override { return entries_.size(); }
  std::string name(size_t i) const override { return entries_.at(i).name; }
  const ClassNames& class_names() const override { return lizard_class_names(); }
  std::string format() const override { return "lizard"; }
  double microns_per_pixel() const override { return 0.5; }

  Sample get(size_t i) const override {
    const LizardEntry& e = entries_.at(i);
    Sample s;
    s.name = e.name;
    s.image = io::read_image(e.image);
    auto vars = io::read_mat(e.mat, {"inst_map", "id", "class"});
    for (const char* v : {"inst_map", "id", "class"})
      if (!vars.count(v)) throw DataError(e.mat + ": no variable '" + v + "'");
    const io::MatArray& map = vars["inst_map"];
    if (map.dims.size() != 2) throw DataError(e.mat + ": 'inst_map' is not a 2-D array");
    s.instances = LabelMap(static_cast<int>(map.rows()), static_cast<int>(map.cols()));
    s.instances.data = map.to_int32(e.mat);
    check_same_size(s.image, s.instances, e.image, e.mat);
    std::vector<int32_t> ids = vars["id"].to_int32(e.mat), classes = vars["class"].to_int32(e.mat);
    if (ids.size() != classes.size())
      throw DataError(e.mat + ": 'id' has " + std::to_string(ids.size()) + " entries but 'class' has " +
                      std::to_string(classes.size()));
    std::map<int32_t, int> class_of;
    for (size_t k = 0; k < ids.size(); ++k) class_of[ids[k]] = classes[k];
    finish_sample(s, &class_of, static_cast<int>(lizard_class_names().size()) - 1, e.mat);
    return s;
  }

 private:
  std::vector<LizardEntry> entries_;
};

void collect(const fs::path& folder, int depth, std::map<std::string, std::string>& images,
             std::vector<std::string>& mats) {
  for (const std::string& f : list_files(folder.string(), {".png"})) images.emplace(stem_of(f), f);
  for (const std::string& f : list_files(folder.string(), {".mat"})) mats.push_back(f);
  if (depth == 0) return;
  std::vector<fs::path> subs;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) subs.push_back(it->path());
  std::sort(subs.begin(), subs.end());
  for (const auto& sub : subs) collect(sub, depth - 1, images, mats);
}

}  // namespace

std::unique_ptr<Dataset> open_lizard(const std::string& path) {
  std::map<std::string, std::string> images;
  std::vector<std::string> mats;
  collect(path, 4, images, mats);
  if (mats.empty()) throw DataError(path + ": no Lizard label .mat files found");
  std::sort(mats.begin(), mats.end(), [](const std::string& a, const std::string& b) {
    return stem_of(a) < stem_of(b);
  });
  std::vector<LizardEntry> entries;
  for (const std::string& mat : mats) {
    LizardEntry e;
    e.name = stem_of(mat);
    e.mat = mat;
    auto it = images.find(e.name);
    if (it == images.end()) throw DataError(mat + ": no image " + e.name + ".png under " + path);
    e.image = it->second;
    entries.push_back(std::move(e));
  }
  return std::make_unique<LizardDataset>(std::move(entries));
}

}  // namespace nucleisam::data
