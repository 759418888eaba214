// The folder run's table (segment_summary.csv): one image's nuclei described by hand, rows kept
// across runs in a fixed order, and files that are not such a table set aside.
#include <gtest/gtest.h>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/run_summary.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

Nucleus nucleus(int64_t area, int class_id, const std::string& class_name, float score) {
  Nucleus n;
  n.area = area;
  n.class_id = class_id;
  n.class_name = class_name;
  n.score = score;
  return n;
}

}  // namespace

TEST(RunSummary, DescribesAnImagesNucleiByHand) {
  // 100, 400 and 900 pixels at 0.5 um/px: mean area 466.67 px = 116.67 um^2; median diameter that
  // of 400 px, 2 sqrt(400 / pi) x 0.5 = 11.28 um; scores 0.5, 0.7, 0.9.
  const std::vector<Nucleus> nuclei = {nucleus(100, 1, "tumour", 0.5f), nucleus(900, 1, "tumour", 0.9f),
                                       nucleus(400, 0, "", 0.7f)};
  RunSummaryRow row;
  const auto columns = describe_nuclei(nuclei, {"", "tumour", "immune"}, 0.5, row);
  EXPECT_EQ(columns, (std::vector<std::string>{"nuclei_tumour", "nuclei_immune", "nuclei_unclassified"}));
  EXPECT_EQ(row, (RunSummaryRow{{"nuclei", "3"},
                                {"nuclei_tumour", "2"},
                                {"nuclei_immune", "0"},
                                {"nuclei_unclassified", "1"},
                                {"mean_area_um2", "116.67"},
                                {"median_diameter_um", "11.28"},
                                {"mean_score", "0.700"}}));
  // Unknown resolution: no sizes. An unclassifying method: no class columns.
  RunSummaryRow plain;
  EXPECT_TRUE(
      describe_nuclei({nucleus(100, 0, "", 0.5f), nucleus(900, 0, "", 0.9f), nucleus(400, 0, "", 0.7f)}, {},
                      0, plain)
          .empty());
  EXPECT_EQ(
      plain,
      (RunSummaryRow{
          {"nuclei", "3"}, {"mean_area_um2", ""}, {"median_diameter_um", ""}, {"mean_score", "0.700"}}));
  // No nuclei: counts 0, nothing to average.
  RunSummaryRow none;
  describe_nuclei({}, {"", "tumour"}, 0.25, none);
  EXPECT_EQ(none, (RunSummaryRow{{"nuclei", "0"},
                                 {"nuclei_tumour", "0"},
                                 {"mean_area_um2", ""},
                                 {"median_diameter_um", ""},
                                 {"mean_score", ""}}));
  // A class beyond the method's names, from a nucleus table: under its own name.
  RunSummaryRow other;
  describe_nuclei({nucleus(10, 7, "", 1), nucleus(10, 2, "immune", 1)}, {}, 0, other);
  EXPECT_EQ(other.at("nuclei_class 7"), "1");
  EXPECT_EQ(other.at("nuclei_immune"), "1");
}

TEST(RunSummary, KeepsEarlierRowsAndPutsThisRunsFirst) {
  test::TempDir dir;
  const std::string path = dir.file("segment_summary.csv");
  // An earlier run's table, with a column of another version and a quoted image name.
  write_file_atomic(path,
                    "image,stem,status,nuclei,nuclei_b,note\n"
                    "z.png,z,segmented,5,5,kept\n"
                    "\"a,1.png\",a,failed,,,\n");
  RunSummary summary(path);
  ASSERT_NE(summary.find("a"), nullptr);
  EXPECT_EQ(summary.find("a")->at("image"), "a,1.png");
  EXPECT_EQ(summary.find("z")->at("note"), "kept");
  EXPECT_EQ(summary.find("b"), nullptr);
  RunSummaryRow b{
      {"image", "b.png"}, {"status", "segmented"}, {"nuclei", "2"}, {"nuclei_a", "2"}, {"nuclei_b", "0"}};
  summary.set("b", b, {"nuclei_a", "nuclei_b"});
  summary.set("a", {{"image", "a,1.png"}, {"status", "segmented"}, {"nuclei", "0"}, {"seconds", "1.50"}});
  // This run's images (a, b) first in its order, then the earlier run's z; the method's class order
  // before the loaded one; our columns in their order, then the other version's.
  const std::string expected =
      "image,stem,status,width,height,mpp,mpp_source,method,nuclei,nuclei_a,nuclei_b,tissue_mm2,nuclei_per_"
      "mm2,"
      "mean_area_um2,median_diameter_um,mean_score,stains,seconds,error,note\n"
      "\"a,1.png\",a,segmented,,,,,,0,,,,,,,,,1.50,,\n"
      "b.png,b,segmented,,,,,,2,2,0,,,,,,,,,\n"
      "z.png,z,segmented,,,,,,5,,5,,,,,,,,,kept\n";
  EXPECT_EQ(summary.csv({"a", "b"}), expected);
  summary.write({"a", "b"});
  EXPECT_EQ(read_file(path), expected);
  // Read back, it is the same table.
  EXPECT_EQ(RunSummary(path).csv({"a", "b"}), expected);
}

