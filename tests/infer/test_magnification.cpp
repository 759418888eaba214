// The magnification of images that record no resolution, judged from their nuclei: the evidence
// by hand, the rule at its edges, and whole runs with a method that is surest at one nucleus size.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "nucleisam/atomic_file.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/magnification.h"
#include "nucleisam/infer/run_summary.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/io/nucleus_table.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::infer;
namespace fs = std::filesystem;

namespace {

// A segmentation whose nucleus k covers areas[k] pixels (in rows of a wide map), scores as given.
Segmentation with_areas(const std::vector<int>& areas, const std::vector<float>& scores) {
  Segmentation s;
  int total = 0;
  for (int a : areas) total += a;
  s.instances = LabelMap(1, total + 5);
  int x = 0;
  for (size_t k = 0; k < areas.size(); ++k)
    for (int i = 0; i < areas[k]; ++i) s.instances.at(0, x++) = static_cast<int32_t>(k + 1);
  s.scores = scores;
  return s;
}

double diameter(double area, double mpp) { return 2 * std::sqrt(area / M_PI) * mpp; }

// `worth` refuses the evidence with one nucleus fewer than the rule's 30, or without scores.
void expect_needs_scored_nuclei(const NucleusSizeEvidence& e,
                                bool (*worth)(const NucleusSizeEvidence&, const MagnificationRule&)) {
  NucleusSizeEvidence m = e;
  m.nuclei = 29;
  EXPECT_FALSE(worth(m, {}));
  m = e;
  m.scored = false;
  EXPECT_FALSE(worth(m, {}));
}

}  // namespace

TEST(Magnification, EvidenceByHand) {
  const Segmentation a = with_areas({16, 100, 25}, {0.2f, 0.8f, 0.5f});
  const Segmentation b = with_areas({64, 49}, {0.9f, 0.6f});
  NucleusSizeEvidence e = nucleus_size_evidence({&a, &b}, 0.5);
  EXPECT_EQ(e.nuclei, 5);
  EXPECT_TRUE(e.scored);
  EXPECT_NEAR(e.median_diameter_um, diameter(49, 0.5), 1e-12);  // areas 16 25 49 64 100
  EXPECT_NEAR(e.mean_score, (0.2 + 0.8 + 0.5 + 0.9 + 0.6) / 5, 1e-6);
  // An even count: the mean of the two middle diameters (not the diameter of the mean area).
  const Segmentation c = with_areas({36}, {0.1f});
  e = nucleus_size_evidence({&a, &b, &c}, 0.25);
  EXPECT_EQ(e.nuclei, 6);
  EXPECT_NEAR(e.median_diameter_um, (diameter(36, 0.25) + diameter(49, 0.25)) / 2, 1e-12);
  EXPECT_NEAR(e.mean_score, (0.2 + 0.8 + 0.5 + 0.9 + 0.6 + 0.1) / 6, 1e-6);
  // A method without scores (the classical baseline) gives no confidence to compare.
  const Segmentation unscored = with_areas({30, 30}, {});
  e = nucleus_size_evidence({&a, &unscored}, 0.25);
  EXPECT_EQ(e.nuclei, 5);
  EXPECT_FALSE(e.scored);
  // Nothing found.
  const Segmentation none = with_areas({}, {});
  e = nucleus_size_evidence({&none}, 0.25);
  EXPECT_EQ(e.nuclei, 0);
  EXPECT_FALSE(e.scored);
  EXPECT_EQ(e.median_diameter_um, 0);
  EXPECT_NE(describe(nucleus_size_evidence({&a, &b}, 0.5)).find("5 nuclei, median "), std::string::npos);
}

