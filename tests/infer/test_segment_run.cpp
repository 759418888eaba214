// The segment pipeline without the CLI: output formats, the four writers agreeing with each
// other, input discovery, resume and per-image failure handling (with a scripted segmenter).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/run_summary.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/io/nucleus_table.h"
#include "nucleisam/output_path.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;
using namespace nucleisam::infer;
namespace fs = std::filesystem;

namespace {

// Two squares, the second classified; counts how often it was asked.
struct ScriptedSegmenter : Segmenter {
  int calls = 0;
  std::string name() const override { return "scripted"; }
  Segmentation segment(const Image& image, const std::string&) override {
    ++calls;
    Segmentation s;
    s.instances = LabelMap(image.height, image.width);
    for (int y = 2; y < 6; ++y)
      for (int x = 2; x < 6; ++x) s.instances.at(y, x) = 1;
    for (int y = 10; y < 13; ++y)
      for (int x = 8; x < 14; ++x) s.instances.at(y, x) = 2;
    s.classes = {0, 3};
    s.scores = {0.5f, 0.9f};
    s.class_names = {"", "a", "b", "tumour"};
    return s;
  }
};

// The same method at 0.25 um/px; remembers the width of the image it was given.
struct ScriptedAt40x : ScriptedSegmenter {
  int seen_width = 0;
  double microns_per_pixel() const override { return 0.25; }
  Segmentation segment(const Image& image, const std::string& source) override {
    seen_width = image.width;
    return ScriptedSegmenter::segment(image, source);
  }
};

Image grey(int h, int w) { return Image(h, w, 3, 128); }

}  // namespace

TEST(SegmentRun, ParseFormats) {
  OutputFormats f = parse_output_formats("csv,overlay");
  EXPECT_FALSE(f.geojson);
  EXPECT_TRUE(f.csv);
  EXPECT_FALSE(f.labels);
  EXPECT_TRUE(f.overlay);
  EXPECT_THROW(parse_output_formats("csv,png"), OptionError);
  EXPECT_THROW(parse_output_formats(""), OptionError);
  // The run's table, for segment: named or not; never alone (no image output would be written).
  EXPECT_FALSE(f.summary);
  EXPECT_TRUE(parse_output_formats("labels,summary", true).summary);
  EXPECT_FALSE(parse_output_formats("labels", true).summary);
  EXPECT_THROW(parse_output_formats("summary", true), OptionError);
  EXPECT_THROW(parse_output_formats("csv,summary"), OptionError);  // refine's formats have none
  EXPECT_EQ(output_paths("out", "x", OutputFormats{}),
            (std::vector<std::string>{"out/x.geojson", "out/x_nuclei.csv", "out/x_labels.tif", "out/x_overlay.png"}));
}

TEST(SegmentRun, OutputsAgreeWithEachOther) {
  test::TempDir dir;
  ScriptedSegmenter seg;
  Image img = grey(16, 20);
  Segmentation s = seg.segment(img, "x");
  auto nuclei = write_segmentation_outputs(dir.file("out"), "tile", img, s, OutputFormats{});
  ASSERT_EQ(nuclei.size(), 2u);

  auto table = read_nucleus_table(dir.file("out/tile_nuclei.csv"));
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[1].id, 2);
  EXPECT_EQ(table[1].class_id, 3);
  EXPECT_EQ(table[1].class_name, "tumour");
  EXPECT_EQ(table[1].area, 18);
  EXPECT_FLOAT_EQ(table[1].score, 0.9f);

  auto doc = nlohmann::json::parse(read_file(dir.file("out/tile.geojson")));
  ASSERT_EQ(doc["features"].size(), 2u);
  EXPECT_EQ(doc["features"][1]["properties"]["classification"]["name"], "tumour");

  EXPECT_EQ(read_label_map(dir.file("out/tile_labels.tif")), s.instances);

  Image overlay = read_image(dir.file("out/tile_overlay.png"));
  ASSERT_TRUE(overlay.same_size(img));
  // The unclassified square's outline runs through pixel (2,2): green. Its inside stays grey.
  EXPECT_EQ(overlay.at(2, 2, 0), 0);
  EXPECT_EQ(overlay.at(2, 2, 1), 200);
  EXPECT_EQ(overlay.at(3, 3, 0), 128);
  EXPECT_EQ(overlay.at(0, 0, 1), 128);

  Segmentation wrong = s;
  wrong.instances = LabelMap(3, 3);
  EXPECT_THROW(write_segmentation_outputs(dir.file("out"), "bad", img, wrong, OutputFormats{}), DataError);
}

