// `nucleisam sam-embed`: run SAM's image encoder once and save the embedding (.npy) with a JSON
// sidecar (model type, input size, original and resized sizes), so `nucleisam sam --embedding`
// can answer many prompts without re-encoding.
#include <torch/torch.h>

#include "cli/command.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/log.h"
#include "nucleisam/sam/embedding_cache.h"
#include "nucleisam/sam/predictor.h"

namespace nucleisam::cli {
namespace {


struct EmbedOptions {
  std::string checkpoint, image, out;
  int input_size = 1024;
  std::string precision = "fp32";
};

CommandRegistration reg(
    "sam-embed", "Encode an image with SAM and save the image embedding (.npy + .json)", [](CLI::App& app) {
      auto o = std::make_shared<EmbedOptions>();
      app.add_option("--checkpoint", o->checkpoint,
                     "SAM checkpoint (.pth or .safetensors; ViT-B/L/H or MobileSAM)")
          ->required();
      app.add_option("--image", o->image, "RGB image")->required();
      app.add_option("--out", o->out, "Output embedding E.npy (a sidecar E.json is written beside it)")
          ->required();
      app.add_option("--input-size", o->input_size, "Encoder input side, a multiple of 16 (default 1024)");
      app.add_option("--precision", o->precision,
                     "Image encoder arithmetic: fp32 (default; the official code's), bf16, or auto (bf16 on "
                     "a GPU or where it is faster on this CPU: AMX, or AMD's AVX-512-BF16)");
      return [o]() {
        const std::string precision = resolve_precision(o->precision, global_options().device != "cpu");
        if (o->input_size <= 0 || o->input_size % 16 != 0)
          throw UsageError("--input-size must be a positive multiple of 16, got " +
                           std::to_string(o->input_size));
        Image image = io::read_image(o->image);
        auto model = sam::load_sam(o->checkpoint);
        model->to(torch::Device(global_options().device));
        sam::SamPredictor predictor(model, o->input_size, precision);
        log::info("encoding ", o->image, " (", image.width, "x", image.height, ") with ", model->model_type(),
                  " at input ", o->input_size, ", ", precision);
        predictor.set_image(image);
        sam::EmbeddingInfo info;
        info.model_type = model->model_type();
        info.checkpoint = o->checkpoint;
        info.image = o->image;
        info.input_size = o->input_size;
        info.precision = precision;
        info.original_height = predictor.original_height();
        info.original_width = predictor.original_width();
        info.resized_height = predictor.resized_height();
        info.resized_width = predictor.resized_width();
        sam::write_embedding(o->out, predictor.embedding(), info);
        log::info("wrote ", o->out, " and ", sam::embedding_sidecar_path(o->out));
        return 0;
      };
    });

}  // namespace
}  // namespace nucleisam::cli
