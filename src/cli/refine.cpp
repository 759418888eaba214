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
#include "cli/stain_options.h"
#include "cli/points.h"
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
  double mpp = 0;
  bool fresh = false;
  StainArgs stains;
};

// One image and its points: segments with the points, reusing the crops of the image's previous refine in the same output
// folder (its session file) whose points have not changed. The points are in the pixels of the image file
// (`width` x `height`); when the image reaches segment() resampled to the model's resolution (--mpp), they are
// scaled with it.
class PromptedSegmenter : public infer::Segmenter {
 public:
  PromptedSegmenter(std::unique_ptr<predict::CategorySamSegmenter> s, std::vector<predict::PointPrompt> points,
                    int width, int height, std::string model_path, predict::CategorySamSegmenterOptions options,
                    std::string session_path, bool fresh)
      : s_(std::move(s)), points_(std::move(points)), width_(width), height_(height),
        model_path_(std::move(model_path)), options_(std::move(options)), session_path_(std::move(session_path)),
        fresh_(fresh) {}
  std::string name() const override { return s_->name(); }
  double microns_per_pixel() const override { return s_->microns_per_pixel(); }
  std::optional<StainAmountRange> stain_range() const override { return s_->stain_range(); }
  infer::Segmentation segment(const Image& image, const std::string&) override {
    std::vector<predict::PointPrompt> points = points_;
    if (!image.same_size(height_, width_)) {
      const float fx = static_cast<float>(image.width) / static_cast<float>(width_);
      const float fy = static_cast<float>(image.height) / static_cast<float>(height_);
      for (auto& p : points) {
        p.x = std::min(p.x * fx, static_cast<float>(image.width) - 0.5f);
        p.y = std::min(p.y * fy, static_cast<float>(image.height) - 0.5f);
      }
    }
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
        t = s_->update(image, previous->tiled, points);
      } catch (const OptionError& e) {
        log::warn(session_path_, ": ", e.what(), "; running every crop");
        previous.reset();
      }
    } else if (previous) {
      log::info("refine: ", session_path_, " is from another image, model or precision; running every crop");
      previous.reset();
    }
    if (!previous) t = s_->run(image, points);
    size_t prompted = 0;
    for (const auto& p : t.points) prompted += !p.empty();
    log::info("refine: ", points_.size(), " point(s) in ", prompted, " of ", t.grid.count(), " crops; ran ",
              s_->last_crops_run().size(), " of ", t.grid.count(), " crops");
    if (static_cast<int64_t>(t.grid.count()) * t.grid.crop * t.grid.crop <= predict::kMaxRefineSessionPixels)
      predict::write_refine_session(session_path_, {key, t});
    else
      log::info("refine: the image is too large to keep its crops for the next call (",
                predict::kMaxRefineSessionPixels, " crop pixels at most); every call runs every crop");
    return s_->stitch(t);
  }

 private:
  std::unique_ptr<predict::CategorySamSegmenter> s_;
  std::vector<predict::PointPrompt> points_;
  int width_, height_;
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
      app.add_option("--precision", a->precision,
                     "Model arithmetic: fp32, bf16, or auto (bf16 where it is faster on this CPU: AMX, or "
                     "AMD's AVX-512-BF16)")
          ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
          ->capture_default_str();
      app.add_option("--batch-size", a->batch_size, "Crops run together")->check(CLI::Range(1, 1024))->capture_default_str();
      app.add_option("--mpp", a->mpp,
                     "Microns per pixel of the image (default: what the file records, else the model's): resampled to "
                     "the model's resolution, points and outputs stay in the image's pixels")
          ->check(CLI::Range(1e-4, 1e3));
      add_stain_options(app, a->stains);
      app.add_flag("--fresh", a->fresh,
                   "Run every crop, ignoring the previous refine of this image in --out (<name>.refine-session)");
      return [a]() {
        infer::OutputFormats formats = infer::parse_output_formats(a->formats);
        if (!fs::is_regular_file(a->input)) throw UsageError(a->input + ": refine takes one image file");
        const std::string model_path = predict::find_model_file(a->model);
        models::LoadedModel model = models::load_model(model_path);
        if (!model.card.heads.categories)
          throw UsageError(a->model + ": not a category-SAM model (point prompts need one; see docs/method2.md)");
        const StainNormalization stains = stain_normalization(a->stains);  // its errors before any work
        std::vector<predict::PointPrompt> points;
        if (!a->points_file.empty()) points = read_points_file(a->points_file, model.card);
        for (const auto& p : a->points) points.push_back(parse_point_option(p, model.card));
        if (points.empty()) log::warn("refine: no points given; this is a plain segmentation");
        int width = 0, height = 0;
        {
          const Image image = io::read_image(a->input);
          width = image.width;
          height = image.height;
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
        remove_stale_temporaries(a->out);  // of an earlier run killed mid-write
        const std::string session = (fs::path(a->out) / (output_stem(a->input) + ".refine-session")).string();
        PromptedSegmenter segmenter(std::make_unique<predict::CategorySamSegmenter>(model.network, model.card, o),
                                    std::move(points), width, height, model_path, o, session, a->fresh);
        infer::SegmentRunOptions run;
        run.out_dir = a->out;
        run.formats = formats;
        run.overwrite = true;
        run.stop_on_error = true;
        run.mpp = a->mpp;
        run.stains = with_method_range(stains, segmenter);
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