TEST(SegmentRun, FindInputImages) {
  test::TempDir dir;
  write_image(dir.file("in/b.png"), grey(4, 4));
  write_image(dir.file("in/a.jpg"), grey(4, 4));
  write_file_atomic(dir.file("in/notes.txt"), "x");
  write_image(dir.file("in/.hidden.png"), grey(4, 4));
  write_label_map(dir.file("in/a_labels.tif"), LabelMap(4, 4));
  fs::create_directories(dir.file("in/sub"));
  // Elsewhere the *_labels.tif file is an input like any other; beside its own outputs it is not.
  EXPECT_EQ(find_input_images(dir.file("in"), dir.file("out")).size(), 3u);
  EXPECT_EQ(find_input_images(dir.file("in"), dir.file("in")),
            (std::vector<std::string>{dir.file("in/a.jpg"), dir.file("in/b.png")}));
  EXPECT_EQ(find_input_images(dir.file("in/b.png"), dir.file("out")), (std::vector<std::string>{dir.file("in/b.png")}));
  EXPECT_THROW(find_input_images(dir.file("missing"), dir.file("out")), IoError);
  fs::create_directories(dir.file("empty"));
  EXPECT_THROW(find_input_images(dir.file("empty"), dir.file("out")), IoError);
  write_image(dir.file("in/b.tif"), grey(4, 4));
  EXPECT_THROW(find_input_images(dir.file("in"), dir.file("out")), OptionError);
}

TEST(SegmentRun, RecursiveRunsSearchSubfoldersAndMirrorThemInTheOutputs) {
  test::TempDir dir;
  for (const char* name : {"in/a.png", "in/case 1/b.png", "in/case 1/deep/c.jpg", "in/.hidden/d.png",
                           "in/results/e.png", "in/z/a.png"})
    write_image(dir.file(name), grey(16, 20));
  fs::create_directory_symlink(dir.file("in/case 1"), dir.file("in/link"));     // a second way to case 1
  fs::create_directory_symlink(dir.file("in"), dir.file("in/case 1/deep/up"));  // a loop
  const std::string in = dir.file("in"), out = dir.file("in/results");
  EXPECT_EQ(find_input_images(in, out), (std::vector<std::string>{dir.file("in/a.png")}));
  // Hidden folders, the output folder and the second way to a folder are not searched.
  const std::vector<std::string> all = {dir.file("in/a.png"), dir.file("in/case 1/b.png"),
                                        dir.file("in/case 1/deep/c.jpg"), dir.file("in/z/a.png")};
  ASSERT_EQ(find_input_images(in, out, true), all);
  // Files named like outputs are not inputs anywhere below: beside their own outputs (--out is the
  // input folder), or an earlier run's outputs elsewhere in the tree. Without recursion such a file
  // is an input when the outputs go elsewhere.
  write_image(dir.file("in/case 1/b_overlay.png"), grey(4, 4));
  write_image(dir.file("in/old run/a_labels.tif"), grey(4, 4));
  EXPECT_EQ(find_input_images(in, in, true).size(), 5u);  // results/e.png is an input now
  EXPECT_EQ(find_input_images(in, out, true), all);
  EXPECT_EQ(find_input_images(dir.file("in/case 1"), out).size(), 2u);  // b.png and b_overlay.png
  fs::remove_all(dir.file("in/old run"));
  fs::remove(dir.file("in/case 1/b_overlay.png"));
  fs::create_directories(dir.file("empty/sub"));
  EXPECT_THROW(find_input_images(dir.file("empty"), out, true), IoError);

  std::vector<InputImage> inputs;
  for (const auto& path : all) inputs.push_back({path, output_stem_below(in, path), nullptr, 0});
  EXPECT_EQ(inputs[2].stem, "case 1/deep/c");
  ScriptedSegmenter seg;
  SegmentRunOptions o;
  o.out_dir = out;
  o.mpp = 0.5;
  o.stains.mode = StainNormalization::Mode::off;
  o.summary = true;
  SegmentRunReport r = run_segmentation(inputs, seg, o);
  EXPECT_EQ(r.segmented, 4);
  for (const char* output :
       {"a.geojson", "case 1/b_nuclei.csv", "case 1/deep/c_labels.tif", "z/a_overlay.png"})
    EXPECT_TRUE(fs::exists(dir.file("in/results/") + output)) << output;
  const RunSummary table(dir.file("in/results/segment_summary.csv"));
  ASSERT_TRUE(table.find("case 1/deep/c"));
  EXPECT_EQ(table.find("case 1/deep/c")->at("image"), all[2]);
  EXPECT_EQ(table.find("z/a")->at("nuclei"), "2");

  // Resumed after a kill mid-write in a subfolder: the temporary is removed, the rest skipped.
  const std::string temp = test::killed_writer_temporary(dir.file("in/results/case 1/deep/c.geojson"));
  fs::remove(dir.file("in/results/case 1/deep/c.geojson"));
  r = run_segmentation(inputs, seg, o);
  EXPECT_EQ(r.segmented, 1);
  EXPECT_EQ(r.skipped, 3);
  EXPECT_FALSE(fs::exists(temp)) << temp;
  EXPECT_TRUE(fs::exists(dir.file("in/results/case 1/deep/c.geojson")));

  // Two images whose mirrored outputs would collide.
  write_image(dir.file("in/case 1/b.tif"), grey(4, 4));
  EXPECT_THROW(find_input_images(in, out, true), OptionError);
  EXPECT_EQ(find_input_images(in, out).size(), 1u);  // not searched without recursion
}

