// `nucleisam sam` and `nucleisam sam-embed` on the vit_tiny fixture: the written masks and scores
// match the official outputs (within the fixture README's tolerances), the embedding round trip
// through sam-embed gives the same answer, and bad input gives one line and the right exit code.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nucleisam/image_io.h"
#include "nucleisam/npy.h"
#include "support/test_support.h"

namespace {

using nucleisam::test::shared_path;

using Result = ::nucleisam::test::CliResult;

Result run(const std::string& args) { return ::nucleisam::test::run_cli(args); }

int lines(const std::string& s) { return ::nucleisam::test::count_lines(s); }

std::string fixture(const std::string& name) { return shared_path("fixtures/sam/vit_tiny/" + name); }

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return nlohmann::json::parse(s.str());
}

// Compares out/mask_<i>.png and the iou in out/scores.json with the fixture outputs <prefix>_*.
void expect_matches_fixture(const std::string& out, const std::string& prefix, int64_t flip_budget) {
  auto masks = nucleisam::read_npy(fixture(prefix + "_masks.npy"));  // 1 x C x 384 x 512 uint8
  auto expected = masks.to_vector<uint8_t>();
  auto iou = nucleisam::read_npy(fixture(prefix + "_iou.npy")).to_vector<float>();
  const int64_t count = masks.shape[1];
  auto scores = read_json(out + "/scores.json");
  ASSERT_EQ(static_cast<int64_t>(scores["masks"].size()), count);
  int64_t mismatched = 0;
  for (int64_t i = 0; i < count; ++i) {
    auto m = nucleisam::io::read_image(out + "/mask_" + std::to_string(i) + ".png");
    ASSERT_EQ(m.width, 512);
    ASSERT_EQ(m.height, 384);
    for (size_t p = 0; p < m.pixels(); ++p) {
      const uint8_t v = m.data[3 * p];
      EXPECT_TRUE(v == 0 || v == 255);
      mismatched += (v != 0) != (expected[i * m.pixels() + p] != 0);
    }
    EXPECT_NEAR(scores["masks"][i]["iou"].get<double>(), iou[i], 1e-4) << prefix << " mask " << i;
  }
  EXPECT_LE(mismatched, flip_budget) << prefix;
}

class SamCli : public ::testing::Test {
 protected:
  void SetUp() override { NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny/sam_vit_tiny.pth"); }
  std::string ckpt() const { return "--checkpoint " + fixture("sam_vit_tiny.pth"); }
  nucleisam::test::TempDir dir;
};

TEST_F(SamCli, PointsFromTheImageMatchTheOfficialMasks) {
  Result r = run("sam " + ckpt() + " --image " + fixture("image.png") +
                 " --point 100,80,1 --point 300,200,0 --multimask --out " + dir.file("p") + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  expect_matches_fixture(dir.file("p"), "points1", 576);
  auto scores = read_json(dir.file("p/scores.json"));
  EXPECT_EQ(scores["prompts"]["points"][1]["label"], 0);
  EXPECT_EQ(scores["prompts"]["points"][1]["x"], 300.0);
  EXPECT_EQ(scores["width"], 512);
  // The low-res logits are written beside each mask: 1 x 256 x 256.
  auto logits = nucleisam::read_npy(dir.file("p/mask_1_logits.npy"));
  EXPECT_EQ(logits.shape, (std::vector<int64_t>{1, 256, 256}));
}

TEST_F(SamCli, EmbeddingRoundTripAnswersBoxAndMaskPrompts) {
  Result r = run("sam-embed " + ckpt() + " --image " + fixture("image.png") + " --out " + dir.file("e.npy") +
                 " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  auto emb = nucleisam::read_npy(dir.file("e.npy"));
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{1, 256, 64, 64}));
  auto expected = nucleisam::read_npy(fixture("image_embeddings.npy")).to_vector<float>();
  auto got = emb.to_vector<float>();
  ASSERT_EQ(got.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - expected[i]));
  EXPECT_LT(worst, 1e-4);
  auto side = read_json(dir.file("e.json"));
  EXPECT_EQ(side["original_width"], 512);
  EXPECT_EQ(side["original_height"], 384);
  EXPECT_EQ(side["resized_width"], 1024);
  EXPECT_EQ(side["resized_height"], 768);
  EXPECT_EQ(side["input_size"], 1024);

