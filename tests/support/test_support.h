// Helpers for tests: locating ../shared, skipping cleanly when it is absent, temporary folders.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/nucleus.h"
#include "nucleisam/raster.h"

namespace nucleisam::test {

// Whether `ring` is a valid GeoJSON / OGC polygon shell: closed (last point = first), at least
// four points, no repeated vertex, no two edges that cross, touch or overlap except consecutive
// edges at their shared vertex, non-zero area. On failure `why` says which rule broke (exact
// orientation tests on the float coordinates, O(n^2): for test-sized rings).
bool ring_is_simple(const std::vector<ContourPoint>& ring, std::string* why = nullptr);

// Path under the shared folder (env NUCLEISAM_SHARED, else the configured default), e.g.
// shared_path("data/monuseg"). Does not check existence.
std::string shared_path(const std::string& relative);
bool shared_exists(const std::string& relative);
// Folder holding the built nucleisam executable.
std::string binary_dir();

// Runs the built `nucleisam` with `args` (a shell fragment) and captures stdout + stderr together.
struct CliResult {
  int code = -1;    // exit status; 128 + signal when killed
  std::string out;  // stdout and stderr together
};
CliResult run_cli(const std::string& args);
// Number of '\n' in s (one-line error messages have exactly one).
int count_lines(const std::string& s);

// The bytes of a PNG file (`png`) with a pHYs chunk (x, y pixels per unit; unit 1 is the metre, 0
// an aspect ratio only) inserted after its IHDR chunk, CRC included: a PNG that records its
// resolution (2,000,000 pixels per metre = 0.5 um/px).
std::string png_with_phys(const std::string& png, uint32_t x, uint32_t y, char unit = 1);

// H&E-like tissue drawn from known stains by Beer-Lambert: pixel = 256 exp(-(a_H H + a_E E)) - 1,
// rounded, with H and E the unit OD colours of `stains` (rows of 3, R G B). Pixels cycle through
// glass, haematoxylin alone (a_H 0.5-2), eosin alone (a_E 0.5-1.5) and mixtures (a_H 0.2-1.5, a_E
// 0.3-1.1), amounts drawn from `seed` and then multiplied by h_scale / e_scale.
struct StainedTissue {
  Image image;
  std::vector<double> h, e;  // the amounts of each pixel
};
StainedTissue stained_tissue(const double stains[2][3], int height, int width, uint64_t seed, double h_scale = 1,
                             double e_scale = 1);
// One pixel of that drawing.
void draw_stained_pixel(uint8_t* rgb, const double stains[2][3], double h, double e);

// The temporary a writer of `target` (an AtomicFile) leaves when it is killed mid-write: a child
// process writes it and SIGKILLs itself. Returns its path (the file exists; the pid is dead).
std::string killed_writer_temporary(const std::string& target);

// A fresh empty folder, removed with its content when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace nucleisam::test

// Skips the current test with a clear message when ../shared/<relative> is missing.
#define NUCLEISAM_REQUIRE_SHARED(relative)                                                  \
  do {                                                                                       \
    if (!::nucleisam::test::shared_exists(relative))                                      \
      GTEST_SKIP() << "shared data not found: " << ::nucleisam::test::shared_path(relative) \
                   << " (set NUCLEISAM_SHARED to the shared folder to run this test)";       \
  } while (0)
