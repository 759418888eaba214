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

namespace nucleisam::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct TrainArgs {
  std::string config, out, resume;
  bool distributed = false;
  double distributed_timeout = 1800;
};

// Reads `key` of object `j` into `value` when present, with a clear message for a wrong type.
template <typename T>
void read(const json& j, const char* key, T& value, const std::string& where) {
  if (!j.contains(key)) return;
  try {
    value = j.at(key).get<T>();
  } catch (const json::exception&) {
    throw UsageError(where + ": '" + key + "' has the wrong type (" + j.at(key).dump() + ")");
  }
}

void reject_unknown(const json& j, const std::set<std::string>& known, const std::string& where) {
  if (!j.is_object()) throw UsageError(where + " must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) throw UsageError(where + ": unknown key '" + it.key() + "'");
}

std::string scalar_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    std::ostringstream s;
    s.precision(9);
    s << v.get<double>();
    return s.str();
  }
  throw UsageError(where + " must be a string, number or boolean");
}

struct DataSpec {
  std::string path, format = "auto";
  std::vector<std::string> include, exclude;
  int repeat = 1;             // each sample this many times per epoch (weights datasets against each other)
  bool keep_classes = true;   // false: train class-agnostic on a classed dataset
};

DataSpec parse_data_spec(const json& j, const std::string& where, const fs::path& base) {
  reject_unknown(j, {"path", "format", "include", "exclude", "repeat", "classes"}, where);
  DataSpec d;
  read(j, "path", d.path, where);
  read(j, "format", d.format, where);
  read(j, "include", d.include, where);
  read(j, "exclude", d.exclude, where);
  read(j, "repeat", d.repeat, where);
  read(j, "classes", d.keep_classes, where);
  if (d.repeat < 1) throw UsageError(where + ": 'repeat' must be at least 1");
  if (d.path.empty()) throw UsageError(where + ": 'path' is required");
  fs::path p(d.path);
  if (p.is_relative()) p = base / p;
  d.path = fs::weakly_canonical(p).string();
  return d;
}

json data_spec_json(const DataSpec& d) {
  return {{"path", d.path},       {"format", d.format}, {"include", d.include},
          {"exclude", d.exclude}, {"repeat", d.repeat}, {"classes", d.keep_classes}};
}

std::shared_ptr<const data::Dataset> open_spec(const DataSpec& d) {
  std::shared_ptr<const data::Dataset> ds = data::open_dataset(d.path, d.format);
  if (!d.include.empty() || !d.exclude.empty())
    ds = std::make_shared<train::SubsetDataset>(ds, d.include, d.exclude, d.path);
  if (!d.keep_classes) ds = std::make_shared<train::ClassAgnosticDataset>(ds);
  if (d.repeat > 1) ds = std::make_shared<train::RepeatedDataset>(ds, d.repeat);
  return ds;
}

// Everything the command needs, parsed from a recipe (and written back, resolved).
struct Recipe {
  train::TrainConfig config;
  std::string sam_checkpoint;  // SAM-guided networks: the frozen encoder's checkpoint
  int sam_input_size = 1024;
  std::vector<DataSpec> train_data;
  std::optional<DataSpec> validation;
  bool classes = false;
  int threads = 0;
  std::string precision_asked = "auto";
  json resolved;
};

