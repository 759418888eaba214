#include "cli/stain_options.h"

#include "cli/usage_error.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/log.h"

namespace nucleisam::cli {

void add_stain_options(CLI::App& app, StainArgs& args) {
  app.add_option("--stain-normalize", args.mode,
                 "For staining unlike the training images': off; range (an image's or slide's haematoxylin and "
                 "eosin amounts brought into the range the model learned from when outside it, colours kept); "
                 "match (every image drawn in the training images' stains, Macenko)")
      ->check(CLI::IsMember({"off", "range", "match"}))
      ->capture_default_str();
  app.add_option("--stain-reference", args.reference,
                 "With --stain-normalize match: draw in this H&E image's stains instead")
      ->check(CLI::ExistingFile);
}

StainNormalization stain_normalization(const StainArgs& args) {
  StainNormalization n;
  for (auto mode : {StainNormalization::Mode::off, StainNormalization::Mode::range, StainNormalization::Mode::match})
    if (args.mode == mode_name(mode)) n.mode = mode;
  if (args.reference.empty()) return n;
  if (n.mode != StainNormalization::Mode::match) throw UsageError("--stain-reference needs --stain-normalize match");
  const Image image = io::read_image(args.reference);
  const StainEstimate e = estimate_stains({&image});
  if (!e.ok) throw DataError(args.reference + ": cannot serve as the stain reference: " + e.why);
  log::info("target stains from ", args.reference, ": ", describe(e.stains));
  n.target = e.stains;
  return n;
}

StainNormalization with_method_range(StainNormalization normalization, const infer::Segmenter& method) {
  if (auto range = method.stain_range()) {
    normalization.range = *range;
    if (normalization.mode == StainNormalization::Mode::range)
      log::info(method.name(), ": stain amounts brought into those of its training images: haematoxylin ",
                range->low[0], "-", range->high[0], ", eosin ", range->low[1], "-", range->high[1]);
  }
  return normalization;
}

}  // namespace nucleisam::cli
