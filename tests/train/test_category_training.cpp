// Category-descriptor SAM through the trainer: category targets, the federated loss, the
// initialise hook (SAM weights), frozen SAM weights untouched by Adam, learning on synthetic
// nuclei, and the exported model file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "nucleisam/data/loader.h"
#include "nucleisam/errors.h"
#include "nucleisam/models/category_sam.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/train/trainer.h"
#include "nucleisam/weights/state_dict.h"
#include "support/test_support.h"
#include "train/synthetic_nuclei.h"

using namespace nucleisam;
namespace fs = std::filesystem;

namespace {

train::TrainConfig category_config(const std::string& trainable) {
  train::TrainConfig c;
  c.card.name = "cat";
  c.card.arch = "category-sam";
  c.card.options = {{"encoder", "vit"},         {"encoder_embed_dim", "32"}, {"encoder_depth", "2"},
                    {"encoder_heads", "2"},     {"encoder_window", "2"},     {"encoder_global_attn", "1"},
                    {"encoder_img_size", "64"}, {"alignment_blocks", "2"},   {"alignment_hidden", "16"},
                    {"descriptors", "4"},       {"input_size", "64"},        {"trainable", trainable}};
  c.card.heads.distance = false;
  c.card.heads.categories = true;
  c.card.heads.num_classes = 2;
  c.card.class_names = {"background", "type1", "type2"};
  c.card.tile_size = 32;
  c.card.tile_overlap = 0;
  c.augment.crop_size = 32;
  c.augment.color_probability = 0;
  c.augment.stain_probability = 0;
  c.epochs = 1;
  c.batch_size = 4;
  c.crops_per_image = 8;
  c.lr = 3e-3;
  c.weight_decay = 1e-4;
  c.schedule.kind = "constant";
  c.loader_threads = 0;
  c.seed = 5;
  c.checkpoint_every = 0;
  c.log_every = 1;
  return c;
}

std::string fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nucleisam_cattrain_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

}  // namespace

TEST(CategoryTraining, TargetsAreBackgroundTypesAndBoundary) {
  data::Batch b;
  b.size = 1, b.height = 1, b.width = 4;
  b.three_class = {0, 1, 2, 1};
  b.classes = {0, 2, 2, 1};
  b.names = {"img"};
  models::HeadLayout heads;
  heads.categories = true;
  heads.num_classes = 2;
  auto t = train::targets_from_batch(b, heads);
  EXPECT_TRUE(torch::equal(t.categories, torch::tensor({0, 2, 3, 1}, torch::kInt64).view({1, 1, 4})));
  // Class-agnostic: one nucleus category, boundary is 2.
  heads.num_classes = 0;
  b.classes = {0, 1, 1, 1};
  t = train::targets_from_batch(b, heads);
  EXPECT_TRUE(torch::equal(t.categories, torch::tensor({0, 1, 2, 1}, torch::kInt64).view({1, 1, 4})));
  // A nucleus pixel without a type cannot be a category target.
  heads.num_classes = 2;
  b.classes = {0, 0, 2, 1};
  EXPECT_THROW(train::targets_from_batch(b, heads), DataError);
}

TEST(CategoryTraining, ObjectiveIsTheFederatedHingeLoss) {
  models::HeadLayout heads;
  heads.categories = true;
  heads.num_classes = 1;
  train::BatchTargets t;
  t.categories = torch::tensor({0, 1, 2, 1}, torch::kInt64).view({1, 2, 2});
  auto logits = torch::randn({1, 3, 2, 2});
  train::ObjectiveOptions o;
  o.hinge_margin = 0.3;
  auto terms = train::objective(logits, t, heads, o);
  auto expected = train::federated_bce_hinge_loss(logits, t.categories, torch::zeros({1, 3}, torch::kBool), 0.3);
  EXPECT_DOUBLE_EQ(terms.total.item<double>(), expected.item<double>());
  EXPECT_FALSE(terms.distance.defined());
  EXPECT_THROW(train::objective(torch::randn({1, 4, 2, 2}), t, heads, o), ModelError);
}

std::vector<double> epoch_losses(const std::string& dir) {
  std::ifstream log(dir + "/log.csv");
  std::string line;
  std::vector<double> out;
  while (std::getline(log, line))
    if (line.rfind("epoch,", 0) == 0) {
      std::stringstream s(line);
      std::string field;
      for (int i = 0; i < 5; ++i) std::getline(s, field, ',');
      out.push_back(std::stod(field));
    }
  return out;
}

TEST(CategoryTraining, FrozenSamStaysAsLoadedWhileTheAdaptersTrain) {
  fixtures::SyntheticNuclei data(4, 32, 2);
  train::TrainConfig c = category_config("adapters");
  // The "checkpoint": SAM weights of another network, loaded by the initialise hook.
  torch::manual_seed(77);
  auto donor = std::dynamic_pointer_cast<models::CategorySamImpl>(models::build_network(c.card));
  const weights::StateDict sam_state = weights::state_of(*donor->sam);
  bool called = false;
  c.initialise = [&](models::SegmentationNetworkImpl& n) {
    called = true;
    dynamic_cast<models::CategorySamImpl&>(n).load_sam_weights(sam_state, "donor");
  };
  const std::string dir = fresh_dir("frozen");
  train::Trainer t(c, data, dir);
  EXPECT_TRUE(called);
  auto net = std::dynamic_pointer_cast<models::CategorySamImpl>(t.network());
  const torch::Tensor descriptors = net->category_descriptors.detach().clone();
  const torch::Tensor scale = net->domain_alignment->blocks[0]->as<models::InvertedResidualImpl>()->project_bn->weight.detach().clone();
  t.run();
  // Adam (with weight decay) never touched SAM; the adapters moved.
  for (const auto& [key, value] : weights::state_of(*net->sam).entries)
    EXPECT_TRUE(torch::equal(value, sam_state.at(key))) << key;
  EXPECT_FALSE(torch::equal(net->category_descriptors, descriptors));
  EXPECT_FALSE(torch::equal(net->domain_alignment->blocks[0]->as<models::InvertedResidualImpl>()->project_bn->weight, scale));
  // The exported model rebuilds the network and its outputs.
  models::LoadedModel m = models::load_model(dir + "/best.safetensors");
  EXPECT_TRUE(m.card.heads.categories);
  EXPECT_EQ(m.card.class_names, c.card.class_names);
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 32, 32});
  EXPECT_TRUE(torch::allclose(net->forward(x, {}), m.network->forward(x, {}), 1e-5, 1e-6));
  fs::remove_all(dir);
}

TEST(CategoryTraining, TrainedFromScratchTheLossFalls) {
  fixtures::SyntheticNuclei data(4, 32, 2);
  train::TrainConfig c = category_config("all");
  c.crops_per_image = 6;
  c.epochs = 3;
  c.lr = 2e-3;
  const std::string dir = fresh_dir("scratch");
  train::Trainer t(c, data, dir);
  t.run();
  const std::vector<double> loss = epoch_losses(dir);
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_LT(loss[2], loss[0] * 0.8) << loss[0] << " " << loss[1] << " " << loss[2];
  fs::remove_all(dir);
}
