// `nucleisam export`: re-writes a trained model file (from a run folder) for shipping: a new name,
// float16 storage (half the size; outputs change by float16 rounding only), and prints its card.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>

#include "cli/command.h"
#include "nucleisam/errors.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/log.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/predict/decoding_search.h"
#include "nucleisam/train/dataset_split.h"

namespace nucleisam::cli {
namespace {

struct ExportArgs {
  std::string model, out, name, tune_on, tune_format = "auto", precision = "auto", tune_metric = "aji";
  std::vector<std::string> tune_include;
  double tune_mpp = 0;
  bool half = false;
};

// Searches the decoding grid on annotated images and writes the best into the card.
void tune_decoding(models::LoadedModel& m, const ExportArgs& a) {
  std::shared_ptr<const data::Dataset> ds = data::open_dataset(a.tune_on, a.tune_format);
  if (!a.tune_include.empty()) ds = std::make_shared<train::SubsetDataset>(ds, a.tune_include, std::vector<std::string>{}, a.tune_on);
  if (a.tune_mpp > 0) {
    if (m.card.mpp <= 0)
      throw UsageError("export: --tune-mpp needs a model that records its resolution; " + a.model + " does not");
    ds = std::make_shared<train::ResampledDataset>(ds, a.tune_mpp / m.card.mpp);
  }
  std::vector<data::Sample> samples;
  for (size_t i = 0; i < ds->size(); ++i) samples.push_back(ds->get(i));
  predict::ModelSegmenterOptions o;
  o.precision = resolve_precision(a.precision);
  if (m.network->needs_guidance()) throw UsageError("export: tuning a SAM-guided model is not supported yet");
  predict::ModelSegmenter segmenter(m.network, m.card, o);
  const auto grid = predict::tuning_grid(m.card.heads);
  log::info("export: ", grid.size(), " decodings on ", samples.size(), " images of ", a.tune_on);
  const predict::DecodingComparison cmp = predict::compare_decodings(segmenter, samples, grid, a.tune_metric);
  auto value = [&](size_t k) {  // undefined (NaN) sorts last
    const double v = predict::decoding_metric_value(cmp.summaries[k], a.tune_metric);
    return std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;
  };
  std::vector<size_t> order(grid.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return value(x) > value(y); });
  const bool classes = m.card.heads.num_classes > 0;
  std::cout << "best 8 by " << a.tune_metric << ":\nAJI     Dice    PQ      F_d     "
            << (classes ? "mPQ+    F_c     " : "") << "decoding\n";
  for (size_t r = 0; r < std::min<size_t>(8, order.size()); ++r) {
    const auto& s = cmp.summaries[order[r]];
    std::printf("%.4f  %.4f  %.4f  %.4f  ", s.aji.mean, s.dice.mean, s.pq.mean, s.centroid.f1());
    if (classes) std::printf("%.4f  %.4f  ", s.mpq_plus, metrics::mean_f1_c(s));
    std::printf("%s\n", grid[order[r]].label.c_str());
  }
  m.card.decoding = infer::decoding_to_map(grid[cmp.best].options);
  m.card.info["decoding_chosen_on"] = (a.tune_metric == "aji" ? std::string("AJI") : a.tune_metric) + " on " +
                                      a.tune_on + (a.tune_include.empty() ? "" : " (subset)");
  m.card.info["decoding_tuned_aji"] = std::to_string(cmp.summaries[cmp.best].aji.mean);
  if (a.tune_metric != "aji")
    m.card.info["decoding_tuned_" + a.tune_metric] =
        std::to_string(predict::decoding_metric_value(cmp.summaries[cmp.best], a.tune_metric));
}

void print_card(const models::ModelCard& c) {
  std::cout << "name: " << c.name << "\narch: " << c.arch << '\n';
  for (const auto& [k, v] : c.options) std::cout << "option " << k << ": " << v << '\n';
  if (c.heads.categories)
    std::cout << "heads: " << c.heads.category_count() << " categories (background, "
              << std::max(c.heads.num_classes, 1) << " nucleus type(s), boundary)\n";
  else
    std::cout << "heads: three-class" << (c.heads.distance ? ", distance" : "")
              << (c.heads.num_classes > 0 ? ", " + std::to_string(c.heads.num_classes) + " nucleus types" : "") << '\n';
  for (size_t i = 1; i < c.class_names.size(); ++i) std::cout << "class " << i << ": " << c.class_names[i] << '\n';
  std::cout << "microns per pixel: " << c.mpp << "\ntile: " << c.tile_size << " overlap " << c.tile_overlap << '\n';
  if (c.stain_range)
    std::cout << "stain amounts of the training images: haematoxylin " << c.stain_range->low[0] << "-"
              << c.stain_range->high[0] << ", eosin " << c.stain_range->low[1] << "-" << c.stain_range->high[1] << '\n';
  for (const auto& [k, v] : c.decoding) std::cout << "decode " << k << ": " << v << '\n';
  for (const auto& [k, v] : c.info) std::cout << k << ": " << v << '\n';
}

CommandRegistration reg(
    "export", "Show a trained model's card, or re-write the model (new name, float16 storage) for shipping",
    [](CLI::App& app) {
      auto a = std::make_shared<ExportArgs>();
      app.add_option("-m,--model", a->model, "Model file (.safetensors written by nucleisam train)")->required();
      app.add_option("-o,--out", a->out, "Write the model here (omit to only print its card)");
      app.add_option("--name", a->name, "New model name");
      app.add_flag("--half", a->half, "Store weights as float16");
      app.add_option("--tune-on", a->tune_on,
                     "Choose the instance decoding on this annotated dataset split (validation images, not test)");
      app.add_option("--tune-include", a->tune_include, "Only these sample names / * patterns of --tune-on");
      app.add_option("--tune-format", a->tune_format, "Dataset format of --tune-on")->capture_default_str();
      app.add_option(
             "--tune-metric", a->tune_metric,
             "What --tune-on maximises: aji, pq, f1_d (HoVer-Net's detection F1), or for a model with "
             "nucleus types mpq_plus or f1_c (mean of HoVer-Net's per-type F_c)")
          ->check(CLI::IsMember(predict::decoding_metric_names()))
          ->capture_default_str();
      app.add_option("--tune-mpp", a->tune_mpp,
                     "Microns per pixel of --tune-on when it is not at the model's resolution (resampled to it)")
          ->check(CLI::Range(1e-4, 1e3));
      app.add_option("--precision", a->precision, "fp32, bf16 or auto (tuning inference)")
          ->check(CLI::IsMember({"fp32", "bf16", "auto"}));
      return [a]() {
        if (a->tune_mpp > 0 && a->tune_on.empty()) throw UsageError("export: --tune-mpp needs --tune-on");
        if (a->tune_metric != "aji" && a->tune_on.empty())
          throw UsageError("export: --tune-metric needs --tune-on");
        models::LoadedModel m = models::load_model(a->model);
        if (!a->name.empty()) m.card.name = a->name;
        if (a->out.empty()) {
          if (!a->name.empty() || a->half || !a->tune_on.empty())
            throw UsageError("export: --name, --half and --tune-on need --out");
        } else {
          if (a->half) {  // tune (and print) what ships: weights rounded to float16
            torch::NoGradGuard no_grad;
            for (auto& t : m.network->parameters()) t.set_data(t.data().to(torch::kFloat16).to(torch::kFloat32));
            for (auto& t : m.network->buffers())
              if (t.is_floating_point()) t.set_data(t.data().to(torch::kFloat16).to(torch::kFloat32));
          }
          if (!a->tune_on.empty() && m.card.heads.categories)
            throw UsageError(a->model + ": --tune-on chooses among the head decodings; a category-SAM model has its own");
          if (!a->tune_on.empty()) tune_decoding(m, *a);
          models::save_model(a->out, *m.network, m.card, a->half);
        }
        print_card(m.card);
        return 0;
      };
    });

}  // namespace
}  // namespace nucleisam::cli