Recipe parse_recipe(const json& j, const std::string& where, const fs::path& base) {
  reject_unknown(j, {"name", "model", "data", "train", "loss", "inference", "threads", "sam"}, where);
  Recipe r;
  train::TrainConfig& c = r.config;
  models::ModelCard& card = c.card;
  read(j, "name", card.name, where);
  if (card.name.empty()) card.name = "model";
  read(j, "threads", r.threads, where);

  const json model = j.value("model", json::object());
  reject_unknown(model, {"arch", "options", "distance_head", "classes", "init_from"}, where + " model");
  read(model, "arch", card.arch, where + " model");
  if (card.arch.empty()) throw UsageError(where + ": model 'arch' is required (" + [] {
                                            std::string s;
                                            for (auto& a : models::network_architectures()) s += (s.empty() ? "" : ", ") + a;
                                            return s;
                                          }() + ")");
  if (model.contains("options")) {
    const json& o = model.at("options");
    if (!o.is_object()) throw UsageError(where + ": model 'options' must be an object");
    for (auto it = o.begin(); it != o.end(); ++it)
      card.options[it.key()] = scalar_text(it.value(), where + " model option '" + it.key() + "'");
  }
  read(model, "distance_head", card.heads.distance, where + " model");
  read(model, "classes", r.classes, where + " model");
  read(model, "init_from", c.init_from, where + " model");
  if (!c.init_from.empty()) {
    fs::path p(c.init_from);
    if (p.is_relative()) p = base / p;
    c.init_from = fs::weakly_canonical(p).string();
  }
  if (card.arch == "category-sam") {  // method 2: per-category maps, SAM's input normalisation
    card.heads.categories = true;
    card.heads.distance = false;
    card.mean = {0.485f, 0.456f, 0.406f};  // SAM's pixel_mean / 255
    card.std = {0.229f, 0.224f, 0.225f};   // SAM's pixel_std / 255
  }

  const json data = j.value("data", json::object());
  reject_unknown(data, {"train", "validation", "crop_size", "crops_per_image", "rfs_threshold", "mpp", "augment"},
                 where + " data");
  if (!data.contains("train") || !data.at("train").is_array() || data.at("train").empty())
    throw UsageError(where + ": data 'train' must be a non-empty list of datasets");
  for (size_t i = 0; i < data.at("train").size(); ++i)
    r.train_data.push_back(parse_data_spec(data.at("train")[i], where + " data train[" + std::to_string(i) + "]", base));
  if (data.contains("validation") && !data.at("validation").is_null())
    r.validation = parse_data_spec(data.at("validation"), where + " data validation", base);
  read(data, "crop_size", c.augment.crop_size, where + " data");
  read(data, "crops_per_image", c.crops_per_image, where + " data");
  read(data, "rfs_threshold", c.rfs_threshold, where + " data");
  read(data, "mpp", card.mpp, where + " data");
  const json aug = data.value("augment", json::object());
  reject_unknown(aug, {"flips", "rotate90", "rotate_probability", "max_rotation_degrees", "scale_probability",
                       "min_scale", "max_scale", "color_probability", "brightness", "contrast", "saturation", "hue",
                       "stain_probability", "stain_alpha", "stain_beta"},
                 where + " data augment");
  data::AugmentConfig& a = c.augment;
  read(aug, "flips", a.flips, where);
  read(aug, "rotate90", a.rotate90, where);
  read(aug, "rotate_probability", a.rotate_probability, where);
  read(aug, "max_rotation_degrees", a.max_rotation_degrees, where);
  read(aug, "scale_probability", a.scale_probability, where);
  read(aug, "min_scale", a.min_scale, where);
  read(aug, "max_scale", a.max_scale, where);
  read(aug, "color_probability", a.color_probability, where);
  read(aug, "brightness", a.color.brightness, where);
  read(aug, "contrast", a.color.contrast, where);
  read(aug, "saturation", a.color.saturation, where);
  read(aug, "hue", a.color.hue, where);
  read(aug, "stain_probability", a.stain_probability, where);
  read(aug, "stain_alpha", a.stain.alpha, where);
  read(aug, "stain_beta", a.stain.beta, where);

  const json t = j.value("train", json::object());
  reject_unknown(t, {"epochs", "batch_size", "lr", "weight_decay", "schedule", "warmup_steps", "final_lr_ratio",
                     "step_epochs", "step_gamma", "precision", "channels_last", "seed", "checkpoint_every", "micro_batches",
                     "log_every", "loader_threads", "validate_every", "best_metric"},
                 where + " train");
  read(t, "epochs", c.epochs, where);
  read(t, "batch_size", c.batch_size, where);
  read(t, "micro_batches", c.micro_batches, where);
  read(t, "lr", c.lr, where);
  read(t, "weight_decay", c.weight_decay, where);
  read(t, "schedule", c.schedule.kind, where);
  if (c.schedule.kind != "constant" && c.schedule.kind != "cosine" && c.schedule.kind != "step")
    throw UsageError(where + ": train 'schedule' must be constant, cosine or step");
  read(t, "warmup_steps", c.schedule.warmup_steps, where);
  read(t, "final_lr_ratio", c.schedule.final_ratio, where);
  read(t, "step_epochs", c.schedule.step_epochs, where);
  read(t, "step_gamma", c.schedule.step_gamma, where);
  read(t, "precision", r.precision_asked, where);
  c.precision = resolve_precision(r.precision_asked);
  read(t, "channels_last", c.channels_last, where);
  read(t, "seed", c.seed, where);
  read(t, "checkpoint_every", c.checkpoint_every, where);
  read(t, "log_every", c.log_every, where);
  read(t, "loader_threads", c.loader_threads, where);
  read(t, "validate_every", c.validate_every, where);
  read(t, "best_metric", c.best_metric, where);

  const json loss = j.value("loss", json::object());
  reject_unknown(loss, {"dice_variant", "focal_gamma", "three_class_weights", "distance_weight", "class_weight",
                        "hinge_margin"},
                 where + " loss");
  std::string variant = "standard";
  read(loss, "dice_variant", variant, where);
  if (variant == "standard") c.loss.dice_variant = train::DiceVariant::standard;
  else if (variant == "authors") c.loss.dice_variant = train::DiceVariant::authors;
  else throw UsageError(where + ": loss 'dice_variant' must be standard or authors");
  read(loss, "focal_gamma", c.loss.focal_gamma, where);
  read(loss, "three_class_weights", c.loss.three_class_weights, where);
  read(loss, "distance_weight", c.loss.distance_weight, where);
  read(loss, "class_weight", c.loss.class_weight, where);
  read(loss, "hinge_margin", c.loss.hinge_margin, where);
  if (!(c.loss.hinge_margin >= 0 && c.loss.hinge_margin <= 1))
    throw UsageError(where + ": loss 'hinge_margin' must be in [0, 1]");

  const json sam = j.value("sam", json::object());
  reject_unknown(sam, {"checkpoint", "input_size"}, where + " sam");
  read(sam, "checkpoint", r.sam_checkpoint, where + " sam");
  read(sam, "input_size", r.sam_input_size, where + " sam");
  if (!r.sam_checkpoint.empty()) {
    fs::path p(r.sam_checkpoint);
    if (p.is_relative()) p = base / p;
    r.sam_checkpoint = fs::weakly_canonical(p).string();
  }

  const json inf = j.value("inference", json::object());
  reject_unknown(inf, {"tile_size", "tile_overlap"}, where + " inference");
  card.tile_size = c.augment.crop_size;
  if (card.heads.categories) card.tile_overlap = card.tile_size / 2;  // method 2: stride = half a crop
  read(inf, "tile_size", card.tile_size, where);
  read(inf, "tile_overlap", card.tile_overlap, where);

  // The resolved recipe: what --resume reads, with every default written out.
  json train_list = json::array();
  for (const auto& d : r.train_data) train_list.push_back(data_spec_json(d));
  json opts = json::object();
  for (const auto& [k, v] : card.options) opts[k] = v;
  r.resolved = {
      {"name", card.name},
      {"threads", r.threads},
      {"model",
       {{"arch", card.arch}, {"options", opts}, {"distance_head", card.heads.distance}, {"classes", r.classes},
        {"init_from", c.init_from}}},
      {"data",
       {{"train", train_list},
        {"validation", r.validation ? data_spec_json(*r.validation) : json(nullptr)},
        {"crop_size", a.crop_size},
        {"crops_per_image", c.crops_per_image},
        {"rfs_threshold", c.rfs_threshold},
        {"mpp", card.mpp},
        {"augment",
         {{"flips", a.flips}, {"rotate90", a.rotate90}, {"rotate_probability", a.rotate_probability},
          {"max_rotation_degrees", a.max_rotation_degrees}, {"scale_probability", a.scale_probability},
          {"min_scale", a.min_scale}, {"max_scale", a.max_scale}, {"color_probability", a.color_probability},
          {"brightness", a.color.brightness}, {"contrast", a.color.contrast}, {"saturation", a.color.saturation},
          {"hue", a.color.hue}, {"stain_probability", a.stain_probability}, {"stain_alpha", a.stain.alpha},
          {"stain_beta", a.stain.beta}}}}},
      {"train",
       {{"epochs", c.epochs}, {"batch_size", c.batch_size}, {"micro_batches", c.micro_batches}, {"lr", c.lr},
        {"weight_decay", c.weight_decay},
        {"schedule", c.schedule.kind}, {"warmup_steps", c.schedule.warmup_steps},
        {"final_lr_ratio", c.schedule.final_ratio}, {"step_epochs", c.schedule.step_epochs},
        {"step_gamma", c.schedule.step_gamma}, {"precision", c.precision}, {"channels_last", c.channels_last},
        {"seed", c.seed}, {"checkpoint_every", c.checkpoint_every}, {"log_every", c.log_every},
        {"loader_threads", c.loader_threads}, {"validate_every", c.validate_every},
        {"best_metric", c.best_metric}}},
      {"loss",
       {{"dice_variant", variant}, {"focal_gamma", c.loss.focal_gamma},
        {"three_class_weights", c.loss.three_class_weights}, {"distance_weight", c.loss.distance_weight},
        {"class_weight", c.loss.class_weight}, {"hinge_margin", c.loss.hinge_margin}}},
      {"inference", {{"tile_size", card.tile_size}, {"tile_overlap", card.tile_overlap}}}};
  if (!r.sam_checkpoint.empty())
    r.resolved["sam"] = {{"checkpoint", r.sam_checkpoint}, {"input_size", r.sam_input_size}};
  return r;
}

