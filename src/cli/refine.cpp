// `nucleisam refine`: segment one image with a category-SAM model (method 2) and point prompts,
// each point added to its class's prompt in every crop that contains it. Points come from a JSON
// file ({"points": [{"x": .., "y": .., "class": "epithelial" or 3}, ...]}), a QuPath GeoJSON of
// point annotations whose classification names are the model's class names, or repeated
// --point x,y,class. Outputs as `segment` writes them. See docs/method2.md.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/log.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/predict/category_sam_segmenter.h"
#include "nucleisam/predict/click_benchmark.h"
#include "nucleisam/train/dataset_split.h"
#include "nucleisam/predict/model_segmenter.h"
#include "nucleisam/predict/refine_session.h"
#include "nucleisam/output_path.h"

namespace nucleisam::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct RefineArgs {
  std::string input, out, model, points_file, formats = "geojson,csv,labels,overlay", precision = "auto";
  std::vector<std::string> points;
  int batch_size = 4;
  bool fresh = false;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A class given by name (the model's class names, "background", "boundary"; any case) or number.
int category_of(const json& value, const models::ModelCard& card, const std::string& where) {
  const int k = static_cast<int>(card.heads.category_count());
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0 || v >= k)
      throw UsageError(where + ": class " + std::to_string(v) + " is not one of the model's 0.." + std::to_string(k - 1));
    return static_cast<int>(v);
  }
  if (!value.is_string()) throw UsageError(where + ": the class must be a name or a number");
  const std::string name = lower(value.get<std::string>());
  char* end = nullptr;
  const long number = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && end == name.c_str() + name.size()) return category_of(json(number), card, where);
  std::string known = "background";
  for (size_t i = 1; i < card.class_names.size(); ++i) {
    if (lower(card.class_names[i]) == name) return static_cast<int>(i);
    known += ", " + card.class_names[i];
  }
  if (card.class_names.empty()) {
    if (name == "nucleus") return 1;
    known += ", nucleus";
  }
  if (name == "background") return 0;
  if (name == "boundary") return k - 1;
  throw UsageError(where + ": unknown class '" + value.get<std::string>() + "' (the model's classes: " + known +
                   ", boundary)");
}

double coordinate(const json& v, const std::string& where) {
  if (!v.is_number()) throw UsageError(where + ": coordinates must be numbers");
  return v.get<double>();
}

std::vector<predict::PointPrompt> read_points_file(const std::string& path, const models::ModelCard& card) {
  std::ifstream in(path);
  if (!in) throw UsageError(path + ": cannot open the points file");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    limits::check_json_depth(text.str(), path);
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw UsageError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  std::vector<predict::PointPrompt> out;
  auto add = [&](double x, double y, int category) {
    out.push_back({static_cast<float>(x), static_cast<float>(y), category});
  };
  const bool geojson = j.is_object() && j.contains("type") &&
                       (j["type"] == "FeatureCollection" || j["type"] == "Feature");
  if (geojson) {
    const json features = j["type"] == "Feature" ? json::array({j}) : j.value("features", json::array());
    for (size_t i = 0; i < features.size(); ++i) {
      const std::string where = path + ": feature " + std::to_string(i);
      const json& f = features[i];
      const json geometry = f.value("geometry", json::object());
      const std::string type = geometry.value("type", "");
      if (type != "Point" && type != "MultiPoint")
        throw UsageError(where + ": geometry '" + type + "' is not a Point or MultiPoint (QuPath point annotations)");
      const json props = f.value("properties", json::object());
      json cls;
      if (props.contains("classification"))
        cls = props["classification"].is_object() ? props["classification"].value("name", json()) : props["classification"];
      if (cls.is_null()) throw UsageError(where + ": has no classification (give each point annotation a class)");
      const int category = category_of(cls, card, where);
      const json coords = geometry.value("coordinates", json::array());
      const json list = type == "Point" ? json::array({coords}) : coords;
      for (const json& c : list) {
        if (!c.is_array() || c.size() < 2) throw UsageError(where + ": a point needs [x, y]");
        add(coordinate(c[0], where), coordinate(c[1], where), category);
      }
    }
    return out;
  }
  const json list = j.is_object() ? j.value("points", json()) : j;
  if (!list.is_array())
    throw UsageError(path + ": expected {\"points\": [{\"x\": .., \"y\": .., \"class\": ..}, ...]} or a GeoJSON "
                            "FeatureCollection of points");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = path + ": point " + std::to_string(i);
    const json& p = list[i];
    if (!p.is_object() || !p.contains("x") || !p.contains("y") || !p.contains("class"))
      throw UsageError(where + ": needs x, y and class");
    add(coordinate(p["x"], where), coordinate(p["y"], where), category_of(p["class"], card, where));
  }
  return out;
}

