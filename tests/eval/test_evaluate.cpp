// The evaluation library called directly: known answers for in-memory pairs and for label-map
// folders, name matching, sidecar classes (CSV and class-map voting), the report texts, and
// bad input (missing counterparts, missing classes).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/eval/evaluate.h"
#include "nucleisam/image_io.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;
using namespace nucleisam::eval;
namespace fs = std::filesystem;

namespace {

void fill_rect(LabelMap& m, int32_t label, int y, int x, int h, int w) {
  for (int r = y; r < y + h; ++r)
    for (int c = x; c < x + w; ++c) m.at(r, c) = label;
}

// Image "a" (4x8): GT 1 = 2x4 at (0,0), GT 2 = 2x4 at (0,4); pred 1 = 2x6 at (0,0), pred 2 = 2x2 at
// (2,0): Dice 24/32, AJI 12/32, PQ 1/3 (TP 1, FP 1, FN 1). Image "b" (4x4): exact: every metric 1.
std::vector<ImagePair> hand_pairs() {
  ImagePair a, b;
  a.name = "a";
  a.gt.instances = LabelMap(4, 8);
  a.pred.instances = LabelMap(4, 8);
  fill_rect(a.gt.instances, 1, 0, 0, 2, 4);
  fill_rect(a.gt.instances, 2, 0, 4, 2, 4);
  fill_rect(a.pred.instances, 1, 0, 0, 2, 6);
  fill_rect(a.pred.instances, 2, 2, 0, 2, 2);
  b.name = "b";
  b.gt.instances = LabelMap(4, 4);
  fill_rect(b.gt.instances, 1, 0, 0, 2, 2);
  fill_rect(b.gt.instances, 2, 2, 2, 2, 2);
  b.pred.instances = b.gt.instances;
  return {a, b};
}

void expect_hand_numbers(const EvalReport& r) {
  EXPECT_EQ(r.summary.images, 2u);
  EXPECT_DOUBLE_EQ(r.summary.dice.mean, (24.0 / 32 + 1) / 2);
  EXPECT_DOUBLE_EQ(r.summary.aji.mean, (12.0 / 32 + 1) / 2);
  EXPECT_DOUBLE_EQ(r.summary.pq.mean, (1.0 / 3 + 1) / 2);
  EXPECT_EQ(r.summary.detection.tp, 3);
  EXPECT_EQ(r.summary.detection.fp, 1);
  EXPECT_EQ(r.summary.detection.fn, 1);
  ASSERT_EQ(r.images.size(), 2u);
  EXPECT_EQ(r.images[0].name, "a");
  EXPECT_EQ(r.images[0].pq.tp, 1);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return "";
}

}  // namespace

TEST(Evaluate, InMemoryPairsGiveTheHandComputedNumbers) {
  EvalReport r = evaluate(hand_pairs(), {});
  expect_hand_numbers(r);
  EXPECT_TRUE(r.classes.empty());
  // per_image.csv: a header and one row per image, Dice of "a" exactly 0.75.
  std::istringstream csv(per_image_csv(r));
  std::string header, row_a, row_b, extra;
  std::getline(csv, header);
  std::getline(csv, row_a);
  std::getline(csv, row_b);
  EXPECT_FALSE(std::getline(csv, extra));
  EXPECT_EQ(header.rfind("image,gt_instances,pred_instances,dice,", 0), 0u);
  EXPECT_EQ(row_a.rfind("a,2,2,0.75,", 0), 0u) << row_a;
  EXPECT_EQ(row_b.rfind("b,2,2,1,", 0), 0u) << row_b;
}

TEST(Evaluate, InMemoryClassesNeedClassesOnBothSides) {
  std::vector<ImagePair> pairs = hand_pairs();
  for (auto& p : pairs) {
    p.gt.classes = {1, 2};
    p.gt.classed = true;
  }
  EXPECT_NE(error_of([&] { evaluate(pairs, {"x", "y"}); }).find("a: prediction has no classes"), std::string::npos);
  for (auto& p : pairs) {
    p.pred.classes = {2, 1};
    p.pred.classed = true;
  }
  EvalReport r = evaluate(pairs, {"x", "y"});
  ASSERT_EQ(r.summary.classes.size(), 2u);
  EXPECT_EQ(r.options.num_classes, 2);
  // Image b: predicted classes swapped, so no class matches there.
  EXPECT_EQ(r.images[1].class_pq[0].tp, 0);
  EXPECT_NE(summary_json(r).find("\"mpq_plus\""), std::string::npos);
}