TEST(SegmentRun, ResumesAndCarriesOnPastBadImages) {
  test::TempDir dir;
  write_image(dir.file("in/a.png"), grey(16, 20));
  write_file_atomic(dir.file("in/b.png"), "not a png");
  Image c = grey(16, 20);
  c.at(15, 19, 2) = 200;  // one pixel of colour: not a grey image
  write_image(dir.file("in/c.png"), c);
  auto images = find_input_images(dir.file("in"), dir.file("out"));
  ScriptedSegmenter seg;
  SegmentRunOptions o;
  o.out_dir = dir.file("out");
  SegmentRunReport r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.segmented, 2);
  EXPECT_EQ(r.skipped, 0);
  EXPECT_EQ(r.nuclei, 4);
  EXPECT_EQ(r.grey_images, (std::vector<std::string>{dir.file("in/a.png")}));
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].first, dir.file("in/b.png"));
  EXPECT_NE(r.failures[0].second.find("cannot decode"), std::string::npos) << r.failures[0].second;
  EXPECT_FALSE(fs::exists(dir.file("out/b.geojson")));

  // Second run: a and c are complete and skipped; b fails again.
  r = run_segmentation(images, seg, o);
  EXPECT_EQ(seg.calls, 2);
  EXPECT_EQ(r.skipped, 2);
  EXPECT_EQ(r.failures.size(), 1u);

  // A missing output makes an image incomplete: it is redone. --overwrite redoes everything.
  fs::remove(dir.file("out/c_overlay.png"));
  r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.segmented, 1);
  EXPECT_TRUE(fs::exists(dir.file("out/c_overlay.png")));
  o.overwrite = true;
  r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.segmented, 2);

  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(dir.file("out")))
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();

  o.stop_on_error = true;
  EXPECT_THROW(run_segmentation({dir.file("in/b.png")}, seg, o), IoError);
}

