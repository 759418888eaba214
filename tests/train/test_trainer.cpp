// The trainer: schedule, epoch order, learning, checkpoints and exact resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nucleisam/errors.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/train/trainer.h"
#include "support/test_support.h"
#include "train/synthetic_nuclei.h"

using namespace nucleisam;
namespace fs = std::filesystem;

namespace {

train::TrainConfig tiny_config() {
  train::TrainConfig c;
  c.card.name = "tiny";
  c.card.arch = "unet";
  c.card.options = {{"width", "4"}, {"depth", "3"}};
  c.card.tile_size = 32;
  c.card.tile_overlap = 8;
  c.augment.crop_size = 32;
  c.augment.color_probability = 0.5;
  c.augment.stain_probability = 0.5;
  c.epochs = 2;
  c.batch_size = 2;
  c.crops_per_image = 2;
  c.lr = 3e-3;
  c.schedule.warmup_steps = 2;
  c.loader_threads = 1;
  c.seed = 11;
  c.checkpoint_every = 0;
  c.log_every = 1;
  return c;
}

std::string fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nucleisam_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

void expect_same_weights(const models::SegmentationNetwork& a, const models::SegmentationNetwork& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  auto ba = a->named_buffers(), bb = b->named_buffers();
  for (const auto& item : ba) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
}

}  // namespace

TEST(Trainer, LearningRateSchedules) {
  fixtures::SyntheticNuclei data(3, 32);
  train::TrainConfig c = tiny_config();
  c.lr = 1.0;
  c.epochs = 4;
  c.schedule.warmup_steps = 10;
  c.schedule.final_ratio = 0.0;
  train::Trainer t(c, data, fresh_dir("lr"));
  // warm-up: 0.01 + 0.99 * step / 10
  EXPECT_DOUBLE_EQ(t.learning_rate(0, 10), 0.01);
  EXPECT_DOUBLE_EQ(t.learning_rate(5, 10), 0.01 + 0.99 * 0.5);
  // cosine over steps 10..40: halfway (step 25) is 0.5, the end is final_ratio
  EXPECT_NEAR(t.learning_rate(25, 10), 0.5, 1e-12);
  EXPECT_NEAR(t.learning_rate(40, 10), 0.0, 1e-12);
  c.schedule.kind = "step";
  c.schedule.step_epochs = {2, 3};
  c.schedule.step_gamma = 0.1;
  train::Trainer s(c, data, fresh_dir("lr2"));
  EXPECT_DOUBLE_EQ(s.learning_rate(15, 10), 1.0);   // epoch 1
  EXPECT_DOUBLE_EQ(s.learning_rate(25, 10), 0.1);   // epoch 2
  EXPECT_NEAR(s.learning_rate(35, 10), 0.01, 1e-15);  // epoch 3
}

TEST(Trainer, EpochOrderRepeatsEachImageAndDependsOnTheEpoch) {
  fixtures::SyntheticNuclei data(4, 32);
  train::TrainConfig c = tiny_config();
  c.crops_per_image = 3;
  train::Trainer t(c, data, fresh_dir("order"));
  auto e0 = t.epoch_order(0), e0b = t.epoch_order(0), e1 = t.epoch_order(1);
  EXPECT_EQ(e0, e0b);
  EXPECT_NE(e0, e1);
  ASSERT_EQ(e0.size(), 12u);
  std::vector<int> count(4, 0);
  for (size_t i : e0) ++count[i];
  for (int n : count) EXPECT_EQ(n, 3);
}

TEST(Trainer, BadConfigurationsAreRefused) {
  fixtures::SyntheticNuclei data(2, 32);
  train::TrainConfig c = tiny_config();
  c.augment.crop_size = 30;  // not a multiple of 4 (depth 3)
  EXPECT_THROW(train::Trainer(c, data, fresh_dir("bad")), ModelError);
  c = tiny_config();
  c.precision = "fp16";
  EXPECT_THROW(train::Trainer(c, data, fresh_dir("bad")), ModelError);
}

TEST(Trainer, LossFallsOnALearnableTask) {
  fixtures::SyntheticNuclei data(4, 32);
  train::TrainConfig c = tiny_config();
  c.epochs = 6;
  c.lr = 1e-2;
  c.augment.color_probability = 0;
  c.augment.stain_probability = 0;
  const std::string dir = fresh_dir("learn");
  train::Trainer t(c, data, dir);
  t.run();
  // First and last logged step losses (log.csv: kind,epoch,step,lr,loss,...).
  std::ifstream log(dir + "/log.csv");
  std::string line;
  std::vector<double> losses;
  while (std::getline(log, line)) {
    if (line.rfind("step,", 0) != 0) continue;
    std::stringstream s(line);
    std::string field;
    for (int k = 0; k < 5; ++k) std::getline(s, field, ',');
    losses.push_back(std::stod(field));
  }
  ASSERT_EQ(losses.size(), 24u);  // 6 epochs x 4 steps
  const double first = (losses[0] + losses[1] + losses[2]) / 3;
  const double last = (losses[21] + losses[22] + losses[23]) / 3;
  EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
  fs::remove_all(dir);
}