TEST(Evaluate, FoldersArePairedByNameAndGiveTheSameNumbers) {
  test::TempDir dir;
  const std::string gt = dir.file("gt"), pred = dir.file("pred");
  fs::create_directories(gt);
  fs::create_directories(pred);
  std::vector<ImagePair> pairs = hand_pairs();
  write_label_map(gt + "/a_label.png", pairs[0].gt.instances);
  write_label_map(gt + "/b.tif", pairs[1].gt.instances);
  write_label_map(pred + "/a_pred.npy", pairs[0].pred.instances);
  LabelMap b_pred = pairs[1].pred.instances;  // ids need not be consecutive
  for (int32_t& v : b_pred.data) v = v == 1 ? 9 : v == 2 ? 3 : 0;
  write_label_map(pred + "/b_instances.png", b_pred);
  write_label_map(pred + "/b_overlay.png", LabelMap(4, 4));  // segment's overlay: not a label map

  EvalRequest q;
  q.pred = pred;
  q.gt = gt;
  EvalReport r = evaluate(q);
  expect_hand_numbers(r);
  EXPECT_EQ(r.pred, pred);
  EXPECT_TRUE(r.missing_predictions.empty());

  write_report(r, dir.file("out"));
  std::ifstream json(dir.file("out/summary.json"));
  std::stringstream text;
  text << json.rdbuf();
  EXPECT_EQ(text.str(), summary_json(r));
  EXPECT_NE(text.str().find("\"gt\": \"" + gt + "\""), std::string::npos);

  // A ground-truth image without prediction is an error naming it, unless allowed.
  write_label_map(gt + "/c.png", pairs[1].gt.instances);
  std::string e = error_of([&] { evaluate(q); });
  EXPECT_NE(e.find("1 ground-truth image(s) have no prediction"), std::string::npos) << e;
  EXPECT_NE(e.find(": c"), std::string::npos) << e;
  q.allow_missing = true;
  r = evaluate(q);
  EXPECT_EQ(r.summary.images, 2u);
  EXPECT_EQ(r.missing_predictions, std::vector<std::string>{"c"});
}

TEST(Evaluate, MatchKeysDropOneToolSuffix) {
  EXPECT_EQ(match_key("TCGA-18_label"), "TCGA-18");
  EXPECT_EQ(match_key("TCGA-18_pred"), "TCGA-18");
  EXPECT_EQ(match_key("x_labels"), "x");
  EXPECT_EQ(match_key("_pred"), "_pred");  // nothing would be left
  EXPECT_EQ(match_key("plain"), "plain");
}

TEST(Evaluate, SidecarsGiveClassesAndScores) {
  test::TempDir dir;
  LabelMap m(2, 4);
  fill_rect(m, 5, 0, 0, 2, 2);
  fill_rect(m, 7, 0, 2, 2, 2);
  write_label_map(dir.file("p.png"), m);
  std::ofstream(dir.file("p.csv")) << "id,class,score\n7,1,0.25\n5,2,0.5\n";
  LabelledInstances li = read_labelled_instances(dir.file("p.png"));
  EXPECT_TRUE(li.classed);
  EXPECT_EQ(li.classes, (std::vector<int>{2, 1}));  // new ids 1, 2 are old 5, 7
  EXPECT_EQ(li.scores, (std::vector<double>{0.5, 0.25}));

  // A class map: each instance takes its most frequent non-zero class, ties to the lower class.
  write_label_map(dir.file("q.png"), m);
  LabelMap cls(2, 4);
  cls.data = {3, 3, 2, 1, 3, 0, 1, 2};
  write_label_map(dir.file("q_class.png"), cls);
  li = read_labelled_instances(dir.file("q.png"));
  EXPECT_TRUE(li.classed);
  EXPECT_EQ(li.classes, (std::vector<int>{3, 1}));

  // A sidecar without a row for an instance names the file.
  std::ofstream(dir.file("r.csv")) << "id,class\n5,1\n";
  write_label_map(dir.file("r.png"), m);
  std::string e = error_of([&] { read_labelled_instances(dir.file("r.png")); });
  EXPECT_NE(e.find("r.csv: no row for instance 7"), std::string::npos) << e;
}