TEST(Magnification, RuleAtItsEdges) {
  NucleusSizeEvidence at_method;
  at_method.nuclei = 30;
  at_method.median_diameter_um = 4.19;
  at_method.mean_score = 0.85;
  at_method.scored = true;
  EXPECT_TRUE(worth_trying_lower_magnification(at_method));
  NucleusSizeEvidence m = at_method;
  m.median_diameter_um = 4.2;  // ordinary nuclei: nothing to try
  EXPECT_FALSE(worth_trying_lower_magnification(m));
  expect_needs_scored_nuclei(at_method, worth_trying_lower_magnification);

  NucleusSizeEvidence lower = at_method;
  lower.median_diameter_um = 6;
  lower.mean_score = 0.83;  // 0.02 below: still chosen
  EXPECT_TRUE(lower_magnification_fits(at_method, lower));
  lower.mean_score = 0.8299;
  EXPECT_FALSE(lower_magnification_fits(at_method, lower));
  lower.mean_score = 0.9;
  lower.median_diameter_um = 3.49;  // still too small to be nuclei
  EXPECT_FALSE(lower_magnification_fits(at_method, lower));
  lower.median_diameter_um = 10.01;
  EXPECT_FALSE(lower_magnification_fits(at_method, lower));
  lower.median_diameter_um = 6;
  lower.nuclei = 29;
  EXPECT_FALSE(lower_magnification_fits(at_method, lower));
  lower.nuclei = 30;
  EXPECT_TRUE(lower_magnification_fits(at_method, lower));
  EXPECT_FALSE(lower_magnification_fits(m, lower));  // the first pass was not worth a second one

  // Nuclei that are not small: twice the magnification is tried (never both).
  at_method.median_diameter_um = 4.2;
  at_method.mean_score = 0.75;
  EXPECT_TRUE(worth_trying_higher_magnification(at_method));
  EXPECT_FALSE(worth_trying_lower_magnification(at_method));
  m = at_method;
  m.median_diameter_um = 4.19;
  EXPECT_FALSE(worth_trying_higher_magnification(m));
  expect_needs_scored_nuclei(at_method, worth_trying_higher_magnification);
  // ... and chosen only for a clear gain in confidence (0.015), with plausible nuclei there.
  NucleusSizeEvidence higher = at_method;
  higher.median_diameter_um = 4;
  higher.mean_score = 0.766;
  EXPECT_TRUE(higher_magnification_fits(at_method, higher));
  higher.mean_score = 0.7649;
  EXPECT_FALSE(higher_magnification_fits(at_method, higher));
  higher.mean_score = 0.75;  // a tie keeps the method's resolution
  EXPECT_FALSE(higher_magnification_fits(at_method, higher));
  higher.mean_score = 0.9;
  higher.median_diameter_um = 3.99;  // shrunk into specks (what 40x nuclei become)
  EXPECT_FALSE(higher_magnification_fits(at_method, higher));
  higher.median_diameter_um = 10.01;
  EXPECT_FALSE(higher_magnification_fits(at_method, higher));
  higher.median_diameter_um = 4;
  higher.nuclei = 29;
  EXPECT_FALSE(higher_magnification_fits(at_method, higher));
  higher.nuclei = 30;
  EXPECT_TRUE(higher_magnification_fits(at_method, higher));
  m.scored = true;
  m.median_diameter_um = 4.19;
  EXPECT_FALSE(higher_magnification_fits(m, higher));  // small nuclei: the lower was the one to try
}