predict::PointPrompt parse_point_option(const std::string& text, const models::ModelCard& card) {
  const std::string where = "--point " + text;
  std::stringstream s(text);
  std::string xs, ys, cls;
  std::getline(s, xs, ',');
  std::getline(s, ys, ',');
  std::getline(s, cls);
  char* ex = nullptr;
  char* ey = nullptr;
  const double x = std::strtod(xs.c_str(), &ex), y = std::strtod(ys.c_str(), &ey);
  if (xs.empty() || ys.empty() || cls.empty() || *ex != '\0' || *ey != '\0')
    throw UsageError(where + ": expected x,y,class (pixels, and a class name or number)");
  return {static_cast<float>(x), static_cast<float>(y), category_of(json(cls), card, where)};
}

// One image and its points: segments with the points, reusing the crops of the image's previous refine in the same output
// folder (its session file) whose points have not changed.
class PromptedSegmenter : public infer::Segmenter {
 public:
  PromptedSegmenter(std::unique_ptr<predict::CategorySamSegmenter> s, std::vector<predict::PointPrompt> points,
                    std::string model_path, predict::CategorySamSegmenterOptions options, std::string session_path,
                    bool fresh)
      : s_(std::move(s)), points_(std::move(points)), model_path_(std::move(model_path)),
        options_(std::move(options)), session_path_(std::move(session_path)), fresh_(fresh) {}
  std::string name() const override { return s_->name(); }
  infer::Segmentation segment(const Image& image, const std::string&) override {
    const std::string key = predict::refine_session_key(image, model_path_, options_);
    std::optional<predict::RefineSession> previous;
    if (!fresh_) {
      try {
        previous = predict::read_refine_session(session_path_);
      } catch (const Error& e) {
        log::warn(e.what(), "; running every crop");
      }
    }
    predict::TiledSegmentation t;
    if (previous && previous->key == key) {
      try {
        t = s_->update(image, previous->tiled, points_);
      } catch (const OptionError& e) {
        log::warn(session_path_, ": ", e.what(), "; running every crop");
        previous.reset();
      }
    } else if (previous) {
      log::info("refine: ", session_path_, " is from another image, model or precision; running every crop");
      previous.reset();
    }
    if (!previous) t = s_->run(image, points_);
    size_t prompted = 0;
    for (const auto& p : t.points) prompted += !p.empty();
    log::info("refine: ", points_.size(), " point(s) in ", prompted, " of ", t.grid.count(), " crops; ran ",
              s_->last_crops_run().size(), " of ", t.grid.count(), " crops");
    predict::write_refine_session(session_path_, {key, t});
    return s_->stitch(t);
  }

 private:
  std::unique_ptr<predict::CategorySamSegmenter> s_;
  std::vector<predict::PointPrompt> points_;
  std::string model_path_;
  predict::CategorySamSegmenterOptions options_;
  std::string session_path_;
  bool fresh_;
};

