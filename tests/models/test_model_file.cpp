// Model files: card round trip, weights round trip (fp32 and fp16), refusals.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "nucleisam/errors.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/weights/state_dict.h"

using namespace nucleisam;
using namespace nucleisam::models;
namespace fs = std::filesystem;

namespace {
ModelCard sample_card() {
  ModelCard c;
  c.name = "he-test";
  c.arch = "unet";
  c.options = {{"width", "4"}, {"depth", "3"}};
  c.heads.distance = true;
  c.heads.num_classes = 2;
  c.class_names = {"background", "epithelial", "other, with comma"};
  c.mean = {0.1f, 0.2f, 0.3f};
  c.std = {0.5f, 0.25f, 0.125f};
  c.mpp = 0.25;
  c.tile_size = 64;
  c.tile_overlap = 16;
  c.decoding = {{"method", "distance"}, {"marker_threshold", "0.55"}};
  c.info = {{"trained_on", "monuseg/train"}};
  return c;
}
std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / (name + std::to_string(::getpid()) + ".safetensors")).string();
}
}  // namespace

TEST(ModelCard, MetadataRoundTrip) {
  ModelCard c = sample_card();
  ModelCard back = card_from_metadata(card_metadata(c), "x");
  EXPECT_EQ(back.name, c.name);
  EXPECT_EQ(back.arch, c.arch);
  EXPECT_EQ(back.options, c.options);
  EXPECT_EQ(back.heads.distance, true);
  EXPECT_EQ(back.heads.num_classes, 2);
  EXPECT_EQ(back.class_names, c.class_names);
  EXPECT_EQ(back.mean, c.mean);
  EXPECT_EQ(back.std, c.std);
  EXPECT_DOUBLE_EQ(back.mpp, 0.25);
  EXPECT_EQ(back.tile_size, 64);
  EXPECT_EQ(back.tile_overlap, 16);
  EXPECT_EQ(back.decoding, c.decoding);
  EXPECT_EQ(back.info, c.info);
  EXPECT_FALSE(back.stain_range);  // none recorded (cards from before it existed)
  c.stain_range = StainAmountRange{{0.7, 0.6}, {3.3, 2.1}};
  const auto meta = card_metadata(c);
  EXPECT_EQ(meta.at("input.stain_range"), "0.7,3.3,0.6,2.1");  // haematoxylin low, high, eosin low, high
  back = card_from_metadata(meta, "x");
  ASSERT_TRUE(back.stain_range);
  EXPECT_DOUBLE_EQ(back.stain_range->low[0], 0.7);
  EXPECT_DOUBLE_EQ(back.stain_range->high[0], 3.3);
  EXPECT_DOUBLE_EQ(back.stain_range->low[1], 0.6);
  EXPECT_DOUBLE_EQ(back.stain_range->high[1], 2.1);
}

TEST(ModelCard, MalformedCardsNameTheFileAndTheEntry) {
  auto m = card_metadata(sample_card());
  auto expect_error = [](std::map<std::string, std::string> meta, const std::string& needle) {
    try {
      card_from_metadata(meta, "model.safetensors");
      FAIL() << "no error for " << needle;
    } catch (const ModelError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("model.safetensors"), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  auto no_format = m;
  no_format.erase("nucleisam.model");
  expect_error(no_format, "not a nucleisam model");
  auto bad_mean = m;
  bad_mean["input.mean"] = "0.1,0.2";
  expect_error(bad_mean, "input.mean");
  auto bad_std = m;
  bad_std["input.std"] = "0.1,0,0.2";
  expect_error(bad_std, "input.std");
  auto no_class = m;
  no_class.erase("class.2");
  expect_error(no_class, "class.2");
  auto future = m;
  future["nucleisam.model"] = "7";
  expect_error(future, "version 7");
  auto bad_range = m;
  bad_range["input.stain_range"] = "0.7,3.3,0.6";
  expect_error(bad_range, "input.stain_range");
  bad_range["input.stain_range"] = "3.3,0.7,0.6,2.1";
  expect_error(bad_range, "low < high");
  auto bad_tile = m;
  bad_tile["tile.overlap"] = "64";
  expect_error(bad_tile, "tile");
}

TEST(ModelFile, WeightsRoundTripInBothPrecisions) {
  ModelCard c = sample_card();
  SegmentationNetwork net = build_network(c);
  net->eval();
  torch::manual_seed(1);
  torch::Tensor x = torch::randn({1, 3, 32, 32});
  torch::NoGradGuard no_grad;
  torch::Tensor y = net->forward(x, {});
  EXPECT_EQ(y.size(1), c.heads.channels());
  for (bool half : {false, true}) {
    const std::string path = temp_file(half ? "half" : "full");
    save_model(path, *net, c, half);
    LoadedModel m = load_model(path);
    EXPECT_EQ(m.card.name, "he-test");
    torch::Tensor z = m.network->forward(x, {});
    if (half) {
      EXPECT_TRUE(torch::allclose(y, z, 1e-2, 1e-2));
      EXPECT_FALSE(torch::equal(y, z));  // fp16 storage does round
    } else {
      EXPECT_TRUE(torch::equal(y, z));
    }
    fs::remove(path);
  }
}

TEST(ModelFile, ASamCheckpointIsNotAModel) {
  const std::string path = temp_file("plain");
  weights::StateDict s;
  s.entries.emplace_back("w", torch::zeros({2}));
  weights::write_safetensors(path, s);
  try {
    load_model(path);
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  fs::remove(path);
}

TEST(ModelFile, WeightsOfAnotherArchitectureAreRefused) {
  ModelCard c = sample_card();
  SegmentationNetwork net = build_network(c);
  const std::string path = temp_file("other");
  ModelCard wider = c;
  wider.options["width"] = "8";  // the card says width 8, the weights are width 4
  save_model(path, *net, wider);
  EXPECT_THROW(load_model(path), CheckpointError);
  fs::remove(path);
}
