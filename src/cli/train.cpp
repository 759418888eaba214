// `nucleisam train`: trains a segmentation network from a JSON recipe (configs/*.json) into a run
// folder, or resumes one. The recipe is resolved (defaults filled in, paths made absolute) and
// written to <run>/config.json, which is what --resume reads. See docs/training.md.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/recipe.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/log.h"
#include "nucleisam/metrics/evaluation.h"
#include "nucleisam/models/category_sam.h"
#include "nucleisam/predict/category_sam_segmenter.h"
#include "nucleisam/predict/decoding_search.h"
#include "nucleisam/predict/model_segmenter.h"
#include "nucleisam/predict/sam_guidance.h"
#include "nucleisam/train/dataset_split.h"
#include "nucleisam/train/distributed.h"
#include "nucleisam/train/trainer.h"
#include "nucleisam/weights/state_dict.h"
#include "nucleisam/weights/tensor_memory.h"

namespace nucleisam::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct TrainArgs {
  std::string config, out, resume;
  bool distributed = false;
  double distributed_timeout = 1800;
};

// A recipe's dataset, resampled to the model's resolution (`model_mpp`) when it gives its own.
std::shared_ptr<const data::Dataset> open_spec(const DataSpec& d, double model_mpp) {
  std::shared_ptr<const data::Dataset> ds = data::open_dataset(d.path, d.format);
  if (!d.include.empty() || !d.exclude.empty())
    ds = std::make_shared<train::SubsetDataset>(ds, d.include, d.exclude, d.path);
  if (d.mpp > 0 && model_mpp > 0) {
    auto resampled = std::make_shared<train::ResampledDataset>(ds, d.mpp / model_mpp);
    if (resampled->factor() != 1) {
      log::info("train: ", d.path, " at ", d.mpp, " um/px is resampled x", resampled->factor(), " to the model's ",
                model_mpp, " um/px");
      ds = resampled;
    }
  }
  if (!d.keep_classes) ds = std::make_shared<train::ClassAgnosticDataset>(ds);
  if (d.repeat > 1) ds = std::make_shared<train::RepeatedDataset>(ds, d.repeat);
  return ds;
}

// The scores a validation reports, any of which `train.best_metric` can name.
std::map<std::string, double> validation_scores(const metrics::EvaluationSummary& s, bool classes) {
  std::map<std::string, double> out{{"dice", s.dice.mean},
                                    {"iou", s.iou.mean},
                                    {"aji", s.aji.mean},
                                    {"pq", s.pq.mean},
                                    {"f1_d", s.centroid.f1()}};
  if (classes) {
    out["mpq_plus"] = s.mpq_plus;
    out["mean_f1"] = s.mean_f1;
    out["f1_c"] = metrics::mean_f1_c(s);
  }
  return out;
}

train::Validator make_validator(std::shared_ptr<const data::Dataset> validation, const std::string& precision,
                                predict::WindowGuidance guidance) {
  // Samples are loaded once and kept: validation runs every epoch.
  auto samples = std::make_shared<std::vector<data::Sample>>();
  for (size_t i = 0; i < validation->size(); ++i) samples->push_back(validation->get(i));
  return [samples, precision, guidance](models::SegmentationNetworkImpl& network, models::ModelCard& card) {
    models::SegmentationNetwork view(&network, [](models::SegmentationNetworkImpl*) {});
    predict::ModelSegmenterOptions o;
    o.precision = precision;
    o.guidance = guidance;
    predict::ModelSegmenter segmenter(view, card, o);
    const auto candidates = predict::validation_candidates(card.heads);
    const predict::DecodingComparison cmp = predict::compare_decodings(segmenter, *samples, candidates);
    std::map<std::string, double> out =
        validation_scores(cmp.summaries[cmp.best], card.heads.num_classes > 0);
    for (size_t k = 0; k < candidates.size(); ++k)
      out["aji." + candidates[k].label] = cmp.summaries[k].aji.mean;
    card.decoding = infer::decoding_to_map(candidates[cmp.best].options);
    card.info["decoding_chosen_on"] = "validation AJI";
    return out;
  };
}

// Category-descriptor SAM: the method's own sliding window and decoding on the validation images.
train::Validator make_category_validator(std::shared_ptr<const data::Dataset> validation, const std::string& precision) {
  auto samples = std::make_shared<std::vector<data::Sample>>();
  for (size_t i = 0; i < validation->size(); ++i) samples->push_back(validation->get(i));
  return [samples, precision](models::SegmentationNetworkImpl& network, models::ModelCard& card) {
    models::SegmentationNetwork view(&network, [](models::SegmentationNetworkImpl*) {});
    predict::CategorySamSegmenterOptions o;
    o.precision = precision;
    predict::CategorySamSegmenter segmenter(view, card, o);
    metrics::EvaluationOptions eo;
    eo.num_classes = card.heads.num_classes;
    metrics::Evaluation evaluation(eo);
    for (const data::Sample& s : *samples) {
      infer::Segmentation seg = segmenter.segment(s.image, s.name);
      std::vector<double> scores(seg.scores.begin(), seg.scores.end());
      const bool classes = eo.num_classes > 0;
      evaluation.add_image(s.name, {&s.instances, classes ? &s.classes : nullptr, nullptr},
                           {&seg.instances, classes ? &seg.classes : nullptr, &scores});
    }
    return validation_scores(evaluation.summary(), card.heads.num_classes > 0);
  };
}