TEST(SegmentRun, TheRunSummaryHasARowPerImageAndOutlivesTheRun) {
  test::TempDir dir;
  write_image(dir.file("in/a.png"), grey(16, 20));
  write_file_atomic(dir.file("in/b.png"), "not a png");
  write_image(dir.file("in/c.png"), grey(30, 40));
  const auto images = find_input_images(dir.file("in"), dir.file("out"));
  ScriptedSegmenter seg;
  SegmentRunOptions o;
  o.out_dir = dir.file("out");
  o.mpp = 0.5;
  o.stains.mode = StainNormalization::Mode::off;
  o.summary = true;
  const std::string path = dir.file("out/segment_summary.csv");
  run_segmentation(images, seg, o);
  const RunSummary first(path);
  // The scripted nuclei: 16 pixels unclassified (score 0.5) and 18 of class 3 "tumour" (0.9). At
  // 0.5 um/px: mean area 17 x 0.25 = 4.25 um^2; median diameter the mean of 2 sqrt(16 / pi) x 0.5
  // and 2 sqrt(18 / pi) x 0.5 = 2.33 um.
  RunSummaryRow a = *first.find("a");
  EXPECT_NO_THROW(std::stod(a.at("seconds")));
  a.erase("seconds");
  EXPECT_EQ(a, (RunSummaryRow{{"image", dir.file("in/a.png")},
                              {"stem", "a"},
                              {"status", "segmented"},
                              {"width", "20"},
                              {"height", "16"},
                              {"mpp", "0.5"},
                              {"mpp_source", "option"},
                              {"method", "scripted"},
                              {"nuclei", "2"},
                              {"nuclei_a", "0"},
                              {"nuclei_b", "0"},
                              {"nuclei_tumour", "1"},
                              {"nuclei_unclassified", "1"},
                              {"mean_area_um2", "4.25"},
                              {"median_diameter_um", "2.33"},
                              {"mean_score", "0.700"},
                              {"stains", "off"}}));
  const RunSummaryRow& b = *first.find("b");
  EXPECT_EQ(b.at("status"), "failed");
  EXPECT_NE(b.at("error").find("cannot decode"), std::string::npos) << b.at("error");
  EXPECT_EQ(b.count("nuclei"), 0u);
  EXPECT_EQ(first.find("c")->at("width"), "40");
  const std::string table = read_file(path);
  EXPECT_LT(table.find("\n" + dir.file("in/a.png")), table.find("\n" + dir.file("in/b.png")));
  EXPECT_LT(table.find("\n" + dir.file("in/b.png")), table.find("\n" + dir.file("in/c.png")));

  // Resumed: a and c are skipped and keep their rows as they were; b fails again.
  run_segmentation(images, seg, o);
  EXPECT_EQ(seg.calls, 2);
  EXPECT_EQ(read_file(path), table);

  // The summary lost (a run killed before it wrote it): the finished images' rows are rebuilt from
  // their nucleus tables; what those do not hold (size, time, the classes no nucleus has) is blank.
  fs::remove(path);
  run_segmentation(images, seg, o);
  EXPECT_EQ(seg.calls, 2);
  EXPECT_EQ(*RunSummary(path).find("a"), (RunSummaryRow{{"image", dir.file("in/a.png")},
                                                        {"stem", "a"},
                                                        {"status", "segmented"},
                                                        {"mpp", "0.5"},
                                                        {"mpp_source", "option"},
                                                        {"nuclei", "2"},
                                                        {"nuclei_tumour", "1"},
                                                        {"mean_area_um2", "4.25"},
                                                        {"median_diameter_um", "2.33"},
                                                        {"mean_score", "0.700"}}));
  // Without it asked for, there is none.
  fs::remove(path);
  o.summary = false;
  o.overwrite = true;
  run_segmentation(images, seg, o);
  EXPECT_FALSE(fs::exists(path));
}

TEST(SegmentRun, ImagesAtAnotherResolutionAreAnsweredInTheirOwnPixels) {
  // The scripted method works at 0.25 um/px; the image is at 0.5, so it sees 32 x 40 and its squares
  // (4 x 4 and 3 x 6 processing pixels) come back halved on the image's 16 x 20 grid.
  ScriptedAt40x seg;
  test::TempDir dir;
  write_image(dir.file("in/a.png"), grey(16, 20));
  SegmentRunOptions o;
  o.out_dir = dir.file("out");
  o.mpp = 0.5;
  SegmentRunReport r = run_segmentation({dir.file("in/a.png")}, seg, o);
  EXPECT_EQ(seg.seen_width, 40);
  EXPECT_EQ(r.nuclei, 2);
  const LabelMap labels = read_label_map(dir.file("out/a_labels.tif"));
  ASSERT_TRUE(labels.same_size(16, 20));
  auto table = read_nucleus_table(dir.file("out/a_nuclei.csv"));
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0].area, 4);  // rows and columns 1, 2 (processing 3, 5 of 2..5)
  EXPECT_EQ(table[1].area, 3);  // row 5 (processing 11), columns 4..6 (processing 9, 11, 13 of 8..13)
  EXPECT_EQ(table[1].class_name, "tumour");
  EXPECT_EQ(labels.at(1, 1), 1);
  EXPECT_EQ(labels.at(5, 6), 2);
  EXPECT_EQ(labels.at(6, 6), 0);
  EXPECT_TRUE(read_image(dir.file("out/a_overlay.png")).same_size(16, 20));
}