namespace {

// A method made for 0.25 um/px that finds dark blobs (4-connected pixels with red below 100) and is surest
// of blobs of 314 pixels (5 um across): score exp(-|ln(area / 314)|). Counts its calls.
struct BlobSegmenter : Segmenter {
  int calls = 0;
  std::map<int, int> widths;  // of the images it was given: how many of each
  std::string name() const override { return "blobs"; }
  double microns_per_pixel() const override { return 0.25; }
  Segmentation segment(const Image& image, const std::string&) override {
    ++calls;
    ++widths[image.width];
    Segmentation s;
    s.instances = LabelMap(image.height, image.width);
    int32_t next = 0;
    for (int y0 = 0; y0 < image.height; ++y0)
      for (int x0 = 0; x0 < image.width; ++x0) {
        if (image.at(y0, x0) >= 100 || s.instances.at(y0, x0) != 0) continue;
        const int32_t id = ++next;
        std::vector<std::pair<int, int>> stack{{y0, x0}};
        s.instances.at(y0, x0) = id;
        int area = 0;
        while (!stack.empty()) {
          auto [y, x] = stack.back();
          stack.pop_back();
          ++area;
          const int dy[4] = {-1, 1, 0, 0}, dx[4] = {0, 0, -1, 1};
          for (int k = 0; k < 4; ++k) {
            const int v = y + dy[k], u = x + dx[k];
            if (v < 0 || u < 0 || v >= image.height || u >= image.width) continue;
            if (image.at(v, u) >= 100 || s.instances.at(v, u) != 0) continue;
            s.instances.at(v, u) = id;
            stack.push_back({v, u});
          }
        }
        s.scores.push_back(static_cast<float>(std::exp(-std::fabs(std::log(area / 314.0)))));
      }
    return s;
  }
};

// A pale pink image of 3 x 3 cells of `cell` pixels (96 x 96 by default), a dark purple disc of
// this radius centred in each.
Image discs(double radius, int cell = 32) {
  Image im(3 * cell, 3 * cell, 3);
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      const double cy = cell * std::floor(y / double(cell)) + (cell - 1) / 2.0;
      const double cx = cell * std::floor(x / double(cell)) + (cell - 1) / 2.0;
      const bool inside = (y - cy) * (y - cy) + (x - cx) * (x - cx) <= radius * radius;
      const uint8_t rgb[2][3] = {{235, 215, 235}, {60, 40, 120}};
      for (int c = 0; c < 3; ++c) im.at(y, x, c) = rgb[inside][c];
    }
  return im;
}

std::vector<std::string> write_images(test::TempDir& dir, int n, double radius, int cell = 32) {
  std::vector<std::string> paths;
  for (int i = 0; i < n; ++i) {
    paths.push_back(dir.file("in/t" + std::to_string(i) + ".png"));
    io::write_image(paths.back(), discs(radius, cell));
  }
  return paths;
}

// The dark pixels of one disc of discs(radius).
int disc_pixels(double radius) {
  const Image drawn = discs(radius);
  int n = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) n += drawn.at(y, x) < 100;
  return n;
}

SegmentRunOptions csv_run(const std::string& out) {
  SegmentRunOptions o;
  o.out_dir = out;
  o.formats = parse_output_formats("csv,labels");
  o.stains.mode = StainNormalization::Mode::off;
  return o;
}

// A run of n images of discs of this radius whose sample is tried again at `other` um/px (images
// `other_width` pixels wide there) and kept at the method's 0.25 um/px: the sample segmented twice,
// the run taking its first pass. Returns the widths the method was given (how many of each).
std::map<int, int> expect_kept_after_trying(test::TempDir& dir, int n, double radius,
                                            const std::string& other, int other_width) {
  const std::vector<std::string> images = write_images(dir, n, radius);
  BlobSegmenter seg;
  SegmentRunReport r = run_segmentation(images, seg, csv_run(dir.file("out")));
  EXPECT_EQ(r.unknown_mpp, 0.25);
  EXPECT_NE(r.magnification_note.find("at " + other + " um/px: "), std::string::npos) << r.magnification_note;
  EXPECT_EQ(r.magnification_note.find("too few"), std::string::npos) << r.magnification_note;
  EXPECT_EQ(seg.calls, n + n);
  EXPECT_EQ(seg.widths[other_width], n);
  return seg.widths;
}

}  // namespace