TEST(RunSummary, AFileThatIsNoSuchTableIsWrittenAnew) {
  test::TempDir dir;
  for (const char* text : {"image,status\nx.png,segmented\n",  // no stem column
                           "image,stem,status\nx.png,x\n",     // a row shorter than its header
                           "image,stem\n\"x.png,x\n"}) {       // an unterminated quote
    write_file_atomic(dir.file("s.csv"), text);
    RunSummary summary(dir.file("s.csv"));
    EXPECT_EQ(summary.find("x"), nullptr) << text;
    summary.set("y", {{"image", "y.png"}});
    EXPECT_EQ(
        summary.csv({}),
        "image,stem,status,width,height,mpp,mpp_source,method,nuclei,tissue_mm2,nuclei_per_mm2,mean_area_um2,"
        "median_diameter_um,mean_score,stains,seconds,error\ny.png,y,,,,,,,,,,,,,,,\n")
        << text;
  }
  // A missing file is an empty table.
  EXPECT_EQ(RunSummary(dir.file("none.csv")).find("y"), nullptr);
}

TEST(RunSummary, ASlidesRowComesFromItsSummary) {
  test::TempDir dir;
  // As infer/slide_run.cpp writes it (a classifying model, stains normalised).
  write_file_atomic(dir.file("s_summary.json"), R"({
  "slide": "/data/s.svs", "width": 80000, "height": 60000, "mpp": 0.2527, "mpp_source": "file",
  "method": "he-nuclei-classes", "processing": {"level": 0, "downsample": 1, "mpp": 0.2527, "tile_size": 1024},
  "tissue": "detected",
  "stain_normalisation": {"mode": "range", "applied": true, "note": "haematoxylin amount 4.1 -> 3.29"},
  "tissue_area_mm2": 41.23456, "tiles": 900, "tissue_tiles": 400, "nuclei": 123456, "nuclei_per_mm2": 2993.9512,
  "merged_nuclei": 10, "cut_nuclei": 2, "mean_area_um2": 31.4159, "median_diameter_um": 6.004, "mean_score": 0.81234,
  "nuclei_per_class": {"Nucleus": 6, "epithelial": 100000, "inflammatory": 23450},
  "resumed_tiles": 0, "seconds": {"wall": 3600.123, "read": 1}
})");
  EXPECT_EQ(slide_summary_row(dir.file("s_summary.json")), (RunSummaryRow{{"image", "/data/s.svs"},
                                                                          {"status", "segmented"},
                                                                          {"width", "80000"},
                                                                          {"height", "60000"},
                                                                          {"mpp", "0.2527"},
                                                                          {"mpp_source", "file"},
                                                                          {"method", "he-nuclei-classes"},
                                                                          {"nuclei", "123456"},
                                                                          {"nuclei_unclassified", "6"},
                                                                          {"nuclei_epithelial", "100000"},
                                                                          {"nuclei_inflammatory", "23450"},
                                                                          {"tissue_mm2", "41.2346"},
                                                                          {"nuclei_per_mm2", "2994.0"},
                                                                          {"mean_area_um2", "31.42"},
                                                                          {"median_diameter_um", "6.00"},
                                                                          {"mean_score", "0.812"},
                                                                          {"stains", "normalised"},
                                                                          {"seconds", "3600.12"}}));
  // An unclassifying method's nuclei are all "Nucleus": no class columns. No nuclei: no sizes.
  write_file_atomic(dir.file("g_summary.json"),
                    R"({"slide": "g.tif", "width": 10, "height": 10, "mpp": 0.5, "method": "classical",
                        "stain_normalisation": null, "tissue_area_mm2": 0, "nuclei": 0, "nuclei_per_mm2": 0,
                        "mean_area_um2": null, "median_diameter_um": null, "mean_score": null,
                        "nuclei_per_class": {}, "seconds": {"wall": 0.5}})");
  const RunSummaryRow glass = slide_summary_row(dir.file("g_summary.json"));
  EXPECT_EQ(glass.at("stains"), "off");
  EXPECT_EQ(glass.at("mean_area_um2"), "");
  EXPECT_EQ(glass.at("mpp_source"), "");  // summaries written before it was recorded
  EXPECT_EQ(glass.count("nuclei_Nucleus") + glass.count("nuclei_unclassified"), 0u);
  write_file_atomic(dir.file("bad_summary.json"), R"({"slide": "x.svs"})");
  EXPECT_THROW(slide_summary_row(dir.file("bad_summary.json")), DataError);
}

TEST(RunSummary, TwoRunsIntoOneFolderKeepEachOthersRows) {
  test::TempDir dir;
  const std::string path = dir.file("segment_summary.csv");
  write_file_atomic(path, "image,stem,status\nold.png,old,segmented\n");
  // Two runs load the table; the first writes its row, then the second writes its own.
  RunSummary first(path), second(path);
  first.set("a", {{"image", "a.png"}, {"status", "segmented"}});
  first.reload_others({"a"});
  first.write({"a"});
  second.set("b", {{"image", "b.png"}, {"status", "failed"}});
  second.set("old", {{"image", "old.png"}, {"status", "failed"}});  // the second run's own image
  second.reload_others({"b", "old"});
  second.write({"b", "old"});
  const RunSummary now(path);
  ASSERT_NE(now.find("a"), nullptr);
  EXPECT_EQ(now.find("a")->at("status"), "segmented");
  EXPECT_EQ(now.find("b")->at("status"), "failed");
  EXPECT_EQ(now.find("old")->at("status"), "failed");  // its own row, not the file's older one
  // A missing file changes nothing.
  RunSummary alone(dir.file("none.csv"));
  alone.set("x", {{"image", "x.png"}});
  alone.reload_others({});
  EXPECT_NE(alone.find("x"), nullptr);
}
