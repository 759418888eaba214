// build_network: architecture name + flat options -> network. Options are read into a config
// first and checked for leftovers before anything is allocated.
#include "models/networks.h"

#include "nucleisam/errors.h"
#include "nucleisam/models/category_sam.h"

namespace nucleisam::models {
namespace {

const std::vector<std::string> kArchitectures = {"unet", "unet3plus", "eunet3plus", "sam-eunet3plus",
                                                "category-sam"};

int64_t positive(const ModelOptions& o, const std::string& key, int64_t fallback, int64_t max) {
  const int64_t v = o.integer(key, fallback);
  if (v < 1 || v > max)
    throw ModelError("model option '" + key + "': expected 1.." + std::to_string(max) + ", found " +
                     std::to_string(v));
  return v;
}

int64_t read_depth(const ModelOptions& o) {
  const int64_t v = o.integer("depth", 5);
  if (v < 2 || v > 8)
    throw ModelError("model option 'depth': expected 2..8 levels, found " + std::to_string(v));
  return v;
}

double probability(const ModelOptions& o, const std::string& key, double fallback) {
  const double v = o.number(key, fallback);
  if (!(v >= 0.0 && v < 1.0))
    throw ModelError("model option '" + key + "': expected a probability in [0, 1), found " +
                     std::to_string(v));
  return v;
}

}  // namespace

std::vector<std::string> network_architectures() { return kArchitectures; }

SegmentationNetwork build_network(const std::string& arch, int64_t out_channels,
                                  const ModelOptions& options) {
  if (out_channels <= 0)
    throw ModelError(arch + ": out_channels must be positive, got " + std::to_string(out_channels));
  enum class Kind { unet, unet3plus, category_sam } kind;
  CategorySamConfig category;
  int64_t width = 0, depth = 0;
  UNet3PlusConfig config;
  if (arch == "unet") {
    kind = Kind::unet;
    width = positive(options, "width", 32, 1024);
    depth = read_depth(options);
  } else if (arch == "unet3plus" || arch == "eunet3plus" || arch == "sam-eunet3plus") {
    kind = Kind::unet3plus;
    config.width = positive(options, "width", 32, 1024);
    config.depth = read_depth(options);
    if (arch != "unet3plus") {
      config.activation = options.choice("activation", "glu", {"glu", "relu"}) == "glu"
                              ? Activation::glu : Activation::relu;
      config.pooling = options.choice("pool", "maxblur", {"maxblur", "max"}) == "maxblur"
                           ? Pooling::maxblur : Pooling::max;
      config.dropout = probability(options, "dropout", 0.3);
    }
    if (arch == "sam-eunet3plus") {
      XGatedFusionOptions fusion;
      fusion.guidance_channels = positive(options, "guidance_channels", 256, 1 << 16);
      fusion.reduction_channels = positive(options, "reduction_channels", 48, 1 << 16);
      fusion.heads = positive(options, "attention_heads", 1, 1024);
      fusion.excitation = options.choice("excitation", "glu", {"glu", "sigmoid"}) == "glu"
                              ? Excitation::glu : Excitation::sigmoid;
      fusion.residual = options.flag("residual", false);
      fusion.dropout = probability(options, "fusion_dropout", 0.3);
      config.advanced = options.flag("advanced", false);
      config.fusion = fusion;
    }
  } else if (arch == "category-sam") {
    kind = Kind::category_sam;
    category = CategorySamConfig::from_options(out_channels, options);
  } else {
    std::string known;
    for (const auto& a : kArchitectures) known += (known.empty() ? "" : ", ") + a;
    throw ModelError("unknown model architecture '" + arch + "'; known: " + known);
  }
  const auto unused = options.unused();
  if (!unused.empty()) {
    std::string names;
    for (const auto& u : unused) names += (names.empty() ? "'" : ", '") + u + "'";
    throw ModelError("model option(s) " + names + " not used by architecture '" + arch +
                     "' (misspelt, or meant for another architecture?)");
  }
  if (kind == Kind::category_sam) return std::make_shared<CategorySamImpl>(category);
  if (kind == Kind::unet) return std::make_shared<UNetImpl>(out_channels, width, depth);
  return std::make_shared<UNet3PlusImpl>(arch, out_channels, config);
}

}  // namespace nucleisam::models
