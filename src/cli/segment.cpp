// `nucleisam segment`: nuclei in an image or a folder of images -> QuPath GeoJSON, nucleus CSV,
// instance label TIFF and overlay PNG per image. Resumable; a bad image in a folder is reported at
// the end (exit 1) after the others are done.
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/classical_segmenter.h"
#include "nucleisam/infer/segment_run.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/log.h"
#include "nucleisam/predict/model_segmenter.h"
#include "nucleisam/predict/sam_guidance.h"

namespace nucleisam::cli {
namespace {

struct SegmentArgs {
  std::string input, out, model = "classical", formats = "geojson,csv,labels,overlay", precision = "auto";
  int batch_size = 4;
  std::string sam_checkpoint;
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
      app.add_option("--model", a->model,
                     "A trained model: a shipped name (he-nuclei, he-nuclei-classes) or a .safetensors file; "
                     "'classical' is the training-free baseline")
          ->capture_default_str();
      app.add_option("--precision", a->precision, "Model arithmetic: fp32, bf16, or auto (bf16 where the CPU has it)")
          ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
          ->capture_default_str();
      app.add_option("--sam-checkpoint", a->sam_checkpoint,
                     "SAM checkpoint for SAM-guided models (sam_vit_b_01ec64.pth, mobile_sam.pt, ...)");
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
        OutputFormats formats = parse_output_formats(a->formats);
        std::unique_ptr<Segmenter> segmenter;
        if (a->model == "classical") {
          ClassicalOptions options;
          options.split.min_area = a->min_area;
          options.split.split_depth = a->split_depth;
          options.threshold_scale = a->threshold_scale;
          segmenter = std::make_unique<ClassicalSegmenter>(options);
        } else {
          predict::ModelSegmenterOptions options;
          options.precision = resolve_precision(a->precision);
          options.batch_size = a->batch_size;
          const std::string path = predict::find_model_file(a->model);
          models::LoadedModel model = models::load_model(path);
          if (model.network->needs_guidance()) {
            if (a->sam_checkpoint.empty())
              throw UsageError(path + " is SAM-guided: give the SAM checkpoint it was trained with (--sam-checkpoint)");
            auto it = model.card.info.find("sam.input_size");
            const int input_size = it == model.card.info.end() ? 1024 : std::stoi(it->second);
            auto sam = std::make_shared<predict::SamGuidance>(a->sam_checkpoint, input_size);
            auto type = model.card.info.find("sam.model_type");
            if (type != model.card.info.end() && type->second != sam->model_type())
              log::warn("segment: ", path, " was trained with a ", type->second, " SAM encoder, ", a->sam_checkpoint,
                        " is ", sam->model_type());
            options.guidance = [sam](const torch::Tensor& rgb) { return sam->embed(rgb); };
          }
          segmenter = std::make_unique<predict::ModelSegmenter>(model.network, model.card, options);
          log::info("segment: model ", path, " (", options.precision, ")");
        }

        std::vector<std::string> images = find_input_images(a->input, a->out);
        SegmentRunOptions run;
        run.out_dir = a->out;
        run.formats = formats;
        run.overwrite = a->overwrite;
        run.tile_size = a->tile_size;
        run.tile_overlap = a->tile_overlap;
        // One named file: its failure is the command's failure, reported as one line by main.
        run.stop_on_error = images.size() == 1 && images[0] == a->input;
        SegmentRunReport report = run_segmentation(images, *segmenter, run);

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