// Method 2: the SAM checkpoint initialises the network (its encoder options filled in from it
// when the recipe names none); without one, SAM starts from random weights.
void setup_category_sam(Recipe& r) {
  models::ModelCard& card = r.config.card;
  if (r.sam_input_size != 1024)
    log::warn("train: \"sam\": {\"input_size\"} is not used by category-sam; its model option input_size is");
  const std::string trainable = card.options.count("trainable") ? card.options.at("trainable") : "adapters";
  if (r.sam_checkpoint.empty()) {
    if (trainable != "all")
      log::warn("train: category-sam without a SAM checkpoint: SAM starts from random weights and stays frozen "
                "(trainable = ", trainable, "); use \"trainable\": \"all\" to train it from scratch");
    card.info["sam.checkpoint"] = "none (random initialisation)";
    return;
  }
  auto state = std::make_shared<weights::StateDict>(weights::read_checkpoint(r.sam_checkpoint));
  if (!card.options.count("encoder"))
    for (const auto& [k, v] : models::category_sam_encoder_options(*state, r.sam_checkpoint)) card.options[k] = v;
  const std::string checkpoint = r.sam_checkpoint;
  r.config.initialise = [state, checkpoint](models::SegmentationNetworkImpl& network) {
    dynamic_cast<models::CategorySamImpl&>(network).load_sam_weights(*state, checkpoint);
  };
  card.info["sam.checkpoint"] = fs::path(r.sam_checkpoint).filename().string();
  card.info["sam.encoder"] = card.options.at("encoder");
  log::info("train: category-sam initialised from ", r.sam_checkpoint, " (", card.options.at("encoder"), ")");
}

