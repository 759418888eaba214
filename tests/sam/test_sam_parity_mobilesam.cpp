// SAM parity on the MobileSAM fixture: TinyViT encoder (vit_t) with SAM's prompt encoder and mask
// decoder, end to end through the predictor.
#include "sam/sam_parity_cases.h"

namespace nucleisam::test {

INSTANTIATE_TEST_SUITE_P(MobileSam, SamParity,
                         ::testing::Values(ParitySet{"vit_t_mobilesam", "mobile_sam_random.pth", 551, 311,
                                                     316}),
                         [](const auto&) { return std::string("vit_t"); });

TEST(MobileSamModel, DetectedAsTinyViT) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam/mobile_sam_random.pth");
  const auto path = shared_path("fixtures/sam/vit_t_mobilesam/mobile_sam_random.pth");
  auto state = weights::read_checkpoint(path);
  EXPECT_EQ(sam::detect_encoder_family(state, path), "vit_t");
  auto model = sam::build_sam(state, path);
  EXPECT_TRUE(model->is_tiny_vit());
  EXPECT_EQ(model->model_type(), "vit_t");
  EXPECT_EQ(weights::state_of(*model).size(), 439u);
}

}  // namespace nucleisam::test