TEST(Trainer, InterruptedAndResumedRunEndsWithIdenticalWeights) {
  fixtures::SyntheticNuclei data(3, 32);
  train::TrainConfig c = tiny_config();
  c.card.arch = "eunet3plus";  // dropout and batch norm: random state and buffers must resume too
  c.card.options = {{"width", "4"}, {"depth", "3"}};
  c.checkpoint_every = 2;
  const std::string whole = fresh_dir("whole"), parts = fresh_dir("parts");
  train::Trainer uninterrupted(c, data, whole);
  train::TrainResult full = uninterrupted.run();
  EXPECT_EQ(full.steps, 6);  // 2 epochs x (3 images x 2 crops / batch 2)

  {
    train::Trainer first(c, data, parts);
    train::TrainResult stopped = first.run(4);  // mid-way through epoch 2 (steps 4 of 6)
    EXPECT_EQ(stopped.steps, 4);
  }
  train::Trainer resumed(c, data, parts);
  train::TrainResult rest = resumed.run();
  EXPECT_EQ(rest.steps, 6);
  expect_same_weights(uninterrupted.network(), resumed.network());

  // The exported model is the trained network.
  models::LoadedModel m = models::load_model(whole + "/best.safetensors");
  EXPECT_EQ(m.card.arch, "eunet3plus");
  EXPECT_EQ(m.card.info.at("epoch"), "2");
  uninterrupted.network()->eval();
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({1, 3, 32, 32});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(m.network->forward(x, {}), uninterrupted.network()->forward(x, {}), 1e-5, 1e-6));
  // The log of the resumed run has each step once.
  std::ifstream log(parts + "/log.csv");
  std::string line;
  int steps = 0;
  while (std::getline(log, line)) steps += line.rfind("step,", 0) == 0;
  EXPECT_EQ(steps, 6);
  fs::remove_all(whole);
  fs::remove_all(parts);
}

// Reads log.csv without its last column (the wall-clock seconds).
static std::vector<std::string> log_rows(const std::string& dir) {
  std::ifstream in(dir + "/log.csv");
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line.substr(0, line.rfind(',')));
  return rows;
}

// A kill -9 after an epoch's row was written but before the checkpoint that ends the epoch (the
// last saved checkpoint is then the one of the epoch's last step), with a torn write after it: the
// resumed run's log is the uninterrupted run's, the epoch's row once and no fragment.
TEST(Trainer, ResumeAfterAKillBetweenAnEpochRowAndItsCheckpointLogsTheEpochOnce) {
  fixtures::SyntheticNuclei data(3, 32);
  train::TrainConfig c = tiny_config();
  c.checkpoint_every = 1;
  int calls = 0;
  train::Validator v = [&calls](models::SegmentationNetworkImpl&, models::ModelCard&) {
    ++calls;
    return std::map<std::string, double>{{"aji", 0.5}, {"dice", 0.5}};
  };
  const std::string whole = fresh_dir("epoch_row_whole"), parts = fresh_dir("epoch_row_parts");
  train::Trainer uninterrupted(c, data, whole, v);
  uninterrupted.run();
  const std::vector<std::string> reference = log_rows(whole);
  ASSERT_EQ(reference.size(), 1u + 6 + 2);  // header, 6 steps, 2 epochs

  {
    train::Trainer first(c, data, parts, v);
    ASSERT_EQ(first.run(3).steps, 3);  // epoch 1's last step, checkpointed; epoch 1 not ended
  }
  std::string epoch_row;  // epoch 1's row as the killed process had written it
  {
    std::ifstream in(whole + "/log.csv");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("epoch,1,", 0) == 0) epoch_row = line;
  }
  ASSERT_FALSE(epoch_row.empty());
  {
    std::ofstream out(parts + "/log.csv", std::ios::app);
    out << epoch_row << "\nstep,2,1";  // and the start of a row cut by the kill (it parses as step 1)
  }
  calls = 0;
  train::Trainer resumed(c, data, parts, v);
  EXPECT_EQ(resumed.run().steps, 6);
  EXPECT_EQ(calls, 2);  // epoch 1 is validated again (it had not ended), then epoch 2
  EXPECT_EQ(log_rows(parts), reference);
  expect_same_weights(uninterrupted.network(), resumed.network());
  fs::remove_all(whole);
  fs::remove_all(parts);
}

