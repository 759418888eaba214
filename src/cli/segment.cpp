// `nucleisam segment`: nuclei in an image or a folder of images -> QuPath GeoJSON, nucleus CSV,
// instance label TIFF and overlay PNG per image; whole slides (OpenSlide) and cohorts of slides
// (--manifest, --shard) -> streamed GeoJSON, CSV, summary and thumbnail per slide. Resumable; a bad
// image or slide is reported at the end (exit 1) after the others are done.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "cli/command.h"
#include "cli/stain_options.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/run_summary.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/infer/segmenter_registry.h"
#include "nucleisam/infer/slide_run.h"
#include "nucleisam/io/slide.h"
#include "nucleisam/log.h"
#include "nucleisam/output_path.h"
#include "nucleisam/predict/model_segmenter.h"

namespace nucleisam::cli {
namespace {

struct SegmentArgs {
  std::string input, out, model = "he-nuclei", formats = "geojson,csv,labels,overlay,summary",
                          precision = "auto";
  std::string model_file, sam_checkpoint;
  int batch_size = 4;
  int tta = 1;
  int window = 0, window_overlap = -1;
  int min_area = 30;
  float split_depth = 2.0f;
  float threshold_scale = 1.0f;
  bool overwrite = false;
  int tile_size = 0, tile_overlap = 64;
  double mpp = 0;
  std::string unknown_mpp = "estimate";
  std::string tissue_mask, manifest, shard;
  bool process_all = false;
  bool recursive = false;
  StainArgs stains;
};

std::string first_line(const std::string& what) { return what.substr(0, what.find('\n')); }

// How many images (as a --recursive run takes them) and, with slides, slides the folder `input`
// holds (recursive: at any depth).
size_t count_inputs(const std::string& input, const std::string& out, bool recursive, bool slides) {
  return infer::list_input_files(input, out, recursive, [slides](const std::string& name, bool) {
           return infer::is_input_image(name, true) || (slides && io::Slide::has_slide_extension(name));
         }).size();
}

// The images to segment in `input`: image files (recursive: in its subfolders too, outputs
// mirroring them), or, for a folder with none of its own that is a dataset split (PanNuke and CoNIC
// arrays, MoNuSeg, CoNSeP, Lizard; docs/data.md), its samples' images under their sample names, so
// that `eval --gt` on the same split pairs them, at the resolution the dataset was released at.
std::vector<infer::InputImage> input_images(const std::string& input, const std::string& out,
                                            bool recursive) {
  std::vector<infer::InputImage> inputs;
  std::vector<std::string> files;
  try {
    files = infer::find_input_images(input, out, recursive);
  } catch (const IoError&) {
    std::error_code ec;
    if (recursive || !std::filesystem::is_directory(input, ec)) throw;
    std::string format;
    try {
      format = data::detect_format(input);
    } catch (const DataError&) {
      // A dataset's layout without its labels, or images in subfolders: say where they are.
      const std::string inner = (std::filesystem::path(input) / "images").string();
      size_t inner_images = 0, below = 0;
      try {
        if (std::filesystem::is_directory(inner, ec))
          inner_images = infer::find_input_images(inner, out).size();
        below = count_inputs(input, out, true, true);
      } catch (const std::exception&) {
      }
      throw IoError(input +
                    ": folder holds no images (.png .jpg .jpeg .tif .tiff .bmp) and is no dataset split" +
                    (inner_images > 0 ? "; its images/ folder holds " + std::to_string(inner_images) +
                                            " images: give --input " + inner
                     : below > 0 ? "; its subfolders hold " + std::to_string(below) +
                                       " images or slides: give --recursive to segment them all"
                                 : std::string()));
    }
    std::shared_ptr<const data::Dataset> dataset = data::open_dataset(input, format);
    const double mpp = dataset->microns_per_pixel();
    log::info("segment: ", input, " is a ", format, " split: its ", dataset->size(), " images",
              mpp > 0 ? " (released at " + std::to_string(mpp).substr(0, 4) + " um/px)" : std::string());
    for (size_t i = 0; i < dataset->size(); ++i)
      inputs.push_back({input + ": " + dataset->name(i), dataset->name(i),
                        [dataset, i] { return dataset->get(i).image; }, mpp});
    return inputs;
  }
  for (const auto& f : files)
    inputs.push_back({f, recursive ? output_stem_below(input, f) : std::string(), nullptr, 0});
  std::error_code ec;
  if (!recursive && std::filesystem::is_directory(input, ec)) {
    const size_t below = count_inputs(input, out, true, false) - count_inputs(input, out, false, false);
    if (below > 0)
      log::info("segment: ", below, " more images in subfolders of ", input,
                " are left out; --recursive segments them too");
  }
  return inputs;
}

// The cohort's table (segment_summary.csv): a row per slide of `cohort` whose outputs are done,
// from its summary JSON (those of other shards' jobs too, so that the job that ends last leaves
// every row), one per slide of this job that failed, and the rows other jobs wrote for theirs.
class SlideTable {
 public:
  // own: the slides of this job; stem_of: a slide's output stem.
  SlideTable(const std::string& out_dir, std::vector<std::string> cohort, const std::vector<std::string>& own,
             std::function<std::string(const std::string&)> stem_of)
      : out_dir_(out_dir),
        cohort_(std::move(cohort)),
        stem_of_(std::move(stem_of)),
        table_(output_path_inside(out_dir, infer::kRunSummaryFile)) {
    for (const std::string& slide : cohort_) stems_.push_back(stem_of_(slide));
    for (const std::string& slide : own) own_stems_.push_back(stem_of_(slide));
  }
  void failed(const std::string& slide, const std::string& method, const std::string& cause) {
    failed_.insert(slide);
    table_.set(stem_of_(slide),
               {{"image", slide}, {"status", "failed"}, {"method", method}, {"error", cause}});
  }
  // Writes the table after this job has done `slide` (segmented, skipped or failed it).
  void write(const std::string& slide) {
    from_json_.erase(stem_of_(slide));  // its summary may be new
    // The rows other jobs wrote since (their failures), then every finished slide's. A summary is
    // read once; only the slide just done is read again.
    table_.reload_others(own_stems_);
    for (size_t i = 0; i < cohort_.size(); ++i) {
      if (failed_.count(cohort_[i])) continue;
      auto known = from_json_.find(stems_[i]);
      if (known == from_json_.end()) {
        const std::string json = stem_output_path(out_dir_, stems_[i], "_summary.json");
        std::error_code ec;
        if (!std::filesystem::exists(json, ec)) continue;
        try {
          known = from_json_.emplace(stems_[i], infer::slide_summary_row(json)).first;
        } catch (const std::exception& e) {
          log::warn(first_line(e.what()), "; no row for it in ", table_.path());
          continue;
        }
      }
      table_.set(stems_[i], known->second);
    }
    table_.write(stems_);
  }
  const std::string& path() const { return table_.path(); }