TEST(Magnification, ARunOfHalfMagnificationTilesIsSegmentedAtTheModelsResolution) {
  // Discs of radius 5 (79 px, 2.5 um at 0.25 um/px): what a 20x scan gives of 5-um nuclei.
  test::TempDir dir;
  const std::vector<std::string> images = write_images(dir, 20, 5);
  BlobSegmenter seg;
  SegmentRunReport r = run_segmentation(images, seg, csv_run(dir.file("out")));
  EXPECT_EQ(r.unknown_mpp, 0.5);
  EXPECT_NE(r.magnification_note.find("taken to be at 0.5 um/px"), std::string::npos) << r.magnification_note;
  // The sample (16 images, t2, t7, t12 and t17 left out) at both resolutions, the 4 others once,
  // enlarged: never one image twice at the chosen resolution.
  EXPECT_EQ(seg.calls, 16 + 16 + 4);
  EXPECT_EQ(seg.widths[96], 16);
  EXPECT_EQ(seg.widths[192], 20);
  EXPECT_EQ(r.segmented, 20);
  EXPECT_EQ(r.nuclei, 180);
  // Outputs in the image's own pixels: about the discs as drawn (81 pixels each; the method's
  // threshold on the enlarged edges takes a little off), not enlarged 4x.
  for (const auto& n : io::read_nucleus_table(dir.file("out/t9_nuclei.csv"))) {
    EXPECT_GE(n.area, 60);
    EXPECT_LE(n.area, 85);
  }
  // A sampled image (t0, its outputs from the sample's pass) and one outside the sample (t2, segmented
  // in the run) are the same picture: the same outputs.
  EXPECT_EQ(read_file(dir.file("out/t0_nuclei.csv")), read_file(dir.file("out/t2_nuclei.csv")));
  EXPECT_EQ(read_file(dir.file("out/t0_labels.tif")), read_file(dir.file("out/t2_labels.tif")));
  EXPECT_TRUE(io::read_label_map(dir.file("out/t0_labels.tif")).same_size(96, 96));
  // 2.5-um nuclei at 0.5 um/px are 5 um: nothing to hint.
  EXPECT_EQ(r.resolution_hint, "");
  EXPECT_NEAR(r.median_diameter_um, diameter(72, 0.5), 0.4);

  // Resumed after losing three images' outputs: the sample is drawn from all twenty again, so the
  // three are segmented at the same resolution, with the same outputs.
  const std::string before = read_file(dir.file("out/t4_nuclei.csv"));
  for (int i : {1, 4, 7}) fs::remove(dir.file("out/t" + std::to_string(i) + "_nuclei.csv"));
  r = run_segmentation(images, seg, csv_run(dir.file("out")));
  EXPECT_EQ(r.segmented, 3);
  EXPECT_EQ(r.skipped, 17);
  EXPECT_EQ(r.unknown_mpp, 0.5);
  EXPECT_EQ(read_file(dir.file("out/t4_nuclei.csv")), before);
  // Everything done: nothing is sampled.
  seg.calls = 0;
  r = run_segmentation(images, seg, csv_run(dir.file("out")));
  EXPECT_EQ(seg.calls, 0);
  EXPECT_EQ(r.skipped, 20);
  EXPECT_EQ(r.magnification_note, "");

  // Told not to estimate, the images are taken at the method's resolution and the hint speaks.
  SegmentRunOptions o = csv_run(dir.file("out_model"));
  o.estimate_unknown_mpp = false;
  seg.calls = 0;
  r = run_segmentation(images, seg, o);
  EXPECT_EQ(seg.calls, 20);
  EXPECT_EQ(r.unknown_mpp, 0.25);
  EXPECT_NE(r.resolution_hint.find("smaller"), std::string::npos) << r.resolution_hint;
}

TEST(Magnification, OrdinaryNucleiAreNotSegmentedTwiceAtTheirResolution) {
  // Radius 10 (317 px, 5 um at 0.25 um/px): the method's own magnification. The sample is also
  // tried shrunk (twice the magnification), where the method is less sure of its 79-pixel blobs;
  // the sample's first pass gives the outputs.
  test::TempDir dir;
  EXPECT_EQ(expect_kept_after_trying(dir, 10, 10, "0.125", 48)[96], 10);
  for (const auto& n : io::read_nucleus_table(dir.file("out/t3_nuclei.csv"))) EXPECT_NEAR(n.area, 317, 4);
}

