// A small in-memory dataset of synthetic "nuclei" (dark discs on a pink background) for trainer
// and segmenter tests: learnable in a few dozen steps, fully deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/data/dataset.h"

namespace nucleisam::fixtures {

class SyntheticNuclei : public data::Dataset {
 public:
  SyntheticNuclei(size_t count, int size, int classes = 0) : count_(count), size_(size), classes_(classes) {
    if (classes_ > 0) {
      names_.push_back("background");
      for (int c = 1; c <= classes_; ++c) names_.push_back("type" + std::to_string(c));
    }
  }
  size_t size() const override { return count_; }
  std::string name(size_t i) const override { return "syn" + std::to_string(i); }
  const data::ClassNames& class_names() const override { return names_; }
  data::Sample get(size_t i) const override {
    data::Sample s;
    s.name = name(i);
    s.image = Image(size_, size_, 3);
    s.instances = LabelMap(size_, size_);
    for (int y = 0; y < size_; ++y)
      for (int x = 0; x < size_; ++x) {
        s.image.at(y, x, 0) = 230;
        s.image.at(y, x, 1) = 180;
        s.image.at(y, x, 2) = 210;
      }
    // Discs on a jittered grid; radius and position depend on (i, k) only.
    int id = 0;
    const int cell = 16;
    for (int cy = 0; cy + cell <= size_; cy += cell)
      for (int cx = 0; cx + cell <= size_; cx += cell) {
        const uint32_t h = static_cast<uint32_t>((i * 7919 + cy * 131 + cx * 17) % 97);
        if (h % 4 == 0) continue;
        ++id;
        const int r = 3 + static_cast<int>(h % 3);
        const int oy = cy + 8 + static_cast<int>(h % 3) - 1, ox = cx + 8 + static_cast<int>((h / 3) % 3) - 1;
        for (int y = oy - r; y <= oy + r; ++y)
          for (int x = ox - r; x <= ox + r; ++x) {
            if (y < 0 || x < 0 || y >= size_ || x >= size_) continue;
            if ((y - oy) * (y - oy) + (x - ox) * (x - ox) > r * r) continue;
            s.instances.at(y, x) = id;
            const uint8_t dark = classes_ > 0 && (h % 2) ? 60 : 110;
            s.image.at(y, x, 0) = dark;
            s.image.at(y, x, 1) = static_cast<uint8_t>(dark - 40);
            s.image.at(y, x, 2) = static_cast<uint8_t>(dark + 40);
          }
        if (classes_ > 0) s.classes.push_back(1 + static_cast<int>(h % 2) % classes_);
      }
    s.classed = classes_ > 0;
    return s;
  }

 private:
  size_t count_;
  int size_;
  int classes_;
  data::ClassNames names_;
};

}  // namespace nucleisam::fixtures