  r = run("sam " + ckpt() + " --embedding " + dir.file("e.npy") + " --box 50,40,250,220 --out " +
          dir.file("b") + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  expect_matches_fixture(dir.file("b"), "box1", 202);

  r = run("sam " + ckpt() + " --embedding " + dir.file("e.npy") + " --point 150,150 --box 100,100,220,230" +
          " --mask-input " + fixture("points_box_mask_mask_input.npy") + " --out " + dir.file("m") +
          " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  expect_matches_fixture(dir.file("m"), "points_box_mask", 145);
}

TEST_F(SamCli, SmallerInputSizeKeepsTheOriginalFrame) {
  Result r = run("sam " + ckpt() + " --image " + fixture("image.png") +
                 " --point 100,80 --input-size 256 --out " + dir.file("s") + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  auto m = nucleisam::io::read_image(dir.file("s/mask_0.png"));
  EXPECT_EQ(m.width, 512);  // masks come back at the original size
  EXPECT_EQ(m.height, 384);
  EXPECT_EQ(nucleisam::read_npy(dir.file("s/mask_0_logits.npy")).shape, (std::vector<int64_t>{1, 64, 64}));
  EXPECT_EQ(read_json(dir.file("s/scores.json"))["input_size"], 256);
  // A 1024-size mask input does not fit a 256 input.
  r = run("sam " + ckpt() + " --image " + fixture("image.png") +
          " --point 100,80 --input-size 256 --mask-input " + fixture("points_box_mask_mask_input.npy") +
          " --out " + dir.file("t"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
}

TEST_F(SamCli, MalformedPromptsAreUsageErrors) {
  const std::string base = "sam " + ckpt() + " --image " + fixture("image.png") + " --out " + dir.file("x");
  for (const char* bad : {" --point abc", " --point 1,2,3", " --point 1", " --box 1,2,3", " --box 5,5,1,1",
                          "", " --point 1,2 --input-size 100"}) {
    Result r = run(base + std::string(bad));
    EXPECT_EQ(r.code, 2) << bad << ": " << r.out;
    EXPECT_EQ(lines(r.out), 1) << bad << ": " << r.out;
  }
  Result r = run("sam " + ckpt() + " --point 1,2 --out " + dir.file("x"));  // neither --image nor --embedding
  EXPECT_EQ(r.code, 2) << r.out;
}

TEST_F(SamCli, BadInputIsOneLineExitOne) {
  Result r =
      run("sam " + ckpt() + " --image " + fixture("image.png") + " --point 600,10 --out " + dir.file("x"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("outside the 512x384 image"), std::string::npos) << r.out;

  r = run("sam --checkpoint " + dir.file("none.pth") + " --image " + fixture("image.png") +
          " --point 1,2 --out " + dir.file("x"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("none.pth"), std::string::npos) << r.out;

  r = run("sam " + ckpt() + " --image " + dir.file("none.png") + " --point 1,2 --out " + dir.file("x"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("none.png"), std::string::npos) << r.out;

  r = run("sam " + ckpt() + " --image " + fixture("image.png") + " --point 1,2 --mask-input " +
          fixture("points1_iou.npy") + " --out " + dir.file("x"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("points1_iou.npy"), std::string::npos) << r.out;

  // A checkpoint that is not SAM (the image file itself).
  r = run("sam --checkpoint " + fixture("image.png") + " --image " + fixture("image.png") +
          " --point 1,2 --out " + dir.file("x"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_FALSE(std::ifstream(dir.file("x/scores.json")).good());  // nothing written on failure
}

}  // namespace