int run_training(const std::string& run_dir, const json& recipe_json, const std::string& recipe_source,
                 const fs::path& base, bool resume, const TrainArgs& args) {
  Recipe r = parse_recipe(recipe_json, recipe_source, base);
  // Every step allocates the activations of the step before: keep their freed blocks mapped.
  const std::size_t kept = keep_freed_large_blocks_for_training();
  log::debug("train: freed tensor blocks of 32 MiB or more kept for reuse up to ", kept >> 20, " MB");
  train::DataParallel parallel;
  if (args.distributed) {
    const train::DistributedSetup setup = train::distributed_setup_from_environment();
    if (setup.rank != 0) log::set_level(global_options().quiet ? log::Level::quiet : log::Level::warn);
    log::info("train: rank ", setup.rank, " of ", setup.world_size, " (", setup.source, "), rendezvous at ",
              setup.master_addr, ":", setup.master_port);
    parallel.group = std::make_shared<train::ProcessGroup>(
        setup, std::chrono::milliseconds(static_cast<int64_t>(args.distributed_timeout * 1000)));
  }
  const bool writer = parallel.rank() == 0;
  if (resume && r.threads > 0 && global_options().threads > 0 && global_options().threads != r.threads)
    log::warn("train: the run used --threads ", r.threads, "; resuming with ", global_options().threads,
              " gives the same model only up to floating-point rounding");
  if (r.threads > 0 && global_options().threads == 0) torch::set_num_threads(r.threads);
  if (!resume && writer) {
    r.resolved["threads"] = global_options().threads > 0 ? global_options().threads : torch::get_num_threads();
    fs::create_directories(run_dir);
    write_file_atomic(run_dir + "/config.json", r.resolved.dump(2) + "\n");
  }

  std::vector<std::shared_ptr<const data::Dataset>> parts;
  for (const auto& d : r.train_data) parts.push_back(open_spec(d, r.config.card.mpp));
  std::shared_ptr<const data::Dataset> train_set =
      parts.size() == 1 ? parts.front() : std::make_shared<train::ConcatDataset>(parts);
  models::ModelCard& card = r.config.card;
  if (r.classes) {
    const data::ClassNames& names = train_set->class_names();
    if (names.size() < 2) throw UsageError(recipe_source + ": model 'classes' is true but the training data has no classes");
    card.heads.num_classes = static_cast<int>(names.size()) - 1;
    card.class_names = names;
    // Unclassed sets train a classifying network's segmentation heads; a category-descriptor
    // network has no such heads apart from its types.
    for (size_t i = 0; card.heads.categories && i < parts.size(); ++i)
      if (parts[i]->class_names().empty())
        throw UsageError(recipe_source + ": data train[" + std::to_string(i) + "] (" + r.train_data[i].path +
                         ") has no classes; a category-sam model with classes trains only on classified data");
  }
  card.info["trained_on"] = [&] {
    std::string s;
    for (const auto& d : r.train_data) s += (s.empty() ? "" : "; ") + d.path;
    return s;
  }();
  card.info["train_samples"] = std::to_string(train_set->size());
  if (!r.config.init_from.empty()) card.info["initialised_from"] = fs::path(r.config.init_from).filename().string();
  card.info["precision"] = r.config.precision;
  if (writer) {  // the card's stain range, for segment --stain-normalize range
    card.stain_range = data::dataset_stain_range(*train_set);
    if (card.stain_range)
      log::info("train: stain amounts of the training images: haematoxylin ", card.stain_range->low[0], "-",
                card.stain_range->high[0], ", eosin ", card.stain_range->low[1], "-", card.stain_range->high[1]);
    else
      log::warn("train: no training image has two stains to measure; the model's card keeps no stain range");
  }

  // SAM guidance: one frozen encoder shared by training batches and validation windows.
  predict::WindowGuidance window_guidance;
  train::GuidanceProvider batch_guidance;
  if (card.heads.categories) {
    setup_category_sam(r);
  } else if (models::build_network(card)->needs_guidance()) {
    if (r.sam_checkpoint.empty())
      throw UsageError(recipe_source + ": " + card.arch + " needs \"sam\": {\"checkpoint\": ...} (a SAM checkpoint)");
    auto sam = std::make_shared<predict::SamGuidance>(r.sam_checkpoint, r.sam_input_size);
    log::info("train: SAM guidance from ", r.sam_checkpoint, " (", sam->model_type(), ", input ", r.sam_input_size, ")");
    card.info["sam.checkpoint"] = fs::path(r.sam_checkpoint).filename().string();
    card.info["sam.model_type"] = sam->model_type();
    card.info["sam.input_size"] = std::to_string(r.sam_input_size);
    window_guidance = [sam](const torch::Tensor& rgb) { return sam->embed(rgb); };
    batch_guidance = [sam](const data::Batch& b) {
      return sam->embed(torch::from_blob(const_cast<float*>(b.images.data()), b.image_shape(), torch::kFloat32));
    };
  } else if (!r.sam_checkpoint.empty()) {
    log::warn("train: ", card.arch, " takes no SAM guidance; the \"sam\" entry is ignored");
  }

  train::Validator validator;
  if (r.validation && writer) {  // rank 0 validates; the others go on to the next epoch
    std::shared_ptr<const data::Dataset> val = open_spec(*r.validation, r.config.card.mpp);
    log::info("train: ", train_set->size(), " training images, ", val->size(), " validation images");
    validator = card.heads.categories ? make_category_validator(val, r.config.precision)
                                      : make_validator(val, r.config.precision, window_guidance);
  } else if (!r.validation) {
    log::info("train: ", train_set->size(), " training images, no validation (the last epoch is exported)");
  }
  log::info("train: ", card.arch, ", precision ", r.config.precision, " on ", cpu_features().summary(), ", ",
            torch::get_num_threads(), " threads");
  train::Trainer trainer(r.config, *train_set, run_dir, validator, batch_guidance, parallel);
  train::TrainResult result = trainer.run();
  log::info("train: done, ", result.steps, " steps; model in ", result.model_path,
            result.best_epoch > 0 ? " (best epoch " + std::to_string(result.best_epoch) + ")" : "");
  if (writer) std::cout << result.model_path << '\n';
  return 0;
}

CommandRegistration reg(
    "train", "Train a segmentation network from a JSON recipe (configs/*.json), or resume a run",
    [](CLI::App& app) {
      auto a = std::make_shared<TrainArgs>();
      app.add_option("-c,--config", a->config, "Training recipe (JSON); see configs/ and docs/training.md");
      app.add_option("-o,--out", a->out, "Run folder (checkpoints, log.csv, best.safetensors)");
      app.add_option("--resume", a->resume, "Run folder to continue (reads its config.json and last.ckpt)");
      app.add_flag("--distributed", a->distributed,
                   "Run as one process of several (data parallel, c10d/Gloo): reads RANK, WORLD_SIZE, MASTER_ADDR, "
                   "MASTER_PORT (or Slurm's SLURM_PROCID, SLURM_NTASKS); see docs/training.md");
      app.add_option("--distributed-timeout", a->distributed_timeout,
                     "Seconds to wait for the other processes (rendezvous, each collective) before stopping with an error")
          ->check(CLI::PositiveNumber);
      return [a]() {
        if (!a->resume.empty()) {
          if (!a->config.empty() || !a->out.empty())
            throw UsageError("train: --resume takes the run folder alone (its config.json is the recipe)");
          const std::string cfg = a->resume + "/config.json";
          if (!fs::exists(cfg)) throw UsageError(a->resume + ": not a training run folder (no config.json)");
          return run_training(a->resume, read_json_file(cfg), cfg, fs::current_path(), true, *a);
        }
        if (a->config.empty() || a->out.empty())
          throw UsageError("train: give --config and --out, or --resume <run folder>");
        if (fs::exists(a->out + "/last.ckpt"))
          throw UsageError(a->out + ": holds a training run already; continue it with --resume " + a->out +
                           " or choose another --out");
        return run_training(a->out, read_json_file(a->config), a->config, fs::current_path(), false, *a);
      };
    });

}  // namespace
}  // namespace nucleisam::cli