CommandRegistration reg(
    "refine", "Segment one image with a category-SAM model and point prompts (interactive refinement)",
    [](CLI::App& app) {
      auto a = std::make_shared<RefineArgs>();
      app.add_option("-i,--input", a->input, "The image the points belong to")->required();
      app.add_option("-o,--out", a->out, "Output folder (created if missing; outputs are replaced)")->required();
      app.add_option("--model", a->model, "A category-SAM model file (from `nucleisam train`)")->required();
      app.add_option("--points", a->points_file,
                     "Points: JSON {\"points\": [{\"x\", \"y\", \"class\"}]} or a QuPath GeoJSON of point annotations");
      app.add_option("--point", a->points, "A point x,y,class (pixels; class name or number); repeatable");
      app.add_option("--formats", a->formats, "Outputs to write: any of geojson,csv,labels,overlay")->capture_default_str();
      app.add_option("--precision", a->precision, "Model arithmetic: fp32, bf16, or auto (bf16 where the CPU has it)")
          ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
          ->capture_default_str();
      app.add_option("--batch-size", a->batch_size, "Crops run together")->check(CLI::Range(1, 1024))->capture_default_str();
      app.add_flag("--fresh", a->fresh,
                   "Run every crop, ignoring the previous refine of this image in --out (<name>.refine-session)");
      return [a]() {
        infer::OutputFormats formats = infer::parse_output_formats(a->formats);
        if (!fs::is_regular_file(a->input)) throw UsageError(a->input + ": refine takes one image file");
        const std::string model_path = predict::find_model_file(a->model);
        models::LoadedModel model = models::load_model(model_path);
        if (!model.card.heads.categories)
          throw UsageError(a->model + ": not a category-SAM model (point prompts need one; see docs/method2.md)");
        std::vector<predict::PointPrompt> points;
        if (!a->points_file.empty()) points = read_points_file(a->points_file, model.card);
        for (const auto& p : a->points) points.push_back(parse_point_option(p, model.card));
        if (points.empty()) log::warn("refine: no points given; this is a plain segmentation");
        {
          const Image image = io::read_image(a->input);
          for (const auto& p : points)
            if (p.x < 0 || p.y < 0 || p.x >= image.width || p.y >= image.height)
              throw UsageError(a->input + ": point (" + std::to_string(p.x) + ", " + std::to_string(p.y) +
                               ") lies outside the " + std::to_string(image.width) + " x " +
                               std::to_string(image.height) + " image");
        }
        predict::CategorySamSegmenterOptions o;
        o.precision = resolve_precision(a->precision, global_options().device == "cuda");
        o.batch_size = a->batch_size;
        fs::create_directories(a->out);
        const std::string session = (fs::path(a->out) / (output_stem(a->input) + ".refine-session")).string();
        PromptedSegmenter segmenter(std::make_unique<predict::CategorySamSegmenter>(model.network, model.card, o),
                                    std::move(points), model_path, o, session, a->fresh);
        infer::SegmentRunOptions run;
        run.out_dir = a->out;
        run.formats = formats;
        run.overwrite = true;
        run.stop_on_error = true;
        infer::SegmentRunReport report = infer::run_segmentation({a->input}, segmenter, run);
        log::info("refine: ", report.nuclei, " nuclei; outputs in ", a->out);
        return 0;
      };
    });

struct ClickBenchArgs {
  std::string model, data, out;
  std::vector<std::string> include, exclude;
  std::vector<int> steps{0, 1, 2, 4, 8, 16};
};

std::string number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

CommandRegistration bench_reg(
    "click-bench",
    "The paper's refinement benchmark for a category-SAM model: simulated clicks per class, per-class F1 per step",
    [](CLI::App& app) {
      auto a = std::make_shared<ClickBenchArgs>();
      app.add_option("--model", a->model, "A category-SAM model file")->required();
      app.add_option("--data", a->data, "Annotated dataset with classes (e.g. ../shared/data/consep256/test)")->required();
      app.add_option("--include", a->include, "Only these sample names (* wildcards)");
      app.add_option("--exclude", a->exclude, "Leave out these sample names (* wildcards)");
      app.add_option("--steps", a->steps, "Points per class at which to evaluate")->capture_default_str();
      app.add_option("-o,--out", a->out, "CSV report: one row per step")->required();
      return [a]() {
        models::LoadedModel model = models::load_model(predict::find_model_file(a->model));
        if (!model.card.heads.categories) throw UsageError(a->model + ": not a category-SAM model");
        std::shared_ptr<const data::Dataset> ds = data::open_dataset(a->data);
        if (!a->include.empty() || !a->exclude.empty())
          ds = std::make_shared<train::SubsetDataset>(ds, a->include, a->exclude, a->data);
        std::vector<data::Sample> samples;
        for (size_t i = 0; i < ds->size(); ++i) samples.push_back(ds->get(i));
        predict::CategorySamSegmenter segmenter(model.network, model.card);
        predict::ClickBenchmarkOptions o;
        o.steps = a->steps;
        const auto steps = predict::click_benchmark(segmenter, samples, o);
        std::string csv = "points_per_class";
        for (size_t c = 1; c < model.card.class_names.size(); ++c) csv += ",f1_" + model.card.class_names[c];
        csv += ",mean_f1,mpq_plus,map,map50\n";
        for (const auto& s : steps) {
          csv += std::to_string(s.points_per_class);
          for (const auto& c : s.summary.classes) csv += "," + number(c.detection.f1());
          csv += "," + number(s.summary.mean_f1) + "," + number(s.summary.mpq_plus) + "," + number(s.summary.class_map) +
                 "," + number(s.summary.class_map50) + "\n";
          log::info("click-bench: ", s.points_per_class, " point(s) per class: mean F1 ", number(s.summary.mean_f1));
        }
        write_file_atomic(a->out, csv);
        std::cout << csv;
        return 0;
      };
    });

}  // namespace
}  // namespace nucleisam::cli
