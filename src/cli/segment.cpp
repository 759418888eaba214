// `nucleisam segment`: nuclei in an image or a folder of images -> QuPath GeoJSON, nucleus CSV,
// instance label TIFF and overlay PNG per image. Resumable; a bad image in a folder is reported at
// the end (exit 1) after the others are done.
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/segmenter_registry.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/log.h"
#include "nucleisam/predict/model_segmenter.h"

namespace nucleisam::cli {
namespace {

struct SegmentArgs {
  std::string input, out, model = "he-nuclei", formats = "geojson,csv,labels,overlay", precision = "auto";
  std::string model_file, sam_checkpoint;
  int batch_size = 4;
  int min_area = 30;
  float split_depth = 2.0f;
  float threshold_scale = 1.0f;
  bool overwrite = false;
  int tile_size = 0, tile_overlap = 64;
};

CommandRegistration reg(
    "segment", "Segment nuclei in an image or a folder of images (GeoJSON for QuPath, CSV, label TIFF, overlay)",
    [](CLI::App& app) {
      auto a = std::make_shared<SegmentArgs>();
      app.add_option("-i,--input", a->input, "Image file, or a folder of images (.png .jpg .tif ...)")->required();
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
      app.add_option("--precision", a->precision, "Model arithmetic: fp32, bf16, or auto (bf16 where the CPU has it)")
          ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
          ->capture_default_str();
      app.add_option("--batch-size", a->batch_size, "Model windows run together")
          ->check(CLI::Range(1, 1024))
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
      app.add_option("--formats", a->formats, "Outputs to write: any of geojson,csv,labels,overlay")
          ->capture_default_str();
      app.add_option("--tile-size", a->tile_size,
                     "Segment in square windows of this many pixels and stitch them (0: whole image)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_option("--tile-overlap", a->tile_overlap,
                     "Overlap between windows in pixels (at least twice the largest nucleus diameter)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_flag("--overwrite", a->overwrite, "Redo images whose outputs already exist (default: skip them)");
      return [a]() {
        infer::OutputFormats formats = infer::parse_output_formats(a->formats);
        infer::SegmenterOptions options;
        options.min_area = a->min_area;
        options.split_depth = a->split_depth;
        options.threshold_scale = a->threshold_scale;
        options.model_file = a->model_file;
        options.sam_checkpoint = a->sam_checkpoint;
        options.device = global_options().device;
        options.precision = a->precision;
        options.batch_size = a->batch_size;
        // A registered method by name; anything else is a trained model (shipped name or file).
        bool registered = false;
        for (const auto& e : infer::segmenters()) registered = registered || e.name == a->model;
        std::string method = a->model;
        if (!registered) {
          if (!a->model_file.empty()) throw UsageError("--model " + a->model + " is a model already; drop --model-file");
          options.model_file = predict::find_model_file(a->model);
          method = "trained";
        }
        std::unique_ptr<infer::Segmenter> segmenter = infer::build_segmenter(method, options);

        std::vector<std::string> images = infer::find_input_images(a->input, a->out);
        infer::SegmentRunOptions run;
        run.out_dir = a->out;
        run.formats = formats;
        run.overwrite = a->overwrite;
        run.tile_size = a->tile_size;
        run.tile_overlap = a->tile_overlap;
        // One named file: its failure is the command's failure, reported as one line by main.
        run.stop_on_error = images.size() == 1 && images[0] == a->input;
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
