// Registers "trained" in the segmenter table: any model file written by `nucleisam train` (or a
// shipped model), SAM-guided ones with --sam-checkpoint. Lives in the CLI so the static registration
// is linked into the executable (see infer/segmenter_registry.h).
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/segmenter_registry.h"
#include "nucleisam/log.h"
#include "nucleisam/predict/category_sam_segmenter.h"
#include "nucleisam/predict/model_segmenter.h"
#include "nucleisam/predict/sam_guidance.h"

namespace nucleisam::cli {
namespace {

std::unique_ptr<infer::Segmenter> build_trained(const infer::SegmenterOptions& o) {
  predict::ModelSegmenterOptions options;
  options.precision = resolve_precision(o.precision, o.device == "cuda");
  options.batch_size = o.batch_size;
  options.tta = o.tta;
  options.tile_size = o.window;
  options.tile_overlap = o.window_overlap;
  models::LoadedModel model = models::load_model(o.model_file);
  if (model.card.heads.categories) {  // category-descriptor SAM: its own sliding window (method 2)
    if (o.window > 0 || o.window_overlap >= 0)
      throw OptionError(o.model_file +
                        " is a category-SAM model: its window is its SAM input size; "
                        "--window and --window-overlap apply to the U-Net family");
    predict::CategorySamSegmenterOptions co;
    co.precision = options.precision;
    co.batch_size = o.batch_size;
    co.tta = o.tta;
    log::info("segment: category-SAM model ", model.card.name, " from ", o.model_file, " (", co.precision, ")");
    return std::make_unique<predict::CategorySamSegmenter>(model.network, model.card, co);
  }
  if (model.network->needs_guidance()) {
    if (o.sam_checkpoint.empty())
      throw OptionError(o.model_file + " is SAM-guided: give the SAM checkpoint it was trained with (--sam-checkpoint)");
    auto it = model.card.info.find("sam.input_size");
    const int input_size = it == model.card.info.end() ? 1024 : std::stoi(it->second);
    auto sam = std::make_shared<predict::SamGuidance>(o.sam_checkpoint, input_size);
    auto type = model.card.info.find("sam.model_type");
    if (type != model.card.info.end() && type->second != sam->model_type())
      log::warn("segment: ", o.model_file, " was trained with a ", type->second, " SAM encoder; ", o.sam_checkpoint,
                " is ", sam->model_type());
    options.guidance = [sam](const torch::Tensor& rgb) { return sam->embed(rgb); };
  }
  log::info("segment: model ", model.card.name, " from ", o.model_file, " (", options.precision, ")");
  return std::make_unique<predict::ModelSegmenter>(model.network, model.card, options);
}

infer::SegmenterRegistration reg({"trained", "a model trained by `nucleisam train` (U-Net family, SAM-guided eU-Net3+, category SAM)",
                                  {/*model_file=*/true}, build_trained});

}  // namespace
}  // namespace nucleisam::cli