TEST(Trainer, ValidatorPicksTheBestEpochAndItsDecoding) {
  fixtures::SyntheticNuclei data(2, 32);
  train::TrainConfig c = tiny_config();
  c.epochs = 3;
  const std::string dir = fresh_dir("val");
  int calls = 0;
  // Scores 0.2, 0.9, 0.5: epoch 2 is the best and its decoding is what the file keeps.
  train::Validator v = [&calls](models::SegmentationNetworkImpl&, models::ModelCard& card) {
    const double scores[] = {0.2, 0.9, 0.5};
    card.decoding["method"] = "epoch" + std::to_string(calls + 1);
    return std::map<std::string, double>{{"aji", scores[calls++]}, {"dice", 0.5}};
  };
  train::Trainer t(c, data, dir, v);
  train::TrainResult r = t.run();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.best_epoch, 2);
  EXPECT_DOUBLE_EQ(r.best_score, 0.9);
  models::LoadedModel m = models::load_model(r.model_path);
  EXPECT_EQ(m.card.info.at("epoch"), "2");
  EXPECT_EQ(m.card.decoding.at("method"), "epoch2");
  EXPECT_EQ(m.card.info.at("validation.aji"), "0.9");
  fs::remove_all(dir);
}

// A run resumed after a validation keeps its best score: a later, better epoch is still the best.
TEST(Trainer, ResumedRunKeepsTheBestScoreAndStillImproves) {
  fixtures::SyntheticNuclei data(2, 32);
  train::TrainConfig c = tiny_config();
  c.epochs = 3;
  c.checkpoint_every = 1;
  const std::string dir = fresh_dir("best_resume");
  // Scores by epoch 0.4, 0.3, 0.8: the run is stopped in epoch 3 and resumed.
  int calls = 0;
  const double scores[] = {0.4, 0.3, 0.8};
  train::Validator v = [&](models::SegmentationNetworkImpl&, models::ModelCard&) {
    return std::map<std::string, double>{{"aji", scores[calls++]}, {"dice", 0.5}};
  };
  {
    train::Trainer first(c, data, dir, v);
    const train::TrainResult stopped = first.run(5);  // 2 steps per epoch: mid-way through epoch 3
    EXPECT_EQ(stopped.steps, 5);
    EXPECT_EQ(calls, 2);
  }
  train::Trainer resumed(c, data, dir, v);
  const train::TrainResult r = resumed.run();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.best_epoch, 3);
  EXPECT_DOUBLE_EQ(r.best_score, 0.8);
  EXPECT_EQ(models::load_model(r.model_path).card.info.at("epoch"), "3");
  fs::remove_all(dir);
}

TEST(Trainer, DamagedCheckpointIsACheckpointErrorNamingTheFile) {
  fixtures::SyntheticNuclei data(2, 32);
  const std::string dir = fresh_dir("damaged");
  fs::create_directories(dir);
  std::ofstream(dir + "/last.ckpt") << "not a checkpoint";
  train::Trainer t(tiny_config(), data, dir);
  try {
    t.run();
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("last.ckpt"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Trainer, InitialiseFromCopiesMatchingTensorsAndKeepsNewHeadsRandom) {
  const std::string dir = fresh_dir("init");
  fs::create_directories(dir);
  // A class-agnostic model file, then a network with an extra class head initialised from it.
  models::ModelCard source_card = tiny_config().card;
  torch::manual_seed(3);
  models::SegmentationNetwork source = models::build_network(source_card);
  models::save_model(dir + "/source.safetensors", *source, source_card);

  models::ModelCard target_card = source_card;
  target_card.heads.num_classes = 3;
  torch::manual_seed(4);
  models::SegmentationNetwork target = models::build_network(target_card);
  const auto before = target->named_parameters();
  std::map<std::string, torch::Tensor> untouched;
  for (const auto& item : before) untouched[item.key()] = item.value().clone();

  std::vector<std::string> kept;
  const size_t copied = train::initialise_from(*target, dir + "/source.safetensors", &kept);
  const auto src = source->named_parameters();
  size_t same = 0;
  for (const auto& item : target->named_parameters()) {
    const bool in_source = src.contains(item.key()) && src[item.key()].sizes() == item.value().sizes();
    if (in_source) {
      EXPECT_TRUE(torch::equal(item.value(), src[item.key()])) << item.key();
      ++same;
    } else {
      EXPECT_TRUE(torch::equal(item.value(), untouched[item.key()])) << item.key();
      EXPECT_NE(std::find(kept.begin(), kept.end(), item.key()), kept.end()) << item.key();
    }
  }
  EXPECT_GT(same, 0u);
  EXPECT_LT(same, target->named_parameters().size());  // the class head is new
  EXPECT_EQ(copied, same + target->named_buffers().size());

  // Another width matches a few biases at most: refused, naming the file.
  models::ModelCard other = source_card;
  other.options = {{"width", "6"}, {"depth", "3"}};
  models::SegmentationNetwork unrelated = models::build_network(other);
  try {
    train::initialise_from(*unrelated, dir + "/source.safetensors");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("source.safetensors"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