TEST(SegmentRun, ResolutionHintFromTheMedianNucleusDiameter) {
  double d = -1;
  // 314 pixels at 0.25 um/px: a disc of 2 sqrt(314 / pi) = 19.99 px, 5.0 um across: nothing to say.
  EXPECT_EQ(resolution_hint(std::vector<int64_t>(30, 314), 0.25, &d), "");
  EXPECT_NEAR(d, 2 * std::sqrt(314 / M_PI) * 0.25, 1e-9);
  // 16 pixels: 1.13 um across, far too small for 0.25 um/px.
  const std::string small = resolution_hint(std::vector<int64_t>(30, 16), 0.25, &d);
  EXPECT_NEAR(d, 1.128, 1e-3);
  EXPECT_NE(small.find("smaller"), std::string::npos) << small;
  EXPECT_NE(small.find("--mpp"), std::string::npos) << small;
  // 7000 pixels: 23.6 um across.
  EXPECT_NE(resolution_hint(std::vector<int64_t>(30, 7000), 0.25, &d).find("larger"), std::string::npos);
  EXPECT_NEAR(d, 23.6, 0.05);
  // The median decides: 16 small and 15 ordinary nuclei; 19 nuclei are too few to say anything;
  // an unknown resolution says nothing.
  std::vector<int64_t> mixed(16, 16);
  mixed.insert(mixed.end(), 15, 314);
  EXPECT_NE(resolution_hint(mixed, 0.25), "");
  mixed.push_back(314);
  mixed.push_back(314);
  EXPECT_EQ(resolution_hint(mixed, 0.25, &d), "");  // 16 small of 33: the median is an ordinary one
  EXPECT_NEAR(d, 2 * std::sqrt(314 / M_PI) * 0.25, 1e-9);
  EXPECT_EQ(resolution_hint(std::vector<int64_t>(19, 16), 0.25), "");
  EXPECT_EQ(resolution_hint(std::vector<int64_t>(30, 16), 0, &d), "");
  EXPECT_EQ(d, 0);
}

TEST(SegmentRun, ARunOfTinyNucleiSaysTheImagesMayBeAtAnotherMagnification) {
  ScriptedAt40x seg;  // 16- and 18-pixel nuclei: about 1.1 um across at 0.25 um/px
  test::TempDir dir;
  std::vector<std::string> images;
  for (int i = 0; i < 10; ++i) {
    images.push_back(dir.file("in/t" + std::to_string(i) + ".png"));
    write_image(images.back(), grey(16, 20));
  }
  SegmentRunOptions o;
  o.out_dir = dir.file("out");
  o.formats = parse_output_formats("csv");
  SegmentRunReport r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.nuclei, 20);
  EXPECT_NE(r.resolution_hint.find("smaller"), std::string::npos) << r.resolution_hint;
  EXPECT_NEAR(r.median_diameter_um, (2 * std::sqrt(16 / M_PI) + 2 * std::sqrt(18 / M_PI)) / 2 * 0.25, 1e-9);
  // Told the images' resolution, the run has nothing to hint.
  o.overwrite = true;
  o.mpp = 0.25;
  r = run_segmentation(images, seg, o);
  EXPECT_EQ(r.resolution_hint, "");
  EXPECT_EQ(r.median_diameter_um, 0.0);
}

