// The training recipe parser (see recipe.h).
#include "cli/recipe.h"

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>

#include "cli/usage_error.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/models/segmentation_model.h"

namespace nucleisam::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// Converts one JSON value to T. Numbers that T cannot hold are refused, never cast: an integer
// field takes whole numbers within its range only, a floating-point field finite numbers only.
template <typename T>
T convert(const json& v, const std::string& what) {
  const auto wrong_type = [&] { return UsageError(what + " has the wrong type (" + v.dump() + ")"); };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw wrong_type();
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number()) throw wrong_type();
    using L = std::numeric_limits<T>;
    const auto out_of_range = [&] {
      return UsageError(what + " must be a whole number from " + std::to_string(L::min()) + " to " +
                        std::to_string(L::max()) + " (got " + v.dump() + ")");
    };
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(L::max())) throw out_of_range();
      return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i < 0 ? (!L::is_signed || i < static_cast<int64_t>(L::min()))
                : static_cast<uint64_t>(i) > static_cast<uint64_t>(L::max()))
        throw out_of_range();
      return static_cast<T>(i);
    }
    const double d = v.get<double>();  // 3.0 is accepted as 3; 3.5, 1e300 and inf are not
    if (!(d == std::floor(d) && d >= static_cast<double>(L::min()) && d < std::ldexp(1.0, L::digits)))
      throw out_of_range();
    return static_cast<T>(d);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw wrong_type();
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max()))
      throw UsageError(what + " must be a finite number (got " + v.dump() + ")");
    return static_cast<T>(d);
  } else if constexpr (IsVector<T>::value) {
    if (!v.is_array()) throw wrong_type();
    T out;
    for (size_t i = 0; i < v.size(); ++i)
      out.push_back(convert<typename T::value_type>(v[i], what + "[" + std::to_string(i) + "]"));
    return out;
  } else {
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      throw wrong_type();
    }
  }
}

// Reads `key` of object `j` into `value` when present, with a clear message for a wrong type or a
// number out of range.
template <typename T>
void read(const json& j, const char* key, T& value, const std::string& where) {
  if (j.contains(key)) value = convert<T>(j.at(key), where + ": '" + key + "'");
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

DataSpec parse_data_spec(const json& j, const std::string& where, const fs::path& base) {
  reject_unknown(j, {"path", "format", "include", "exclude", "repeat", "classes", "mpp"}, where);
  DataSpec d;
  read(j, "path", d.path, where);
  read(j, "format", d.format, where);
  read(j, "include", d.include, where);
  read(j, "exclude", d.exclude, where);
  read(j, "repeat", d.repeat, where);
  read(j, "classes", d.keep_classes, where);
  read(j, "mpp", d.mpp, where);
  if (!(d.mpp >= 0) || d.mpp > 1000) throw UsageError(where + ": 'mpp' must be a resolution in microns per pixel (0: the model's)");
  if (d.repeat < 1) throw UsageError(where + ": 'repeat' must be at least 1");
  if (d.path.empty()) throw UsageError(where + ": 'path' is required");
  fs::path p(d.path);
  if (p.is_relative()) p = base / p;
  d.path = fs::weakly_canonical(p).string();
  return d;
}

}  // namespace

json data_spec_json(const DataSpec& d) {
  json j = {{"path", d.path},       {"format", d.format}, {"include", d.include},
            {"exclude", d.exclude}, {"repeat", d.repeat}, {"classes", d.keep_classes}};
  if (d.mpp > 0) j["mpp"] = d.mpp;
  return j;
}

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
  if (card.mpp < 0) throw UsageError(where + ": data 'mpp' must not be negative (0: unknown)");
  std::vector<const DataSpec*> specs;
  for (const DataSpec& d : r.train_data) specs.push_back(&d);
  if (r.validation) specs.push_back(&*r.validation);
  for (const DataSpec* d : specs)
    if (d->mpp > 0 && card.mpp <= 0)
      throw UsageError(where + ": " + d->path + " gives its 'mpp'; give the model's too (data 'mpp'), to resample it to");
  const json aug = data.value("augment", json::object());
  reject_unknown(aug, {"flips", "rotate90", "rotate_probability", "max_rotation_degrees", "scale_probability",
                       "min_scale", "max_scale", "color_probability", "brightness", "contrast", "saturation", "hue",
                       "stain_probability", "stain_alpha", "stain_beta", "stain_scale"},
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
  read(aug, "stain_scale", a.stain.amount_scale, where);
  if (!(a.stain.amount_scale >= 1 && a.stain.amount_scale <= 10))
    throw UsageError(where + ": data augment 'stain_scale' must be from 1 (off) to 10 (got " +
                     aug.at("stain_scale").dump() + ")");

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
          {"stain_beta", a.stain.beta}, {"stain_scale", a.stain.amount_scale}}}}},
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
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999999
    std::string what = e.what();
    throw UsageError(path + ": not valid JSON (" + what + ")");
  }
}

}  // namespace nucleisam::cli