json read_json_file(const std::string& path) {
  try {
    const std::string text = read_file(path);
    limits::check_json_depth(text, path);
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    throw UsageError(path + ": not valid JSON (" + what + ")");
  }
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
    std::map<std::string, double> out;
    for (size_t k = 0; k < candidates.size(); ++k) out["aji." + candidates[k].label] = cmp.summaries[k].aji.mean;
    const metrics::EvaluationSummary& s = cmp.summaries[cmp.best];
    out["dice"] = s.dice.mean;
    out["iou"] = s.iou.mean;
    out["aji"] = s.aji.mean;
    out["pq"] = s.pq.mean;
    if (card.heads.num_classes > 0) {
      out["mpq_plus"] = s.mpq_plus;
      out["mean_f1"] = s.mean_f1;
    }
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
    const metrics::EvaluationSummary s = evaluation.summary();
    std::map<std::string, double> out{{"dice", s.dice.mean}, {"iou", s.iou.mean}, {"aji", s.aji.mean}, {"pq", s.pq.mean}};
    if (card.heads.num_classes > 0) {
      out["mpq_plus"] = s.mpq_plus;
      out["mean_f1"] = s.mean_f1;
    }
    return out;
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
  for (const auto& d : r.train_data) parts.push_back(open_spec(d));
  std::shared_ptr<const data::Dataset> train_set =
      parts.size() == 1 ? parts.front() : std::make_shared<train::ConcatDataset>(parts);
  models::ModelCard& card = r.config.card;
  if (r.classes) {
    const data::ClassNames& names = train_set->class_names();
    if (names.size() < 2) throw UsageError(recipe_source + ": model 'classes' is true but the training data has no classes");
    card.heads.num_classes = static_cast<int>(names.size()) - 1;
    card.class_names = names;
  }
  card.info["trained_on"] = [&] {
    std::string s;
    for (const auto& d : r.train_data) s += (s.empty() ? "" : "; ") + d.path;
    return s;
  }();
  card.info["train_samples"] = std::to_string(train_set->size());
  if (!r.config.init_from.empty()) card.info["initialised_from"] = fs::path(r.config.init_from).filename().string();
  card.info["precision"] = r.config.precision;

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
    std::shared_ptr<const data::Dataset> val = open_spec(*r.validation);
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
