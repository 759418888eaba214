// The training loop, checkpoints and resume (see trainer.h).
#include "nucleisam/train/trainer.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/data/loader.h"
#include "nucleisam/data/sampler.h"
#include "nucleisam/errors.h"
#include "nucleisam/log.h"
#include "nucleisam/models/autocast.h"
#include "nucleisam/progress.h"
#include "nucleisam/weights/state_dict.h"

namespace nucleisam::train {
namespace fs = std::filesystem;
namespace {

const char* kLogHeader =
    "kind,epoch,step,lr,loss,loss_three_class,loss_distance,loss_classes,val_dice,val_iou,val_aji,val_pq,"
    "val_score,seconds";

std::string format_value(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

double metric_or_nan(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::nan("") : it->second;
}

// Rewrites the log to what the checkpoint it resumes from had seen: the rows of the steps up to
// `step` and of the epochs that had ended (`epochs_done`). What came after is written again by the
// resumed run. Both rules are needed: an epoch's row is written after the checkpoint of its last
// step and before the checkpoint that ends the epoch, so a kill between the two leaves a row whose
// step is the checkpoint's but whose epoch the resumed run ends (and logs) again. A last line
// without its newline is a torn write (a kill inside a write) and goes too, whatever it parses as.
void truncate_log(const std::string& path, int epochs_done, int64_t step) {
  const auto number = [](const std::string& t, long long& v) {  // the whole text, a decimal integer
    const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    return !t.empty() && r.ec == std::errc() && r.ptr == t.data() + t.size();
  };
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  const std::string text = read_file(path);
  std::string kept;
  size_t begin = 0;
  bool header = true;
  for (size_t end = text.find('\n'); end != std::string::npos; begin = end + 1, end = text.find('\n', begin)) {
    const std::string line = text.substr(begin, end - begin);
    if (header) {
      header = false;
      kept += line + '\n';
      continue;
    }
    std::stringstream s(line);
    std::string kind, epoch_text, step_text;
    std::getline(s, kind, ',');
    std::getline(s, epoch_text, ',');
    std::getline(s, step_text, ',');
    long long row_epoch = 0, row_step = 0;
    if (!number(epoch_text, row_epoch) || !number(step_text, row_step) || row_step > step) continue;
    if (kind == "step" || (kind == "epoch" && row_epoch <= epochs_done)) kept += line + '\n';
  }
  write_file_atomic(path, kept);
}

}  // namespace

size_t initialise_from(models::SegmentationNetworkImpl& network, const std::string& path,
                       std::vector<std::string>* kept_random) {
  const weights::StateDict state = weights::read_checkpoint(path);
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : state.entries) by_name[name] = &tensor;
  size_t copied = 0;
  int64_t weights_total = 0, weights_copied = 0;
  torch::NoGradGuard no_grad;
  auto visit = [&](const std::string& name, torch::Tensor& target, bool parameter) {
    if (parameter) weights_total += target.numel();
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second->sizes() != target.sizes() ||
        it->second->is_floating_point() != target.is_floating_point()) {
      if (kept_random) kept_random->push_back(name);
      return;
    }
    target.copy_(*it->second);
    ++copied;
    if (parameter) weights_copied += target.numel();
  };
  for (auto& item : network.named_parameters()) visit(item.key(), item.value(), true);
  for (auto& item : network.named_buffers()) visit(item.key(), item.value(), false);
  // A new head on a trained backbone matches almost everything; another architecture or width
  // matches at most a few biases by chance.
  if (weights_copied * 2 < weights_total)
    throw CheckpointError(path + ": matches only " + std::to_string(weights_copied) + " of the " +
                          std::to_string(weights_total) +
                          " weights (by name and shape) of the network being trained; is it another architecture "
                          "or width?");
  return copied;
}