TEST(SegmentRun, AnImageThatRecordsItsResolutionIsResampledByIt) {
  ScriptedAt40x seg;
  test::TempDir dir;
  write_image(dir.file("plain.png"), grey(16, 20));
  write_file_atomic(dir.file("in/a.png"), test::png_with_phys(read_file(dir.file("plain.png")), 2000000, 2000000));
  SegmentRunOptions o;
  o.out_dir = dir.file("out");
  SegmentRunReport r = run_segmentation({dir.file("in/a.png")}, seg, o);
  EXPECT_EQ(seg.seen_width, 40);  // 0.5 um/px as the file records: doubled for the 0.25 um/px method
  const LabelMap labels = read_label_map(dir.file("out/a_labels.tif"));
  EXPECT_TRUE(labels.same_size(16, 20));
  EXPECT_NEAR(read_image_mpp(dir.file("out/a_labels.tif")), 0.5, 1e-6);  // the label TIFF records it too
  // --mpp overrides the file.
  o.overwrite = true;
  o.mpp = 0.25;
  run_segmentation({dir.file("in/a.png")}, seg, o);
  EXPECT_EQ(seg.seen_width, 20);
  EXPECT_NEAR(read_image_mpp(dir.file("out/a_labels.tif")), 0.25, 1e-6);
}

namespace {

// Remembers the pixels it was given.
struct ImageRecorder : ScriptedSegmenter {
  std::vector<Image> seen;
  Segmentation segment(const Image& image, const std::string& source) override {
    seen.push_back(image);
    return ScriptedSegmenter::segment(image, source);
  }
};

}  // namespace

TEST(SegmentRun, StainNormalisationBringsOverstainedImagesIntoRange) {
  const double stains[2][3] = {{0.584, 0.729, 0.357}, {0.302, 0.850, 0.433}};
  double unit[2][3];
  for (int k = 0; k < 2; ++k)
    for (int c = 0; c < 3; ++c)
      unit[k][c] = stains[k][c] / std::sqrt(stains[k][0] * stains[k][0] + stains[k][1] * stains[k][1] +
                                            stains[k][2] * stains[k][2]);
  ImageRecorder seg;
  test::TempDir dir;
  // Three times the haematoxylin of the test drawing (99th percentile about 5.7), as drawn; the
  // same at its normal amounts (about 1.9); glass.
  const Image dark = test::stained_tissue(unit, 64, 64, 1, 3.0).image;
  const Image normal = test::stained_tissue(unit, 64, 64, 1).image;
  write_image(dir.file("in/dark.png"), dark);
  write_image(dir.file("in/normal.png"), normal);
  write_image(dir.file("in/glass.png"), Image(64, 64, 3, 245));
  SegmentRunOptions o;
  o.out_dir = dir.file("out");
  o.stains.mode = StainNormalization::Mode::range;
  const SegmentRunReport r =
      run_segmentation({dir.file("in/dark.png"), dir.file("in/normal.png"), dir.file("in/glass.png")}, seg, o);
  ASSERT_EQ(seg.seen.size(), 3u);
  EXPECT_EQ(r.stains_normalised, 1);
  const StainEstimate before = estimate_stains({&dark}), after = estimate_stains({&seg.seen[0]});
  ASSERT_TRUE(before.ok && after.ok);
  EXPECT_GT(before.stains.max_amount[0], 5.0);
  EXPECT_NEAR(after.stains.max_amount[0], reference_amount_range().high[0], 0.1);
  EXPECT_NEAR(after.stains.max_amount[1], before.stains.max_amount[1], 0.05);  // eosin was in range
  EXPECT_EQ(seg.seen[1], normal);                                               // in range: untouched
  EXPECT_EQ(seg.seen[2], Image(64, 64, 3, 245));
  ASSERT_EQ(r.stains_not_normalised.size(), 1u);
  EXPECT_EQ(r.stains_not_normalised[0].first, dir.file("in/glass.png"));
  EXPECT_NE(r.stains_not_normalised[0].second.find("too little tissue"), std::string::npos);
  // The overlay is drawn on the image as it was, away from the nuclei.
  const Image overlay = read_image(dir.file("out/dark_overlay.png"));
  EXPECT_EQ(overlay.at(40, 40, 0), dark.at(40, 40, 0));
  EXPECT_EQ(overlay.at(40, 41, 2), dark.at(40, 41, 2));

  // Match mode redraws every image with an estimate, the in-range one too.
  ImageRecorder matched;
  o.stains.mode = StainNormalization::Mode::match;
  o.overwrite = true;
  const SegmentRunReport m = run_segmentation({dir.file("in/normal.png")}, matched, o);
  EXPECT_EQ(m.stains_normalised, 1);
  EXPECT_NE(matched.seen.at(0), normal);
}
