// The SAM embedding cache files: round trip, the exact sidecar text, and bad sidecars.
#include <gtest/gtest.h>

#include <fstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/sam/embedding_cache.h"
#include "support/test_support.h"

using namespace nucleisam;

TEST(EmbeddingCache, RoundTripAndExactSidecar) {
  test::TempDir dir;
  const std::string npy = dir.file("e.npy");
  torch::Tensor emb = torch::arange(24, torch::kFloat).reshape({1, 2, 3, 4}) / 8;
  sam::EmbeddingInfo info;
  info.model_type = "vit_t";
  info.checkpoint = "ckpt \"x\".pth";
  info.image = "tile.png";
  info.input_size = 64;
  info.original_height = 30;
  info.original_width = 40;
  info.resized_height = 48;
  info.resized_width = 64;
  info.precision = "bf16";
  sam::write_embedding(npy, emb.to(torch::kDouble), info);
  EXPECT_EQ(sam::embedding_sidecar_path(npy), dir.file("e.json"));
  EXPECT_EQ(read_file(dir.file("e.json")),
            "{\n"
            "  \"checkpoint\": \"ckpt \\\"x\\\".pth\",\n"
            "  \"image\": \"tile.png\",\n"
            "  \"input_size\": 64,\n"
            "  \"model_type\": \"vit_t\",\n"
            "  \"original_height\": 30,\n"
            "  \"original_width\": 40,\n"
            "  \"precision\": \"bf16\",\n"
            "  \"resized_height\": 48,\n"
            "  \"resized_width\": 64,\n"
            "  \"shape\": [\n"
            "    1,\n"
            "    2,\n"
            "    3,\n"
            "    4\n"
            "  ]\n"
            "}\n");
  sam::EmbeddingInfo back;
  torch::Tensor t = sam::read_embedding(npy, &back);
  EXPECT_TRUE(torch::equal(t, emb));
  EXPECT_EQ(t.scalar_type(), torch::kFloat);
  EXPECT_EQ(back.model_type, "vit_t");
  EXPECT_EQ(back.checkpoint, info.checkpoint);
  EXPECT_EQ(back.input_size, 64);
  EXPECT_EQ(back.original_width, 40);
  EXPECT_EQ(back.resized_height, 48);
  EXPECT_EQ(back.precision, "bf16");
  EXPECT_EQ(back.shape, (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(EmbeddingCache, BadSidecarsNameTheFile) {
  test::TempDir dir;
  const std::string npy = dir.file("e.npy");
  sam::write_embedding(npy, torch::zeros({1, 2, 2, 2}), {});
  write_file_atomic(dir.file("e.json"), "{\"input_size\": 64, \"original_width\": 4}");
  try {
    sam::read_embedding_info(npy);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("e.json: not a sam-embed sidecar (no \"original_height\")"), std::string::npos)
        << e.what();
  }
  write_file_atomic(dir.file("e.json"), "not json");
  EXPECT_THROW(sam::read_embedding_info(npy), IoError);
  // A sidecar whose shape disagrees with the array.
  write_file_atomic(dir.file("e.json"),
                    "{\"input_size\": 64, \"original_width\": 4, \"original_height\": 4, \"shape\": [1, 2, 2, 3]}");
  EXPECT_THROW(sam::read_embedding(npy), IoError);
}
