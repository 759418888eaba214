// SAM ViT parity on the vit_tiny fixture (ViT-B structure shrunk to E=96, depth 4, 4 heads, global
// blocks 1 and 3), plus model-level checks that only need this one checkpoint: architecture
// detection from the state dict and load failures that name the offending keys.
#include "sam/sam_parity_cases.h"

#include "nucleisam/errors.h"

namespace nucleisam::test {

INSTANTIATE_TEST_SUITE_P(VitTiny, SamParity,
                         ::testing::Values(ParitySet{"vit_tiny", "sam_vit_tiny.pth", 576, 202, 145}),
                         [](const auto&) { return std::string("vit_tiny"); });

class VitTinyModel : public ::testing::Test {
 protected:
  void SetUp() override { NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny/sam_vit_tiny.pth"); }
  std::string path() const { return shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth"); }
};

TEST_F(VitTinyModel, ArchitectureIsDetectedFromTheStateDict) {
  auto state = weights::read_checkpoint(path());
  EXPECT_EQ(state.size(), 202u);
  EXPECT_EQ(sam::detect_encoder_family(state, path()), "vit");
  auto c = sam::ImageEncoderViTConfig::from_state_dict(state, path());
  EXPECT_EQ(c.embed_dim, 96);
  EXPECT_EQ(c.depth, 4);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.global_attn_indexes, (std::vector<int>{1, 3}));
  EXPECT_EQ(c.window_size, 14);
  EXPECT_EQ(c.img_size, 1024);
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.out_chans, 256);
  EXPECT_DOUBLE_EQ(c.mlp_ratio, 4.0);
  EXPECT_EQ(c.name(), "vit(E=96,depth=4,heads=4,global=[1,3])");
  // The built model has exactly the checkpoint's tensors (pixel_mean/std are not among them).
  auto model = sam::build_sam(state, path());
  EXPECT_EQ(weights::state_of(*model).size(), 202u);
  EXPECT_EQ(weights::state_of(*model).numel(), 5609424);
}

TEST_F(VitTinyModel, MissingKeyIsNamed) {
  auto state = weights::read_checkpoint(path());
  const std::string victim = "mask_decoder.iou_prediction_head.layers.2.bias";
  weights::StateDict cut;
  for (auto& e : state.entries)
    if (e.first != victim) cut.entries.push_back(e);
  try {
    sam::build_sam(cut, "cut.pth");
    FAIL() << "loading a checkpoint without " << victim << " succeeded";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.pth"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
  }
}

TEST_F(VitTinyModel, WrongShapeIsNamed) {
  auto state = weights::read_checkpoint(path());
  const std::string victim = "prompt_encoder.no_mask_embed.weight";
  for (auto& e : state.entries)
    if (e.first == victim) e.second = torch::zeros({1, 128});
  try {
    sam::build_sam(state, "shape.pth");
    FAIL() << "loading a wrong-shaped " << victim << " succeeded";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("shape.pth"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
  }
}

TEST_F(VitTinyModel, NotASamCheckpointIsRejected) {
  weights::StateDict other;
  other.entries.emplace_back("backbone.conv1.weight", torch::zeros({4, 3, 3, 3}));
  EXPECT_THROW(sam::detect_encoder_family(other, "other.pth"), CheckpointError);
  EXPECT_THROW(sam::build_sam(other, "other.pth"), CheckpointError);
}

}  // namespace nucleisam::test
