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

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nucleisam/data/augment.h"
#include "nucleisam/data/dataset.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/train/distributed.h"
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
  int batch_size = 16;         // the global batch: over all processes and micro-batches
  // Each step runs the global batch as this many micro-batches per process, one after another,
  // summing their gradients (the memory of a smaller batch, the update of the whole one). With P
  // processes, batch_size must be a multiple of P * micro_batches; P processes with m
  // micro-batches each compute the update of one process with P * m micro-batches.
  int micro_batches = 1;
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
  // A model file (.safetensors from save_model, or a run's best.safetensors) whose weights start
  // the run instead of random ones (fine-tuning, transfer to new data). Every parameter and buffer
  // whose name and shape match is copied; the rest (e.g. a new class head) keeps its random
  // initialisation and is listed in the log. A file that matches less than half of the weights is
  // an error (another architecture or width).
  std::string init_from;
  // Called once on the freshly built network, before the optimizer takes its trainable
  // parameters and before a resume reloads last.ckpt (category-descriptor SAM: load the SAM
  // checkpoint). Empty: nothing.
  std::function<void(models::SegmentationNetworkImpl&)> initialise;
};

// Copies into `network` every tensor of `path` whose name and shape match; returns the number of
// tensors copied and fills `kept_random` with the names of the network's tensors left as they
// were. CheckpointError naming the file when it cannot be read or matches less than half of the
// network's weights (counted in elements).
size_t initialise_from(models::SegmentationNetworkImpl& network, const std::string& path,
                       std::vector<std::string>* kept_random = nullptr);

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
  // `train` must outlive the trainer. The run folder is created if missing. With `parallel`
  // holding a process group, this trainer is one rank of several: the initial weights come from
  // rank 0, each rank loads and runs its shards of every global batch, gradients are summed over
  // the ranks before each update, and only rank 0 validates and writes the run folder (which must
  // be on a file system every rank can read, for --resume). A run may resume with another number
  // of processes (the update is the same up to float rounding).
  Trainer(TrainConfig config, const data::Dataset& train, std::string run_dir, Validator validate = {},
          GuidanceProvider guidance = {}, DataParallel parallel = {});
  // Trains to config.epochs, resuming from run_dir/last.ckpt when it exists. `stop_after_steps`
  // > 0 stops (after writing a checkpoint) once that many steps are done in total: tests use it
  // to interrupt a run.
  TrainResult run(int64_t stop_after_steps = 0);

  models::SegmentationNetwork network() const { return network_; }
  double learning_rate(int64_t step, int64_t steps_per_epoch) const;
  // The dataset indices of one epoch (crops_per_image repeats, RFS, shuffled; seeded by epoch).
  std::vector<size_t> epoch_order(int epoch) const;

 private:
  // epoch_losses: the running loss sums of the current epoch and their count (sums[0..3], count),
  // so that a run resumed mid-epoch logs the same epoch averages as an uninterrupted one.
  void save_checkpoint(int epoch, int64_t batch_in_epoch, int64_t step, double best, int best_epoch,
                       const std::array<double, 5>& epoch_losses);
  bool load_checkpoint(int& epoch, int64_t& batch_in_epoch, int64_t& step, double& best, int& best_epoch,
                       std::array<double, 5>& epoch_losses);

  TrainConfig config_;
  const data::Dataset& train_;
  std::string run_dir_;
  Validator validate_;
  GuidanceProvider guidance_;
  DataParallel parallel_;
  models::SegmentationNetwork network_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<double> repeat_;
};

}  // namespace nucleisam::train
