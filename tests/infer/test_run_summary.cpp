// The folder run's table (segment_summary.csv): one image's nuclei described by hand, rows kept
// across runs in a fixed order, and files that are not such a table set aside.
#include <gtest/gtest.h>

#include "nucleisam/atomic_file.h"
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
      "image,stem,status,width,height,mpp,mpp_source,method,nuclei,nuclei_a,nuclei_b,mean_area_um2,"
      "median_diameter_um,mean_score,stains,seconds,error,note\n"
      "\"a,1.png\",a,segmented,,,,,,0,,,,,,,1.50,,\n"
      "b.png,b,segmented,,,,,,2,2,0,,,,,,,\n"
      "z.png,z,segmented,,,,,,5,,5,,,,,,,kept\n";
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
    EXPECT_EQ(summary.csv({}),
              "image,stem,status,width,height,mpp,mpp_source,method,nuclei,mean_area_um2,median_diameter_um,"
              "mean_score,stains,seconds,error\ny.png,y,,,,,,,,,,,,,\n")
        << text;
  }
  // A missing file is an empty table.
  EXPECT_EQ(RunSummary(dir.file("none.csv")).find("y"), nullptr);
}