TEST(Magnification, SmallNucleiTheMethodIsSurerOfAsTheyAreStay) {
  // Radius 8 (about 200 px, 4.0 um at 0.25 um/px): small, so the sample is tried at 0.5 um/px,
  // where the blobs are 4x larger (about 800 px) and the method is less sure of them (score about
  // 0.39 against 0.64): kept at 0.25 um/px.
  test::TempDir dir;
  expect_kept_after_trying(dir, 4, 8, "0.5", 192);
  // Outputs from the sample's first pass: every nucleus exactly a disc as drawn.
  for (const auto& n : io::read_nucleus_table(dir.file("out/t0_nuclei.csv")))
    EXPECT_EQ(n.area, disc_pixels(8));
}

TEST(Magnification, ARunOfTwiceMagnificationTilesIsShrunkToTheModelsResolution) {
  // Discs of radius 22 (1521 px, 11 um at 0.25 um/px) in 48-pixel cells: what a microscope camera
  // at 80x gives of 5.5-um nuclei. Shrunk 2x they are near the method's favourite 314-pixel blobs.
  test::TempDir dir;
  const std::vector<std::string> images = write_images(dir, 20, 22, 48);
  BlobSegmenter seg;
  SegmentRunOptions judged = csv_run(dir.file("out"));
  judged.summary = true;
  SegmentRunReport r = run_segmentation(images, seg, judged);
  EXPECT_EQ(r.unknown_mpp, 0.125);
  EXPECT_NE(r.magnification_note.find("taken to be at 0.125 um/px (a scan at twice the magnification"),
            std::string::npos)
      << r.magnification_note;
  // The sample twice (as they are, then shrunk); the 4 others once, shrunk.
  EXPECT_EQ(seg.calls, 16 + 16 + 4);
  EXPECT_EQ(seg.widths[144], 16);
  EXPECT_EQ(seg.widths[72], 20);
  EXPECT_EQ(r.nuclei, 180);
  // Outputs in the image's own pixels: about the discs as drawn (1521 pixels), not shrunk 4x.
  for (const auto& n : io::read_nucleus_table(dir.file("out/t9_nuclei.csv"))) {
    EXPECT_GE(n.area, 1400);
    EXPECT_LE(n.area, 1650);
  }
  EXPECT_EQ(read_file(dir.file("out/t0_nuclei.csv")), read_file(dir.file("out/t2_nuclei.csv")));
  EXPECT_TRUE(io::read_label_map(dir.file("out/t0_labels.tif")).same_size(144, 144));
  EXPECT_EQ(r.resolution_hint, "");  // 5.5-um nuclei at 0.125 um/px
  // The run summary says so for each image; sampled ones (t0, not t2) were timed with the sample.
  const RunSummary summary(dir.file("out/segment_summary.csv"));
  for (const char* stem : {"t0", "t2"}) {
    EXPECT_EQ(summary.find(stem)->at("mpp"), "0.125") << stem;
    EXPECT_EQ(summary.find(stem)->at("mpp_source"), "nuclei") << stem;
  }
  EXPECT_EQ(summary.find("t0")->count("seconds"), 0u);
  EXPECT_EQ(summary.find("t2")->count("seconds"), 1u);
  // Discs of 1521 pixels at 0.125 um/px: 23.77 um^2, 5.50 um across (the blob method's discs are
  // about those drawn).
  EXPECT_NEAR(std::stod(summary.find("t2")->at("median_diameter_um")), 5.5, 0.2);
  // Resumed with one image left: the verdict is taken from the summary, not judged again (one call).
  fs::remove(dir.file("out/t5_nuclei.csv"));
  const int calls = seg.calls;
  r = run_segmentation(images, seg, judged);
  EXPECT_EQ(seg.calls, calls + 1);
  EXPECT_EQ(r.unknown_mpp, 0.125);
  EXPECT_NE(r.magnification_note.find("taken to be at 0.125 um/px, as the run that segmented t0 judged"),
            std::string::npos)
      << r.magnification_note;
  EXPECT_EQ(read_file(dir.file("out/t5_nuclei.csv")), read_file(dir.file("out/t2_nuclei.csv")));
  EXPECT_EQ(RunSummary(dir.file("out/segment_summary.csv")).find("t5")->at("mpp_source"), "nuclei");

  // Told not to estimate: taken at the method's resolution, and the hint says the nuclei are large.
  SegmentRunOptions o = csv_run(dir.file("out_model"));
  o.estimate_unknown_mpp = false;
  o.summary = true;
  r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.unknown_mpp, 0.25);
  EXPECT_NE(r.resolution_hint.find("larger"), std::string::npos) << r.resolution_hint;
  EXPECT_EQ(RunSummary(dir.file("out_model/segment_summary.csv")).find("t0")->at("mpp_source"), "model");
}

