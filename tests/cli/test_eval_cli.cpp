// `nucleisam eval` end to end: label maps written here, numbers in summary.json and per_image.csv
// checked against hand computation, sidecar classes (CSV and class map), name matching, missing
// counterparts, bad input and usage errors, and a CoNSeP split as ground truth.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nucleisam/image_io.h"
#include "nucleisam/infer/nucleus.h"
#include "nucleisam/io/nucleus_table.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;
using namespace nucleisam::infer;
namespace fs = std::filesystem;

namespace {

using Result = ::nucleisam::test::CliResult;

Result run(const std::string& args) { return ::nucleisam::test::run_cli(args); }

int lines(const std::string& s) { return ::nucleisam::test::count_lines(s); }

void fill_rect(LabelMap& m, int32_t label, int y, int x, int h, int w) {
  for (int r = y; r < y + h; ++r)
    for (int c = x; c < x + w; ++c) m.at(r, c) = label;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Image "a" (4x8): GT 1 = 2x4 at (0,0), GT 2 = 2x4 at (0,4); pred 1 = 2x6 at (0,0) (IoU 8/12 with
// GT 1, 4/16 with GT 2), pred 2 = 2x2 at (2,0) (no overlap).
//   Dice 24/32, IoU 12/20, AJI 12/32, AJI+ 8/24, PQ: TP 1 FP 1 FN 1 -> DQ 1/2, SQ 2/3, PQ 1/3.
// Image "b" (4x4): two instances predicted exactly (labels swapped): every metric 1.
struct HandCase {
  test::TempDir dir;
  std::string gt, pred, out;
  HandCase() : gt(dir.file("gt")), pred(dir.file("pred")), out(dir.file("out")) {
    fs::create_directories(gt);
    fs::create_directories(pred);
    LabelMap ga(4, 8), pa(4, 8), gb(4, 4), pb(4, 4);
    fill_rect(ga, 1, 0, 0, 2, 4);
    fill_rect(ga, 2, 0, 4, 2, 4);
    fill_rect(pa, 1, 0, 0, 2, 6);
    fill_rect(pa, 2, 2, 0, 2, 2);
    fill_rect(gb, 1, 0, 0, 2, 2);
    fill_rect(gb, 2, 2, 2, 2, 2);
    fill_rect(pb, 9, 0, 0, 2, 2);
    fill_rect(pb, 3, 2, 2, 2, 2);
    write_label_map(gt + "/a_label.png", ga);
    write_label_map(gt + "/b.tif", gb);
    write_label_map(pred + "/a_pred.npy", pa);
    write_label_map(pred + "/b_instances.png", pb);
  }
};

}  // namespace

TEST(EvalCli, ClassAgnosticNumbersMatchHandComputation) {
  HandCase h;
  Result r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --out " + h.out);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(h.out + "/summary.json");
  EXPECT_EQ(s["images"], 2);
  const auto& b = s["binary"];
  EXPECT_NEAR(b["dice"]["mean"].get<double>(), (0.75 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(b["iou"]["mean"].get<double>(), (0.6 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(b["aji"]["mean"].get<double>(), (12.0 / 32 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(b["aji_plus"]["mean"].get<double>(), (8.0 / 24 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(b["pq"]["mean"].get<double>(), (1.0 / 3 + 1.0) / 2, 1e-12);
  EXPECT_EQ(b["pq"]["images"], 2);
  // Object F1 pooled: a gives TP 1 FP 1 FN 1, b gives TP 2 -> TP 3, FP 1, FN 1 -> 3 / 4.
  EXPECT_EQ(b["object_f1"]["tp"], 3);
  EXPECT_NEAR(b["object_f1"]["f1"].get<double>(), 0.75, 1e-12);
  // Centroids (x, y): a's truths (1.5, 0.5), (5.5, 0.5); predictions (2.5, 0.5), (0.5, 2.5). The
  // least total distance pairs them crosswise (2.24 + 3 < 1 + 5.39), both within 12 px; b's pairs
  // coincide. F_d = 1.
  EXPECT_EQ(b["centroid_detection"]["paired"], 4);
  EXPECT_NEAR(b["centroid_detection"]["f1_d"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(s["options"]["pair_radius"], 12.0);
  EXPECT_EQ(s["options"]["max_detections"], "unlimited");
  EXPECT_FALSE(s.contains("classes"));
  // The table names the limit and the metrics.
  EXPECT_NE(r.out.find("max detections per image (mAP): unlimited"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("AJI+"), std::string::npos) << r.out;

  auto csv = read_lines(h.out + "/per_image.csv");
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(
      csv[0].rfind("image,gt_instances,pred_instances,dice,iou,aji,aji_plus,dq,sq,pq,tp,fp,fn,object_f1,f1_d",
                   0),
      0u);
  EXPECT_EQ(csv[1], "a,2,2,0.75,0.6,0.375,0.3333333333,0.5,0.6666666667,0.3333333333,1,1,1,0.5,1");
  EXPECT_EQ(csv[2], "b,2,2,1,1,1,1,1,1,1,2,0,0,1,1");

  // Within 2 px a's crosswise pairs (2.24 and 3 apart) are dropped: F_d = 4 / (4 + 2 + 2).
  r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --pair-radius 2 --out " + h.out);
  ASSERT_EQ(r.code, 0) << r.out;
  s = read_json(h.out + "/summary.json");
  EXPECT_NEAR(s["binary"]["centroid_detection"]["f1_d"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(s["binary"]["centroid_detection"]["unpaired_gt"], 2);
  EXPECT_NE(r.out.find("centroids within 2 px"), std::string::npos) << r.out;
}

TEST(EvalCli, ClassesFromCsvAndClassMapSidecars) {
  // Image one: GT A (class 1) predicted exactly as class 1; GT B (class 2) predicted exactly as
  // class 1. Image two: GT C (class 2) predicted exactly as class 2 (given by a class map).
  // Class 1: TP 1 FP 1 -> PQ 2/3. Class 2: TP 1 FN 1 -> PQ 2/3. mPQ+ = 2/3.
  test::TempDir dir;
  const std::string gt = dir.file("gt"), pred = dir.file("pred"), out = dir.file("out");
  fs::create_directories(gt);
  fs::create_directories(pred);
  LabelMap one(4, 4), two(4, 4), two_class(4, 4);
  fill_rect(one, 1, 0, 0, 2, 2);
  fill_rect(one, 2, 2, 2, 2, 2);
  fill_rect(two, 5, 1, 1, 2, 2);
  fill_rect(two_class, 2, 1, 1, 2, 2);
  write_label_map(gt + "/one.png", one);
  write_text(gt + "/one.csv", "id,class\n1,1\n2,2\n");
  write_label_map(gt + "/two.png", two);
  write_text(gt + "/two.csv", "instance,class\n5,2\n");
  write_label_map(pred + "/one.png", one);
  write_text(pred + "/one.csv", "id,class,score\n1,1,0.9\n2,1,0.8\n");
  write_label_map(pred + "/two.png", two);
  write_label_map(pred + "/two_class.png", two_class);
  Result r = run("--quiet eval --pred " + pred + " --gt " + gt + " --classes tumour,immune --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(out + "/summary.json");
  const auto& c = s["classes"];
  EXPECT_EQ(c["names"], nlohmann::json({"tumour", "immune"}));
  EXPECT_NEAR(c["mpq_plus"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_EQ(c["per_class"]["tumour"]["tp"], 1);
  EXPECT_EQ(c["per_class"]["tumour"]["fp"], 1);
  EXPECT_EQ(c["per_class"]["immune"]["fn"], 1);
  EXPECT_NEAR(c["per_class"]["immune"]["object_f1"].get<double>(), 2.0 / 3.0, 1e-12);
  // Centroid pairs: A-A (1, 1), B-B (2 predicted 1), C-C (2, 2). Type accuracy 2/3; F_c tumour
  // 2 / (2 + 2 FP_t), immune 2 / (2 + 2 FN_t).
  EXPECT_NEAR(c["type_accuracy"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(c["per_class"]["tumour"]["f1_type"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(c["per_class"]["immune"]["f1_type"].get<double>(), 0.5, 1e-12);
  // Class-agnostic metrics ignore the misclassification.
  EXPECT_NEAR(s["binary"]["pq"]["mean"].get<double>(), 1.0, 1e-12);
  auto csv = read_lines(out + "/per_image.csv");
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_NE(csv[0].find(",pq_tumour,f1_tumour,fc_tumour,gt_count_tumour,pred_count_tumour,pq_immune"),
            std::string::npos);
  EXPECT_NE(r.out.find("mPQ+"), std::string::npos) << r.out;
}

TEST(EvalCli, GroupsAverageEachGroupThenTheGroups) {
  HandCase h;
  // Image a: binary PQ 1/3 (one exact pair, one miss each side); b: 1. Groups of one image each,
  // so PanNuke's bPQ is their mean either way; the report says how it was averaged.
  write_text(h.gt + "/../groups.csv", "group,image\nkidney,a_label.png\nliver,b\n");
  Result r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --groups " + h.gt +
                 "/../groups.csv --out " + h.out);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(h.out + "/summary.json");
  EXPECT_NEAR(s["binary"]["pannuke_bpq"]["mean"].get<double>(), (1.0 / 3 + 1.0) / 2, 1e-12);
  EXPECT_EQ(s["binary"]["pannuke_bpq"]["groups"], 2);
  EXPECT_NE(r.out.find("mean of 2 groups"), std::string::npos) << r.out;
  // An image without a group, or a file without the columns: one line naming the file, exit 1.
  write_text(h.gt + "/../groups.csv", "image,tissue\na,kidney\n");
  r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --groups " + h.gt + "/../groups.csv");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("groups.csv: no group for image 'b'"), std::string::npos) << r.out;
  write_text(h.gt + "/../groups.csv", "name,tissue\na,kidney\n");
  r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --groups " + h.gt + "/../groups.csv");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("must name an 'image' and a 'group'"), std::string::npos) << r.out;
}

TEST(EvalCli, MissingCounterpartsAreReported) {
  HandCase h;
  LabelMap extra(4, 4);
  write_label_map(h.gt + "/c.png", extra);
  Result r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --out " + h.out);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("1 ground-truth image(s) have no prediction"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": c"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(h.out + "/summary.json"));  // nothing half-written

  r = run("--quiet eval --allow-missing --pred " + h.pred + " --gt " + h.gt + " --out " + h.out);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(h.out + "/summary.json");
  EXPECT_EQ(s["images"], 2);
  EXPECT_EQ(s["missing_predictions"], nlohmann::json({"c"}));
}

TEST(EvalCli, SingleFilesAreComparedWhateverTheirNames) {
  HandCase h;
  Result r = run("--quiet eval --pred " + h.pred + "/b_instances.png --gt " + h.gt + "/a_label.png");
  // Sizes differ (4x4 vs 4x8): one line naming both files.
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("b_instances.png vs "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("a_label.png"), std::string::npos) << r.out;
  r = run("--quiet eval --pred " + h.pred + "/b_instances.png --gt " + h.gt + "/b.tif --out " + h.out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NEAR(read_json(h.out + "/summary.json")["binary"]["aji"]["mean"].get<double>(), 1.0, 1e-12);
}

TEST(EvalCli, BadInputAndUsage) {
  HandCase h;
  // A class CSV without a row for one instance (read whether or not classes are evaluated).
  write_text(h.pred + "/b_instances.csv", "id,class\n9,1\n");
  Result r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("b_instances.csv: no row for instance 3"), std::string::npos) << r.out;
  // Classes requested but a prediction has none.
  write_text(h.pred + "/b_instances.csv", "id,class\n9,1\n3,1\n");
  r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --classes 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("a_pred.npy: no classes (expected a_pred.csv"), std::string::npos) << r.out;
  // Classes requested but the ground truth has none.
  write_text(h.pred + "/a_pred.csv", "id,class\n1,1\n2,1\n");
  r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --classes 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("ground truth has no classes"), std::string::npos) << r.out;
  // A corrupt label map.
  write_text(h.pred + "/a_pred.npy", "not numpy");
  r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("a_pred.npy"), std::string::npos) << r.out;
  // Usage errors.
  EXPECT_EQ(run("eval --gt " + h.gt).code, 2);
  EXPECT_EQ(run("eval --pred " + h.pred + " --gt " + h.gt + " --pq-iou 1.5").code, 2);
  EXPECT_EQ(run("eval --pred " + h.pred + " --gt " + h.gt + " --classes a,,b").code, 2);
  EXPECT_EQ(run("eval --pred " + h.pred + " --gt " + h.dir.file("nowhere")).code, 1);
}

TEST(EvalCli, ConsepSplitAsGroundTruth) {
  NUCLEISAM_REQUIRE_SHARED("data/consep256/test");
  // Two CoNSeP test patches predicted by their own labels, classes from their class masks.
  test::TempDir dir;
  const std::string base = test::shared_path("data/consep256/test");
  for (const std::string name : {"test_1_000", "test_1_005"}) {
    fs::copy_file(base + "/inst_png/" + name + ".png", dir.file(name + ".png"));
    fs::copy_file(base + "/seg_mask/" + name + ".png", dir.file(name + "_class.png"));
  }
  Result r = run("--quiet eval --allow-missing --pred " + dir.path() + " --gt " + base + " --out " +
                 dir.file("out"));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(dir.file("out/summary.json"));
  EXPECT_EQ(s["images"], 2);
  EXPECT_EQ(s["missing_predictions"].size(), 222u);
  for (const char* m : {"dice", "aji", "aji_plus", "pq"})
    EXPECT_NEAR(s["binary"][m]["mean"].get<double>(), 1.0, 1e-12) << m;
  EXPECT_NEAR(s["binary"]["map"].get<double>(), 1.0, 1e-12);
  ASSERT_TRUE(s.contains("classes")) << "dataset classes are used when predictions carry classes";
  EXPECT_EQ(s["classes"]["names"].size(), 4u);
  for (const auto& [name, k] : s["classes"]["per_class"].items()) {
    const int64_t gt = k["tp"].get<int64_t>() + k["fn"].get<int64_t>();
    if (gt > 0)
      EXPECT_NEAR(k["pq_plus"].get<double>(), 1.0, 1e-12) << name;
    else
      EXPECT_EQ(k["pq_plus"].get<double>(), 0.0) << name << " absent: 0 as in CoNIC";
    EXPECT_EQ(k["fp"], 0) << name;
  }
}

TEST(EvalCli, ReadsSegmentOutputFolders) {
  // `nucleisam segment` writes <key>_labels.tif, <key>_nuclei.csv (class 0 = unclassified, scores)
  // and <key>_overlay.png. The overlay is not a prediction, the nucleus table supplies scores, and
  // an all-zero class column means the prediction is class-agnostic.
  HandCase h;
  fs::remove(h.pred + "/a_pred.npy");
  fs::remove(h.pred + "/b_instances.png");
  LabelMap pa = read_label_map(h.gt + "/a_label.png");
  LabelMap pb = read_label_map(h.gt + "/b.tif");
  write_label_map(h.pred + "/a_labels.tif", pa);
  write_label_map(h.pred + "/b_labels.tif", pb);
  // Real nucleus tables, written by the same writer segment uses.
  write_nucleus_table(h.pred + "/a_nuclei.csv", nuclei_from_instances(pa, {}, {0.9f, 0.2f}));
  write_nucleus_table(h.pred + "/b_nuclei.csv", nuclei_from_instances(pb));
  Image overlay(4, 8, 3);
  write_image(h.pred + "/a_overlay.png", overlay);
  Result r = run("--quiet eval --pred " + h.pred + " --gt " + h.gt + " --out " + h.out);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(h.out + "/summary.json");
  EXPECT_EQ(s["images"], 2);
  EXPECT_FALSE(s.contains("classes"));
  EXPECT_NEAR(s["binary"]["pq"]["mean"].get<double>(), 1.0, 1e-12);
  EXPECT_TRUE(s["unmatched_predictions"].empty()) << s.dump();
}

namespace {
size_t max_label(const LabelMap& m) {
  int32_t n = 0;
  for (int32_t v : m.data) n = std::max(n, v);
  return static_cast<size_t>(n);
}

// A CoNSeP test patch's true instances written as segment's label TIFF of that patch in `folder`.
LabelMap copy_consep_patch(const std::string& split, const std::string& patch, const std::string& folder) {
  LabelMap found = read_label_map(split + "/inst_png/" + patch + ".png");
  write_label_map(folder + "/" + patch + "_labels.tif", found);
  return found;
}
}  // namespace

TEST(EvalCli, AnImageWithoutNucleiKeepsAFolderClassed) {
  NUCLEISAM_REQUIRE_SHARED("data/consep256/test");
  // segment's outputs for two CoNSeP test patches: the first with every nucleus found and classed
  // (class 2), the second with nothing found (an empty nucleus table). The empty table must not
  // make the whole evaluation class-agnostic.
  test::TempDir dir;
  const std::string base = test::shared_path("data/consep256/test");
  const LabelMap found = copy_consep_patch(base, "test_1_000", dir.path());
  write_nucleus_table(dir.file("test_1_000_nuclei.csv"),
                      nuclei_from_instances(found, std::vector<int>(max_label(found), 2)));
  LabelMap nothing(found.height, found.width);
  write_label_map(dir.file("test_1_005_labels.tif"), nothing);
  write_nucleus_table(dir.file("test_1_005_nuclei.csv"), {});
  Result r = run("--quiet eval --allow-missing --pred " + dir.path() + " --gt " + base + " --out " +
                 dir.file("out"));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json s = read_json(dir.file("out/summary.json"));
  EXPECT_EQ(s["images"], 2);
  ASSERT_TRUE(s.contains("classes")) << s.dump();
  // Every predicted nucleus says class 2 (inflammatory): its true positives are class 2's GT there.
  const auto& inflammatory = s["classes"]["per_class"]["inflammatory"];
  EXPECT_GT(inflammatory["tp"].get<int64_t>() + inflammatory["fp"].get<int64_t>(), 0) << s.dump();
}

TEST(EvalCli, PredictionsNamingOtherClassesAreRefusedUnlessClassAgnostic) {
  NUCLEISAM_REQUIRE_SHARED("data/consep256/test");
  // segment's tables name their classes: a model of PanNuke's classes (1 = neoplastic) scored
  // against CoNSeP (1 = other) would compare unrelated ids. Refused, naming both; --classes none
  // scores without classes; CoNSeP's own names pass.
  test::TempDir dir;
  const std::string base = test::shared_path("data/consep256/test");
  const LabelMap found = copy_consep_patch(base, "test_1_000", dir.path());
  const std::vector<int> ones(max_label(found), 1);
  write_nucleus_table(dir.file("test_1_000_nuclei.csv"),
                      nuclei_from_instances(found, ones, {}, {"background", "neoplastic", "inflammatory"}));
  const std::string cmd = "--quiet eval --allow-missing --pred " + dir.path() + " --gt " + base;
  Result r = run(cmd);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("class 1 is 'neoplastic' there but 'other' in"), std::string::npos) << r.out;
  r = run(cmd + " --classes none --out " + dir.file("none"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(read_json(dir.file("none/summary.json")).contains("classes"));
  write_nucleus_table(dir.file("test_1_000_nuclei.csv"),
                      nuclei_from_instances(found, ones, {}, {"background", "other", "inflammatory"}));
  r = run(cmd + " --out " + dir.file("same"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(read_json(dir.file("same/summary.json")).contains("classes"));
}