Trainer::Trainer(TrainConfig config, const data::Dataset& train, std::string run_dir, Validator validate,
                 GuidanceProvider guidance, DataParallel parallel)
    : config_(std::move(config)),
      train_(train),
      run_dir_(std::move(run_dir)),
      validate_(std::move(validate)),
      guidance_(std::move(guidance)),
      parallel_(std::move(parallel)) {
  if (config_.epochs <= 0) throw ModelError("training: epochs must be positive");
  if (config_.batch_size <= 0) throw ModelError("training: batch_size must be positive");
  if (config_.micro_batches <= 0) throw ModelError("training: micro_batches must be positive");
  const int shards = parallel_.world_size() * config_.micro_batches;
  if (config_.batch_size % shards != 0)
    throw ModelError("training: batch_size " + std::to_string(config_.batch_size) + " is not a multiple of " +
                     std::to_string(parallel_.world_size()) + " processes x " + std::to_string(config_.micro_batches) +
                     " micro-batches");
  if (config_.crops_per_image <= 0) throw ModelError("training: crops_per_image must be positive");
  if (config_.precision != "fp32" && config_.precision != "bf16")
    throw ModelError("training: precision must be fp32 or bf16 (got '" + config_.precision + "')");
  if (train_.size() == 0) throw DataError("training: the training set is empty");
  torch::manual_seed(config_.seed);  // the initial weights are a function of the seed alone
  network_ = models::build_network(config_.card);
  if (config_.initialise) config_.initialise(*network_);
  if (!config_.init_from.empty() && !fs::exists(run_dir_ + "/last.ckpt")) {  // a resumed run has its own
    std::vector<std::string> kept;
    const size_t copied = initialise_from(*network_, config_.init_from, &kept);
    std::string listed;
    for (size_t i = 0; i < kept.size() && i < 6; ++i) listed += (i ? ", " : "") + kept[i];
    if (kept.size() > 6) listed += ", ...";
    log::info("train: initialised ", copied, " tensors from ", config_.init_from,
              kept.empty() ? std::string() : "; " + std::to_string(kept.size()) + " kept random (" + listed + ")");
  }
  if (config_.augment.crop_size <= 0 || config_.augment.crop_size % network_->input_multiple() != 0)
    throw ModelError("training: crop size " + std::to_string(config_.augment.crop_size) + " must be a multiple of " +
                     std::to_string(network_->input_multiple()) + " for " + config_.card.arch);
  if (parallel_.group) {  // every rank starts from rank 0's weights
    std::vector<torch::Tensor> state;
    for (auto& p : network_->parameters()) state.push_back(p.data());
    for (auto& b : network_->buffers()) state.push_back(b);
    parallel_.group->broadcast(state, 0);
  }
  if (config_.channels_last)
    for (auto& p : network_->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  std::vector<torch::Tensor> trainable;
  for (auto& p : network_->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  optimizer_ = std::make_unique<torch::optim::Adam>(
      trainable, torch::optim::AdamOptions(config_.lr).weight_decay(config_.weight_decay));

  repeat_.assign(train_.size(), static_cast<double>(config_.crops_per_image));
  if (config_.rfs_threshold > 0) {
    std::vector<std::vector<int>> classes(train_.size());
    for (size_t i = 0; i < train_.size(); ++i) {
      data::Sample s = train_.get(i);
      classes[i] = s.classes;
    }
    std::vector<double> f = data::repeat_factors(classes, config_.rfs_threshold);
    for (size_t i = 0; i < f.size(); ++i) repeat_[i] *= f[i];
  }
  if (parallel_.rank() == 0) fs::create_directories(run_dir_);
}

std::vector<size_t> Trainer::epoch_order(int epoch) const {
  return data::repeat_factor_epoch(repeat_, config_.seed, static_cast<uint64_t>(epoch), true);
}

double Trainer::learning_rate(int64_t step, int64_t steps_per_epoch) const {
  const ScheduleConfig& s = config_.schedule;
  const double base = config_.lr;
  if (step < s.warmup_steps) return base * (0.01 + 0.99 * double(step) / double(s.warmup_steps));
  if (s.kind == "constant") return base;
  if (s.kind == "step") {
    const int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
    double lr = base;
    for (int e : s.step_epochs)
      if (epoch >= e) lr *= s.step_gamma;
    return lr;
  }
  // cosine from the end of the warm-up to the last step
  const double total = double(std::max<int64_t>(1, steps_per_epoch * config_.epochs - s.warmup_steps));
  const double t = std::min(1.0, double(step - s.warmup_steps) / total);
  return base * (s.final_ratio + (1 - s.final_ratio) * 0.5 * (1 + std::cos(M_PI * t)));
}

void Trainer::save_checkpoint(int epoch, int64_t batch_in_epoch, int64_t step, double best, int best_epoch,
                              const std::array<double, 5>& epoch_losses) {
  torch::serialize::OutputArchive archive, model, optimizer;
  network_->save(model);
  optimizer_->save(optimizer);
  archive.write("model", model);
  archive.write("optimizer", optimizer);
  archive.write("epoch", torch::tensor(static_cast<int64_t>(epoch)));
  archive.write("batch_in_epoch", torch::tensor(batch_in_epoch));
  archive.write("step", torch::tensor(step));
  archive.write("best", torch::tensor(best, torch::kFloat64));
  archive.write("best_epoch", torch::tensor(static_cast<int64_t>(best_epoch)));
  archive.write("epoch_losses",
                torch::tensor(std::vector<double>(epoch_losses.begin(), epoch_losses.end()), torch::kFloat64));
  // Through a stream, not save_to(path): the archive would be named after the temporary file
  // (".last.ckpt.tmp-<host>-<pid>-<n>/..."), so a resumed run's checkpoint would differ from an
  // uninterrupted run's in those bytes. A stream archive is always named "archive".
  AtomicFile file(run_dir_ + "/last.ckpt");
  {
    std::ofstream out(file.temp_path(), std::ios::binary);
    archive.save_to(out);
    out.close();
    if (!out) throw IoError(file.target() + ": cannot write (" + std::strerror(errno) + ")");
  }
  file.commit();
}

bool Trainer::load_checkpoint(int& epoch, int64_t& batch_in_epoch, int64_t& step, double& best, int& best_epoch,
                              std::array<double, 5>& epoch_losses) {
  const std::string path = run_dir_ + "/last.ckpt";
  if (!fs::exists(path)) return false;
  try {
    torch::serialize::InputArchive archive, model, optimizer;
    archive.load_from(path);
    archive.read("model", model);
    network_->load(model);
    archive.read("optimizer", optimizer);
    optimizer_->load(optimizer);
    // Each value into a fresh tensor: reading into a defined tensor keeps that tensor's dtype, so the
    // float64 `best` read into the int64 left by `step` came back as its bit pattern (4.6e18), and
    // no later epoch of a resumed run could beat it.
    auto read = [&archive](const char* key) {
      torch::Tensor t;
      archive.read(key, t);
      return t;
    };
    epoch = static_cast<int>(read("epoch").item<int64_t>());
    batch_in_epoch = read("batch_in_epoch").item<int64_t>();
    step = read("step").item<int64_t>();
    best = read("best").item<double>();
    best_epoch = static_cast<int>(read("best_epoch").item<int64_t>());
    epoch_losses.fill(0);
    torch::Tensor losses;  // a fresh tensor: try_read into a defined one reuses its dtype
    if (archive.try_read("epoch_losses", losses) && losses.numel() == 5) {  // absent before issue 13
      losses = losses.to(torch::kFloat64).contiguous();
      std::copy(losses.data_ptr<double>(), losses.data_ptr<double>() + 5, epoch_losses.begin());
    }
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw CheckpointError(path + ": cannot resume from this checkpoint (" + what.substr(0, what.find('\n')) +
                          "); it was written by another configuration or is damaged");
  }
  return true;
}

TrainResult Trainer::run(int64_t stop_after_steps) {
  int start_epoch = 0;
  int64_t start_batch = 0, step = 0;
  double best = -std::numeric_limits<double>::infinity();
  int best_epoch = -1;
  const bool writer = parallel_.rank() == 0;  // only rank 0 writes the run folder
  const std::string log_path = run_dir_ + "/log.csv";
  std::array<double, 5> resumed_losses{};
  if (writer) remove_stale_temporaries(run_dir_);  // an earlier process killed mid-write leaves them
  if (load_checkpoint(start_epoch, start_batch, step, best, best_epoch, resumed_losses)) {
    if (writer) {
      log::info("train: resuming ", run_dir_, " at epoch ", start_epoch + 1, ", step ", step);
      truncate_log(log_path, start_epoch, step);
    }
  } else if (writer) {
    write_file_atomic(log_path, std::string(kLogHeader) + "\n");
  }
  std::ofstream log_file;
  if (writer) {
    log_file.open(log_path, std::ios::app);
    if (!log_file) throw IoError(log_path + ": cannot open the training log for writing");
  }

  const bool bf16 = config_.precision == "bf16";
  double total_repeat = 0;
  for (double r : repeat_) total_repeat += r;
  const int64_t steps_per_epoch = std::max<int64_t>(1, static_cast<int64_t>(total_repeat) / config_.batch_size);
  const auto mean = torch::tensor(std::vector<float>(config_.card.mean.begin(), config_.card.mean.end()))
                        .view({1, 3, 1, 1}) * 255.0f;
  const auto stdv = torch::tensor(std::vector<float>(config_.card.std.begin(), config_.card.std.end()))
                        .view({1, 3, 1, 1}) * 255.0f;
  const auto started = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  // A global batch is world_size * micro_batches shards; this rank runs shards
  // rank * micro_batches ... + micro_batches - 1 of each.
  const int world = parallel_.world_size();
  const int micro = config_.micro_batches;
  const int64_t shards = static_cast<int64_t>(world) * micro;
  const int64_t shard_size = config_.batch_size / shards;
  std::vector<torch::Tensor> trainable;
  for (auto& p : network_->parameters())
    if (p.requires_grad()) trainable.push_back(p);

  std::unique_ptr<Progress> progress;
  if (writer) {
    progress = std::make_unique<Progress>("train", steps_per_epoch * config_.epochs, "step");
    progress->set(step);
  }
  TrainResult result;
  for (int epoch = start_epoch; epoch < config_.epochs; ++epoch) {
    const std::vector<size_t> order = epoch_order(epoch);
    // This rank's share of the epoch's full global batches, with each sample's epoch position.
    const int64_t batches = static_cast<int64_t>(order.size()) / config_.batch_size;  // full batches only
    std::vector<size_t> mine, positions;
    for (int64_t b = 0; b < batches; ++b)
      for (int64_t k = 0; k < shard_size * micro; ++k) {
        const size_t position = static_cast<size_t>(b * config_.batch_size + parallel_.rank() * shard_size * micro + k);
        mine.push_back(order.at(position));
        positions.push_back(position);
      }
    data::LoaderConfig lc;
    lc.batch_size = static_cast<size_t>(shard_size);
    lc.threads = config_.loader_threads;
    lc.prefetch = 2 * static_cast<size_t>(micro);
    lc.seed = config_.seed;
    lc.epoch = static_cast<uint64_t>(epoch);
    lc.drop_last = true;
    lc.augment = true;
    lc.augmentation = config_.augment;
    lc.positions = positions;
    data::DataLoader loader(train_, mine, lc);
    data::Batch batch;
    const int64_t first_batch = epoch == start_epoch ? start_batch : 0;
    for (int64_t b = 0; b < first_batch * micro && loader.next(batch); ++b) {
    }
    network_->train();
    double sums[4] = {0, 0, 0, 0};
    int64_t counted = 0;
    if (epoch == start_epoch && start_batch > 0) {  // resumed mid-epoch: the batches before it count too
      std::copy(resumed_losses.begin(), resumed_losses.begin() + 4, sums);
      counted = static_cast<int64_t>(resumed_losses[4]);
    }
    double communication = 0;  // seconds in collectives this epoch
    const double epoch_started = seconds();
    for (int64_t b = first_batch; b < batches; ++b) {
      const double lr = learning_rate(step, steps_per_epoch);
      for (auto& group : optimizer_->param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      optimizer_->zero_grad();
      // Loss terms summed over this rank's shards (each shard's share of the global mean).
      torch::Tensor terms_sum = torch::zeros({4}, torch::kFloat64);
      for (int m = 0; m < micro; ++m) {
        if (!loader.next(batch)) throw DataError("training: the data loader ended early in epoch " + std::to_string(epoch + 1));
        const int64_t shard = static_cast<int64_t>(parallel_.rank()) * micro + m;
        // Random draws of the forward pass (dropout) depend on the step and the shard only.
        torch::manual_seed(data::mix_seed(config_.seed, static_cast<uint64_t>(step), 0x5eedULL + static_cast<uint64_t>(shard)));
        torch::Tensor images =
            (torch::from_blob(batch.images.data(), batch.image_shape(), torch::kFloat32) - mean) / stdv;
        if (config_.channels_last) images = images.contiguous(torch::MemoryFormat::ChannelsLast);
        BatchTargets targets = targets_from_batch(batch, config_.card.heads);
        torch::Tensor guidance;
        if (network_->needs_guidance()) {
          if (!guidance_) throw ModelError(config_.card.arch + " needs SAM guidance, but none was configured");
          guidance = guidance_(batch);
        }
        torch::Tensor logits;
        {
          models::Bf16AutocastScope autocast(bf16);
          logits = network_->forward(images, guidance);
        }
        ObjectiveTerms terms = objective(logits, targets, config_.card.heads, config_.loss);
        (terms.total / static_cast<double>(shards)).backward();
        terms_sum[0] += terms.total.item<double>();
        terms_sum[1] += terms.three_class.item<double>();
        if (terms.distance.defined()) terms_sum[2] += terms.distance.item<double>();
        if (terms.classes.defined()) terms_sum[3] += terms.classes.item<double>();
      }
      if (parallel_.group) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<torch::Tensor> grads;
        for (auto& p : trainable)
          if (p.grad().defined()) grads.push_back(p.grad());
        grads.push_back(terms_sum);
        parallel_.group->all_reduce_sum(grads);
        communication += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      terms_sum /= static_cast<double>(shards);
      const double loss = terms_sum[0].item<double>();
      if (!std::isfinite(loss))
        throw ModelError("training diverged: the loss is " + std::to_string(loss) + " at step " +
                         std::to_string(step) + " (lower the learning rate, or use fp32)");
      optimizer_->step();
      if (parallel_.group) {  // batch-norm statistics: every rank keeps rank 0's, like PyTorch's DDP
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<torch::Tensor> buffers;
        for (auto& t : network_->buffers()) buffers.push_back(t);
        parallel_.group->broadcast(buffers, 0);
        communication += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      ++step;
      const double loss_three_class = terms_sum[1].item<double>();
      const double loss_distance = config_.card.heads.distance ? terms_sum[2].item<double>() : std::nan("");
      const double loss_classes = config_.card.heads.num_classes > 0 ? terms_sum[3].item<double>() : std::nan("");
      sums[0] += loss;
      sums[1] += loss_three_class;
      if (config_.card.heads.distance) sums[2] += loss_distance;
      if (config_.card.heads.num_classes > 0) sums[3] += loss_classes;
      ++counted;
      if (progress) progress->advance();
      if (writer && config_.log_every > 0 && step % config_.log_every == 0) {
        log_file << "step," << epoch + 1 << ',' << step << ',' << format_value(lr) << ',' << format_value(loss) << ','
                 << format_value(loss_three_class) << ',' << format_value(loss_distance) << ','
                 << format_value(loss_classes) << ",,,,,," << format_value(seconds()) << '\n';
        log_file.flush();
      }
      const bool stop = stop_after_steps > 0 && step >= stop_after_steps;
      if (writer && (stop || (config_.checkpoint_every > 0 && step % config_.checkpoint_every == 0)))
        save_checkpoint(epoch, b + 1, step, best, best_epoch,
                        {sums[0], sums[1], sums[2], sums[3], static_cast<double>(counted)});
      if (stop) {
        result.steps = step;
        result.epochs_done = epoch;
        result.best_score = best;
        result.best_epoch = best_epoch;
        return result;
      }
    }
    if (parallel_.group && counted > 0) {
      const double spent = seconds() - epoch_started;
      log::info("train: epoch ", epoch + 1, ": ", counted * config_.batch_size / std::max(spent, 1e-9),
                " samples/s over ", parallel_.world_size(), " processes; gradient all-reduce and buffer broadcast ",
                format_value(communication), " s of ", format_value(spent), " s (",
                format_value(100 * communication / std::max(spent, 1e-9)), "%)");
    }
    if (!writer) continue;  // validation, export and checkpoints are rank 0's

    // End of the epoch: validate, export the best model, checkpoint.
    std::map<std::string, double> metrics;
    models::ModelCard card = config_.card;  // the validator may record the decoding it chose
    const bool last = epoch + 1 == config_.epochs;
    const bool validate = validate_ && config_.validate_every > 0 &&
                          ((epoch + 1) % config_.validate_every == 0 || last);
    if (validate) {
      network_->eval();
      torch::NoGradGuard no_grad;
      metrics = validate_(*network_, card);
      network_->train();
    }
    double score = std::nan("");
    if (validate) {
      auto it = metrics.find(config_.best_metric);
      if (it == metrics.end()) throw ModelError("validation has no metric '" + config_.best_metric + "'");
      score = it->second;
    }
    const bool improved = validate ? (!std::isnan(score) && score > best) : !validate_ || config_.validate_every == 0;
    if (improved) {
      if (validate) {
        best = score;
        best_epoch = epoch + 1;
      }
      card.info["epoch"] = std::to_string(epoch + 1);
      card.info["step"] = std::to_string(step);
      for (const auto& [k, v] : metrics) card.info["validation." + k] = format_value(v);
      models::save_model(run_dir_ + "/best.safetensors", *network_, card);
    }
    if (validate)
      log::info("train: epoch ", epoch + 1, "/", config_.epochs, " loss ",
                format_value(counted ? sums[0] / counted : std::nan("")), " val ", config_.best_metric, " ",
                format_value(score), improved ? " (best)" : "");
    log_file << "epoch," << epoch + 1 << ',' << step << ',' << format_value(learning_rate(step, steps_per_epoch)) << ','
             << format_value(counted ? sums[0] / counted : std::nan("")) << ','
             << format_value(counted ? sums[1] / counted : std::nan("")) << ','
             << (config_.card.heads.distance && counted ? format_value(sums[2] / counted) : "") << ','
             << (config_.card.heads.num_classes > 0 && counted ? format_value(sums[3] / counted) : "") << ','
             << format_value(metric_or_nan(metrics, "dice")) << ',' << format_value(metric_or_nan(metrics, "iou"))
             << ',' << format_value(metric_or_nan(metrics, "aji")) << ','
             << format_value(metric_or_nan(metrics, "pq")) << ',' << format_value(score) << ','
             << format_value(seconds()) << '\n';
    log_file.flush();
    save_checkpoint(epoch + 1, 0, step, best, best_epoch, {});
  }
  if (progress) progress->finish();
  result.steps = step;
  result.epochs_done = config_.epochs;
  result.best_score = best;
  result.best_epoch = best_epoch;
  result.model_path = run_dir_ + "/best.safetensors";
  return result;
}

}  // namespace nucleisam::train