TEST(Magnification, LargeNucleiTheMethodIsSurerOfAsTheyAreStay) {
  // Radius 12 (about 450 px, 6.8 um at 0.25 um/px): large, so the sample is tried at 0.125 um/px,
  // where the blobs are 4x smaller (about 113 px) and the method is less sure of them (score about
  // 0.36 against 0.69): kept at 0.25 um/px, with the sample's first pass as the outputs.
  test::TempDir dir;
  EXPECT_EQ(expect_kept_after_trying(dir, 4, 12, "0.125", 48)[96], 4);
  // Outputs from the sample's first pass: every nucleus exactly a disc as drawn.
  for (const auto& n : io::read_nucleus_table(dir.file("out/t0_nuclei.csv")))
    EXPECT_EQ(n.area, disc_pixels(12));
}

TEST(Magnification, ImagesThatRecordTheirResolutionAreNotJudged) {
  test::TempDir dir;
  io::write_image(dir.file("plain.png"), discs(5));
  std::vector<std::string> images;
  for (int i = 0; i < 6; ++i) {
    images.push_back(dir.file("in/r" + std::to_string(i) + ".png"));
    write_file_atomic(images.back(), test::png_with_phys(read_file(dir.file("plain.png")), 4000000, 4000000));
  }
  BlobSegmenter seg;
  SegmentRunReport r = run_segmentation(images, seg, csv_run(dir.file("out")));
  EXPECT_EQ(r.unknown_mpp, 0);  // none unknown
  EXPECT_EQ(r.magnification_note, "");
  EXPECT_EQ(seg.calls, 6);
  EXPECT_EQ(seg.widths[96], 6);  // 0.25 um/px as recorded: as they are
}

TEST(Magnification, TooFewNucleiOrNoScoresJudgeNothing) {
  // 3 images of 9 small blobs: 27 nuclei, 3 short of a judgement; the method's resolution stays.
  test::TempDir dir;
  const std::vector<std::string> images = write_images(dir, 3, 5);
  BlobSegmenter seg;
  SegmentRunOptions o = csv_run(dir.file("out"));
  o.summary = true;
  SegmentRunReport r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.unknown_mpp, 0.25);
  EXPECT_EQ(seg.calls, 3);
  EXPECT_NE(r.magnification_note.find("too few nuclei to judge (30 needed)"), std::string::npos)
      << r.magnification_note;
  // The run summary does not call that a judgement: the method's resolution, unjudged.
  EXPECT_EQ(RunSummary(dir.file("out/segment_summary.csv")).find("t1")->at("mpp_source"), "model");
  // A method that does not score its nuclei: nothing to compare, so nothing is judged.
  struct Unscored : BlobSegmenter {
    Segmentation segment(const Image& image, const std::string& source) override {
      Segmentation s = BlobSegmenter::segment(image, source);
      s.scores.clear();
      return s;
    }
  } unscored;
  const std::vector<std::string> more = write_images(dir, 6, 5);
  r = run_segmentation(more, unscored, csv_run(dir.file("out_unscored")));
  EXPECT_EQ(r.unknown_mpp, 0.25);
  EXPECT_EQ(unscored.calls, 6);
  EXPECT_NE(r.magnification_note.find("blobs gives its nuclei no scores"), std::string::npos) << r.magnification_note;
  EXPECT_NE(r.resolution_hint.find("smaller"), std::string::npos) << r.resolution_hint;  // the hint still speaks
}
