// The trainer of the segmentation networks: epochs of augmented crops, a loss over every head,
// Adam with a warm-up + cosine (or step) schedule, validation each epoch, checkpoints that survive
// kill -9 at any moment, and the export of the best model as one self-describing .safetensors file.
//
// A run folder holds:
//   last.ckpt         model + optimizer + counters (+ the best score), written atomically every
//                     `checkpoint_every` steps and at each epoch end;
//   best.safetensors  the exported model with the best validation score so far (or the last
//                     epoch's when there is no validation);
//   log.csv           one row per logged step and per epoch (epoch, step, loss terms, learning
//                     rate, validation metrics, seconds).
// Resuming reloads last.ckpt and replays the data order of the interrupted epoch from its first
// unseen batch. Every random draw is a function of (seed, epoch, position) or (seed, step): a run
// killed and resumed ends with exactly the weights of an uninterrupted run with the same threads.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nucleisam/data/augment.h"
#include "nucleisam/data/dataset.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/train/objective.h"

namespace nucleisam::train {

struct ScheduleConfig {
  std::string kind = "cosine";  // constant | cosine | step
  int64_t warmup_steps = 0;     // linear warm-up from lr * 0.01
  double final_ratio = 0.01;    // cosine: lr at the last step / lr
  std::vector<int> step_epochs; // step: epochs at which lr is multiplied by step_gamma
  double step_gamma = 0.1;
};

struct TrainConfig {
  models::ModelCard card;     // architecture, options, heads, normalisation, classes, mpp
  ObjectiveOptions loss;
  data::AugmentConfig augment;
  int epochs = 50;
  int batch_size = 16;
  int crops_per_image = 1;     // each training image appears this many times per epoch
  double rfs_threshold = 0;    // > 0: repeat-factor sampling over classes on top (LVIS t)
  double lr = 1e-3;
  double weight_decay = 1e-5;
  ScheduleConfig schedule;
  std::string precision = "fp32";  // fp32 | bf16 (autocast)
  bool channels_last = false;
  int loader_threads = 1;
  uint64_t seed = 0;
  int64_t checkpoint_every = 50;   // steps; 0 = only at epoch ends
  int64_t log_every = 10;          // steps
  int validate_every = 1;          // epochs; 0 = never
  std::string best_metric = "aji"; // a key of the validation metrics; larger is better
  // Called once on the freshly built network, before the optimizer takes its trainable
  // parameters and before a resume reloads last.ckpt (category-descriptor SAM: load the SAM
  // checkpoint). Empty: nothing.
  std::function<void(models::SegmentationNetworkImpl&)> initialise;
};

// Validation is supplied by the caller (it runs the same segmenter and evaluation as inference),
// so this core module does not depend on image files or postprocessing. Returns named metrics;
// it may set card.decoding (the instance decoding that scored best), which the exported model keeps.
using Validator = std::function<std::map<std::string, double>(models::SegmentationNetworkImpl& network,
                                                              models::ModelCard& card)>;
// Extra per-batch input for guided networks (e.g. cached SAM embeddings); undefined for others.
using GuidanceProvider = std::function<torch::Tensor(const data::Batch& batch)>;

struct TrainResult {
  int64_t steps = 0;
  int epochs_done = 0;
  double best_score = 0;
  int best_epoch = -1;
  std::string model_path;  // best.safetensors
};

class Trainer {
 public:
  // `train` must outlive the trainer. The run folder is created if missing.
  Trainer(TrainConfig config, const data::Dataset& train, std::string run_dir, Validator validate = {},
          GuidanceProvider guidance = {});
  // Trains to config.epochs, resuming from run_dir/last.ckpt when it exists. `stop_after_steps`
  // > 0 stops (after writing a checkpoint) once that many steps are done in total: tests use it
  // to interrupt a run.
  TrainResult run(int64_t stop_after_steps = 0);

  models::SegmentationNetwork network() const { return network_; }
  double learning_rate(int64_t step, int64_t steps_per_epoch) const;
  // The dataset indices of one epoch (crops_per_image repeats, RFS, shuffled; seeded by epoch).
  std::vector<size_t> epoch_order(int epoch) const;

 private:
  void save_checkpoint(int epoch, int64_t batch_in_epoch, int64_t step, double best, int best_epoch);
  bool load_checkpoint(int& epoch, int64_t& batch_in_epoch, int64_t& step, double& best, int& best_epoch);

  TrainConfig config_;
  const data::Dataset& train_;
  std::string run_dir_;
  Validator validate_;
  GuidanceProvider guidance_;
  models::SegmentationNetwork network_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<double> repeat_;
};

}  // namespace nucleisam::train