 private:
  std::string out_dir_;
  std::vector<std::string> cohort_, stems_, own_stems_;
  std::function<std::string(const std::string&)> stem_of_;
  infer::RunSummary table_;
  std::set<std::string> failed_;
  std::map<std::string, infer::RunSummaryRow> from_json_;  // rows read from slide summaries, by stem
};

// Two inputs whose outputs would overwrite each other: OptionError naming both.
void check_unique_stems(const std::vector<std::string>& inputs,
                        const std::function<std::string(const std::string&)>& stem_of) {
  std::map<std::string, std::string> by_stem;
  for (const std::string& input : inputs) {
    auto [it, fresh] = by_stem.emplace(stem_of(input), input);
    if (!fresh)
      throw OptionError(input + " and " + it->second + " share the name \"" + it->first +
                        "\", so their outputs would overwrite each other; rename one");
  }
}

// Slides one by one; a failing slide is recorded and the rest go on (unless it is the only input).
// cohort: every slide of the manifest or folder (all shards), for the table; none for one slide.
// stem_of: a slide's output stem (output_path.h).
int run_slides(const std::vector<std::string>& slides, infer::Segmenter& segmenter,
               const infer::SlideRunOptions& o, bool stop_on_error, const std::vector<std::string>& cohort,
               const std::function<std::string(const std::string&)>& stem_of) {
  std::vector<std::pair<std::string, std::string>> failures;
  std::optional<SlideTable> table;
  if (!cohort.empty()) table.emplace(o.out_dir, cohort, slides, stem_of);
  int done = 0, skipped = 0;
  long long nuclei = 0;
  for (const std::string& slide : slides) {
    try {
      infer::SlideReport r = infer::run_slide(slide, segmenter, o, stem_of(slide));
      if (r.skipped) {
        ++skipped;
        if (table) table->write(slide);
        continue;
      }
      ++done;
      nuclei += r.nuclei;
      const auto& t = r.times;
      log::info(slide, ": ", r.nuclei, " nuclei in ", r.tissue_tiles, " of ", r.tiles, " tiles (", r.tissue_mm2,
                " mm2 tissue), ", t.wall, " s (read ", t.read, ", pre ", t.preprocess, ", model ", t.model, ", post ",
                t.postprocess, ", write ", t.write, ")");
    } catch (const std::exception& e) {
      if (stop_on_error) throw;
      std::string cause = first_line(e.what());
      if (cause.rfind(slide + ": ", 0) == 0) cause = cause.substr(slide.size() + 2);
      log::warn(slide, ": failed: ", cause);
      failures.emplace_back(slide, cause);
      if (table) table->failed(slide, segmenter.name(), cause);
    }
    if (table) table->write(slide);
  }
  if (table) log::info("segment: a row per slide in ", table->path());
  log::info("segment: ", done, " slides segmented, ", skipped, " skipped (outputs existed), ", failures.size(),
            " failed; ", nuclei, " nuclei; outputs in ", o.out_dir);
  if (failures.empty()) return 0;
  std::cerr << "nucleisam: " << failures.size() << " of " << slides.size() << " slides failed:\n";
  for (const auto& [slide, cause] : failures) std::cerr << "  " << slide << ": " << cause << '\n';
  return 1;
}

CommandRegistration reg(
    "segment", "Segment nuclei in an image or a folder of images (GeoJSON for QuPath, CSV, label TIFF, overlay)",
    [](CLI::App& app) {
      auto a = std::make_shared<SegmentArgs>();
      app.add_option("-i,--input", a->input,
                     "Image file, folder of images (.png .jpg .tif ...), whole-slide image (.svs .ndpi .mrxs "
                     ".scn, tiled TIFF), or a dataset split (PanNuke, CoNIC, MoNuSeg, CoNSeP, Lizard)");
      app.add_option("-o,--out", a->out, "Output folder (created if missing)")->required();
      // The methods come from the segmenter registry (infer/segmenter_registry.h): other code adds
      // one without editing this file.
      std::vector<std::string> names;
      std::string methods;
      for (const auto& e : infer::segmenters()) {
        names.push_back(e.name);
        methods += "\n  " + e.name + ": " + e.description;
        if (e.needs.model_file) methods += " (needs --model-file)";
        if (e.needs.sam_checkpoint) methods += " (needs --sam-checkpoint)";
      }
      app.add_option("--model", a->model,
                     "A shipped model (he-nuclei, he-nuclei-classes), a model file (.safetensors from "
                     "`nucleisam train`), or a method:" + methods)
          ->capture_default_str();
      app.add_option("--model-file", a->model_file, "Trained weights, for methods that need them");
      app.add_option("--sam-checkpoint", a->sam_checkpoint,
                     "Official SAM checkpoint, for methods and SAM-guided models that need one");
      app.add_option("--precision", a->precision,
                     "Model arithmetic: fp32, bf16, or auto (bf16 where it is faster on this CPU: AMX, or "
                     "AMD's AVX-512-BF16)")
          ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
          ->capture_default_str();
      app.add_option("--batch-size", a->batch_size, "Model windows run together")
          ->check(CLI::Range(1, 1024))
          ->capture_default_str();
      app.add_option(
             "--window", a->window,
             "Trained models: the network's window in pixels, a multiple of its downsampling (default: "
             "the model card's, its training size; larger windows repeat less of the overlap)")
          ->check(CLI::Range(16, 8192));
      app.add_option("--window-overlap", a->window_overlap,
                     "Trained models: overlap of those windows in pixels (default: the model card's)")
          ->check(CLI::Range(0, 8192));
      app.add_option("--tta", a->tta,
                     "Trained models: average each window over this many mirrored / turned views (1, 2, 4, 8; each "
                     "view costs one more pass)")
          ->check(CLI::IsMember({1, 2, 4, 8}))
          ->capture_default_str();
      app.add_option("--min-area", a->min_area, "Smallest nucleus kept, in pixels")
          ->check(CLI::Range(1, 1 << 30))
          ->capture_default_str();
      app.add_option("--split-depth", a->split_depth,
                     "Watershed depth (pixels) needed to split touching nuclei; 0 disables splitting")
          ->check(CLI::Range(0.0f, 1000.0f))
          ->capture_default_str();
      app.add_option("--threshold-scale", a->threshold_scale,
                     "Multiplies the Otsu hematoxylin threshold (>1 stricter)")
          ->check(CLI::Range(0.1f, 10.0f))
          ->capture_default_str();
      CLI::Option* formats_option =
          app.add_option(
                 "--formats", a->formats,
                 "Outputs to write: any of geojson,csv,labels,overlay (slides: labels only when named here), "
                 "and summary: segment_summary.csv, a row per image or slide of a folder, split or cohort")
              ->capture_default_str();
      app.add_option(
             "--tile-size", a->tile_size,
             "Segment in square windows of this many pixels and stitch them (0: whole image, or "
             "equal tiles of at most 4096 when it is larger than 4096 x 4096 at the model's resolution)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_option("--tile-overlap", a->tile_overlap,
                     "Overlap between windows in pixels (at least twice the largest nucleus diameter)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_flag("--recursive", a->recursive,
                   "Folders: the images (or slides) in their subfolders too, at any depth; outputs go to the "
                   "same subfolders of --out");
      app.add_flag("--overwrite", a->overwrite, "Redo images whose outputs already exist (default: skip them)");
      app.add_option(
             "--mpp", a->mpp,
             "Microns per pixel of the input: of a slide's level 0 (overriding or supplying the slide's), or "
             "of the images (resampled to the model's resolution and back); default: what each file or "
             "slide records, else judged from their nuclei (--unknown-mpp)")
          ->check(CLI::Range(1e-4, 1e3));
      app.add_option(
             "--unknown-mpp", a->unknown_mpp,
             "Images and slides that record no resolution (without --mpp): estimate (a sample's nuclei, a "
             "slide's from a few tissue regions, decide between the model's resolution, half its "
             "magnification and twice it, e.g. 40x, 20x or 80x) or model (taken to be at the model's)")
          ->check(CLI::IsMember({"estimate", "model"}))
          ->capture_default_str();
      add_stain_options(app, a->stains);
      app.add_option("--tissue-mask", a->tissue_mask,
                     "Slides: segment only this region (an image stretched over the slide, non-zero = tissue, or a "
                     "GeoJSON of polygons in level-0 pixels) instead of detecting tissue");
      app.add_flag("--process-all", a->process_all, "Slides: segment every tile, tissue or not");
      app.add_option("--manifest", a->manifest, "A cohort: a text file listing one slide per line (instead of --input)");
      app.add_option("--shard", a->shard,
                     "With --manifest: process share i of N (\"i/N\", 0 <= i < N; slide k goes to share k mod N), or "
                     "\"auto\" from a Slurm job array or a Kubernetes indexed Job");
      return [a, formats_option]() {
        remove_stale_temporaries(a->out);  // of an earlier run of this command killed mid-write
        infer::OutputFormats formats = infer::parse_output_formats(a->formats, true);
        infer::SegmenterOptions options;
        options.min_area = a->min_area;
        options.split_depth = a->split_depth;
        options.threshold_scale = a->threshold_scale;
        options.model_file = a->model_file;
        options.sam_checkpoint = a->sam_checkpoint;
        options.device = global_options().device;
        options.precision = a->precision;
        options.batch_size = a->batch_size;
        options.tta = a->tta;
        options.window = a->window;
        options.window_overlap = a->window_overlap;
        // A registered method by name; anything else is a trained model (shipped name or file).
        bool registered = false;
        for (const auto& e : infer::segmenters()) registered = registered || e.name == a->model;
        std::string method = a->model;
        if (!registered) {
          if (!a->model_file.empty()) throw UsageError("--model " + a->model + " is a model already; drop --model-file");
          options.model_file = predict::find_model_file(a->model);
          method = "trained";
        }
        if (method != "trained" && (a->window > 0 || a->window_overlap >= 0))
          log::warn("segment: --window and --window-overlap apply to trained models; ", method,
                    " ignores them");
        StainNormalization stains = stain_normalization(a->stains);
        if (a->input.empty() == a->manifest.empty()) throw UsageError("give either --input or --manifest");
        if (!a->shard.empty() && a->manifest.empty()) throw UsageError("--shard needs --manifest");
        if (!a->tissue_mask.empty() && a->process_all) throw UsageError("--tissue-mask and --process-all exclude each other");
        infer::SlideRunOptions slide_options;
        slide_options.out_dir = a->out;
        slide_options.tile_size = a->tile_size > 0 ? a->tile_size : 1024;
        slide_options.tile_overlap = a->tile_overlap;
        slide_options.mpp = a->mpp;
        slide_options.tissue = !a->tissue_mask.empty() ? infer::TissueSource::mask
                               : a->process_all        ? infer::TissueSource::all
                                                       : infer::TissueSource::detect;
        slide_options.tissue_mask = a->tissue_mask;
        slide_options.geojson = formats.geojson;
        slide_options.csv = formats.csv;
        slide_options.thumbnail = formats.overlay;
        // A slide's label pyramid is large: written when --formats names it, not by default.
        slide_options.labels = formats.labels && formats_option->count() > 0;
        slide_options.overwrite = a->overwrite;
        slide_options.estimate_unknown_mpp = a->unknown_mpp == "estimate";
        // The method, and the stain range it brings (its card's), for slides and images alike.
        auto build_method = [&] {
          std::unique_ptr<infer::Segmenter> segmenter = infer::build_segmenter(method, options);
          slide_options.stains = stains = with_method_range(stains, *segmenter);
          return segmenter;
        };
        auto image_run = [&] {
          infer::SegmentRunOptions run;
          run.out_dir = a->out;
          run.formats = formats;
          run.overwrite = a->overwrite;
          run.tile_size = a->tile_size;
          run.tile_overlap = a->tile_overlap;
          run.mpp = a->mpp;
          run.estimate_unknown_mpp = a->unknown_mpp == "estimate";
          run.stains = stains;
          run.summary = formats.summary;  // a folder or split: segment_summary.csv
          return run;
        };

        std::vector<std::string> slides, cohort;  // this job's slides; all of the manifest's or folder's
        bool single_slide = false;
        std::string stem_root;  // a folder's slides: their stems mirror their folders below it
        const auto stem_of = [&stem_root](const std::string& path) {
          return stem_root.empty() ? output_stem(path) : output_stem_below(stem_root, path);
        };
        if (a->recursive && !a->manifest.empty())
          throw UsageError("--recursive applies to a folder (--input), not to --manifest");
        if (a->recursive && !std::filesystem::is_directory(a->input))
          throw UsageError("--recursive takes a folder as --input; " + a->input + " is not one");
        if (!a->manifest.empty()) {
          slides = cohort = infer::read_manifest(a->manifest);
          if (!a->shard.empty()) {
            const infer::Shard shard = infer::parse_shard(a->shard, [](const char* n) { return std::getenv(n); });
            slides = infer::shard_slides(slides, shard);
            log::info("segment: shard ", shard.index, "/", shard.count, ": ", slides.size(), " slides");
          }
        } else if (io::Slide::has_slide_extension(a->input) ||
                   (std::filesystem::is_regular_file(a->input) && io::Slide::is_slide(a->input))) {
          slides = {a->input};
          single_slide = true;
        } else if (std::filesystem::is_directory(a->input)) {
          // Slides in a folder (by extension; tiled .tif files there are taken as images).
          slides = infer::list_input_files(a->input, a->out, a->recursive, [](const std::string& name, bool) {
            return io::Slide::has_slide_extension(name);
          });
          stem_root = a->input;
          check_unique_stems(slides, stem_of);
          cohort = slides;
        }
        if (!a->manifest.empty() || single_slide) {
          std::unique_ptr<infer::Segmenter> segmenter = build_method();
          return run_slides(slides, *segmenter, slide_options, single_slide,
                            formats.summary ? cohort : std::vector<std::string>{}, stem_of);
        }
        if (!slides.empty()) {
          // A folder with slides, and perhaps images: the slides first, then the images.
          std::vector<std::string> images;
          try {
            images = infer::find_input_images(a->input, a->out, a->recursive);
          } catch (const IoError&) {  // no images, only slides
          }
          std::vector<std::string> both = slides;
          both.insert(both.end(), images.begin(), images.end());
          check_unique_stems(both, stem_of);
          std::unique_ptr<infer::Segmenter> segmenter = build_method();
          int code = run_slides(slides, *segmenter, slide_options, false,
                                formats.summary ? cohort : std::vector<std::string>{}, stem_of);
          if (images.empty()) return code;
          std::vector<infer::InputImage> inputs;
          for (const auto& image : images) inputs.push_back({image, stem_of(image), nullptr, 0});
          infer::SegmentRunReport report = infer::run_segmentation(inputs, *segmenter, image_run());
          log::info("segment: ", report.segmented, " images segmented, ", report.skipped, " skipped, ",
                    report.failures.size(), " failed; ", report.nuclei, " nuclei");
          if (report.failures.empty()) return code;
          std::cerr << "nucleisam: " << report.failures.size() << " of " << images.size() << " images failed:\n";
          for (const auto& [image, cause] : report.failures) std::cerr << "  " << image << ": " << cause << '\n';
          return 1;
        }
        if (!a->tissue_mask.empty() || a->process_all)
          log::warn("segment: --tissue-mask and --process-all apply to slides only; ", a->input, " is not a slide");
        std::unique_ptr<infer::Segmenter> segmenter = build_method();

        const std::vector<infer::InputImage> images = input_images(a->input, a->out, a->recursive);
        infer::SegmentRunOptions run = image_run();
        // One named file: its failure is the command's failure, reported as one line by main.
        run.stop_on_error = images.size() == 1 && images[0].path == a->input;
        run.summary = formats.summary && !run.stop_on_error;
        infer::SegmentRunReport report = infer::run_segmentation(images, *segmenter, run);

        log::info("segment: ", report.segmented, " segmented, ", report.skipped, " skipped (outputs existed), ",
                  report.failures.size(), " failed; ", report.nuclei, " nuclei; outputs in ", a->out);
        if (report.failures.empty()) return 0;
        std::cerr << "nucleisam: " << report.failures.size() << " of " << images.size()
                  << " images failed:\n";
        for (const auto& [image, cause] : report.failures) std::cerr << "  " << image << ": " << cause << '\n';
        return 1;
      };
    });

}  // namespace
}  // namespace nucleisam::cli
