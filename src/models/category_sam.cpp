// Category-descriptor SAM (see models/category_sam.h and docs/method2.md).
#include "nucleisam/models/category_sam.h"

#include <ATen/autocast_mode.h>

#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"

namespace nucleisam::models {
namespace F = torch::nn::functional;
namespace {

const std::vector<std::string> kEncoders = {"vit_b", "vit_l", "vit_h", "vit_t", "vit"};
const std::vector<std::string> kTrainable = {"adapters", "decoder", "encoder", "all"};

int64_t ranged(const ModelOptions& o, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  const int64_t v = o.integer(key, fallback);
  if (v < lo || v > hi)
    throw ModelError("model option '" + key + "': expected " + std::to_string(lo) + ".." + std::to_string(hi) +
                     ", found " + std::to_string(v));
  return v;
}

std::vector<int> parse_indexes(const std::string& key, const std::string& text) {
  std::vector<int> out;
  if (text.empty()) return out;
  std::stringstream s(text);
  std::string part;
  while (std::getline(s, part, ',')) {
    char* end = nullptr;
    const long v = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || end != part.c_str() + part.size() || v < 0)
      throw ModelError("model option '" + key + "': expected comma-separated block indexes, found '" + text + "'");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

std::string join_indexes(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// The prompt encoder's positional encodings are sines and cosines of products that bf16 would
// round by tenths of a radian: they are computed with autocast off.
class CpuAutocastOff {
 public:
  CpuAutocastOff() : previous_(at::autocast::is_cpu_enabled()) { at::autocast::set_cpu_enabled(false); }
  ~CpuAutocastOff() { at::autocast::set_cpu_enabled(previous_); }
  CpuAutocastOff(const CpuAutocastOff&) = delete;
  CpuAutocastOff& operator=(const CpuAutocastOff&) = delete;

 private:
  bool previous_;
};

}  // namespace

CategorySamConfig CategorySamConfig::from_options(int64_t categories, const ModelOptions& o) {
  CategorySamConfig c;
  if (categories < 3)
    throw ModelError("category-sam: needs at least 3 categories (background, a nucleus type, boundary), got " +
                     std::to_string(categories));
  c.categories = categories;
  c.encoder = o.choice("encoder", "vit_b", kEncoders);
  if (c.encoder == "vit_b") c.vit = sam::ImageEncoderViTConfig::vit_b();
  else if (c.encoder == "vit_l") c.vit = sam::ImageEncoderViTConfig::vit_l();
  else if (c.encoder == "vit_h") c.vit = sam::ImageEncoderViTConfig::vit_h();
  else if (c.encoder == "vit") {
    sam::ImageEncoderViTConfig v = sam::ImageEncoderViTConfig::vit_b();
    v.embed_dim = static_cast<int>(ranged(o, "encoder_embed_dim", v.embed_dim, 8, 4096));
    v.depth = static_cast<int>(ranged(o, "encoder_depth", v.depth, 1, 128));
    v.num_heads = static_cast<int>(ranged(o, "encoder_heads", v.num_heads, 1, 128));
    v.window_size = static_cast<int>(ranged(o, "encoder_window", v.window_size, 0, 256));
    v.img_size = static_cast<int>(ranged(o, "encoder_img_size", v.img_size, 64, 4096));
    v.global_attn_indexes = parse_indexes("encoder_global_attn", o.text("encoder_global_attn", join_indexes(v.global_attn_indexes)));
    if (v.embed_dim % v.num_heads != 0)
      throw ModelError("model option 'encoder_heads': " + std::to_string(v.num_heads) + " does not divide encoder_embed_dim " +
                       std::to_string(v.embed_dim));
    if (v.img_size % v.patch_size != 0)
      throw ModelError("model option 'encoder_img_size': must be a multiple of 16, found " + std::to_string(v.img_size));
    for (int i : v.global_attn_indexes)
      if (i >= v.depth)
        throw ModelError("model option 'encoder_global_attn': block " + std::to_string(i) + " >= encoder_depth " +
                         std::to_string(v.depth));
    c.vit = v;
  }
  c.alignment_blocks = ranged(o, "alignment_blocks", 12, 0, 256);
  c.alignment_hidden = ranged(o, "alignment_hidden", 96, 1, 8192);
  c.descriptors = ranged(o, "descriptors", 32, 1, 4096);
  c.input_size = ranged(o, "input_size", 1024, 64, 4096);
  if (c.input_size % 16 != 0)
    throw ModelError("model option 'input_size': must be a multiple of 16, found " + std::to_string(c.input_size));
  c.trainable = o.choice("trainable", "adapters", kTrainable);
  return c;
}

std::map<std::string, std::string> category_sam_encoder_options(const weights::StateDict& state,
                                                                const std::string& source) {
  if (sam::detect_encoder_family(state, source) == "vit_t") return {{"encoder", "vit_t"}};
  const sam::ImageEncoderViTConfig v = sam::ImageEncoderViTConfig::from_state_dict(state, source);
  const std::string name = v.name();
  if (name == "vit_b" || name == "vit_l" || name == "vit_h") return {{"encoder", name}};
  return {{"encoder", "vit"},
          {"encoder_embed_dim", std::to_string(v.embed_dim)},
          {"encoder_depth", std::to_string(v.depth)},
          {"encoder_heads", std::to_string(v.num_heads)},
          {"encoder_window", std::to_string(v.window_size)},
          {"encoder_img_size", std::to_string(v.img_size)},
          {"encoder_global_attn", join_indexes(v.global_attn_indexes)}};
}

InvertedResidualImpl::InvertedResidualImpl(int64_t channels, int64_t hidden) {
  namespace nn = torch::nn;
  expand = register_module("expand", nn::Conv2d(nn::Conv2dOptions(channels, hidden, 1).bias(false)));
  expand_bn = register_module("expand_bn", nn::BatchNorm2d(hidden));
  depthwise = register_module(
      "depthwise", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3).padding(1).groups(hidden).bias(false)));
  depthwise_bn = register_module("depthwise_bn", nn::BatchNorm2d(hidden));
  project = register_module("project", nn::Conv2d(nn::Conv2dOptions(hidden, channels, 1).bias(false)));
  project_bn = register_module("project_bn", nn::BatchNorm2d(channels));
  torch::NoGradGuard no_grad;
  project_bn->weight.zero_();
}

torch::Tensor InvertedResidualImpl::forward(const torch::Tensor& x) {
  auto h = torch::clamp(expand_bn(expand(x)), 0.0, 6.0);
  h = torch::clamp(depthwise_bn(depthwise(h)), 0.0, 6.0);
  return x + project_bn(project(h));
}

DomainAlignmentImpl::DomainAlignmentImpl(int64_t channels, int64_t count, int64_t hidden) {
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < count; ++i) blocks->push_back(InvertedResidual(channels, hidden));
}

torch::Tensor DomainAlignmentImpl::forward(torch::Tensor x) {
  for (const auto& b : *blocks) x = b->as<InvertedResidualImpl>()->forward(x);
  return x;
}

CategorySamImpl::CategorySamImpl(const CategorySamConfig& config) : config_(config) {
  int64_t low_level_channels = 0;
  if (config_.encoder == "vit_t") {
    sam = register_module("sam", nucleisam::sam::Sam(nucleisam::sam::TinyViTConfig::mobile_sam()));
    low_level_channels = sam->tiny_vit->config.embed_dims.at(0);
  } else {
    sam = register_module("sam", nucleisam::sam::Sam(config_.vit));
    low_level_channels = config_.vit.embed_dim;
  }
  sam->prompt_encoder->set_input_size(config_.input_size);
  domain_alignment = register_module(
      "domain_alignment", DomainAlignment(low_level_channels, config_.alignment_blocks, config_.alignment_hidden));
  // N(0, 1), as nn.Embedding (SAM's own learned point / mask tokens) starts.
  category_descriptors = register_parameter(
      "category_descriptors", torch::randn({config_.categories, config_.descriptors, int64_t{256}}));

  for (auto& p : sam->image_encoder()->parameters()) p.requires_grad_(trains_encoder());
  for (auto& p : sam->mask_decoder->parameters()) p.requires_grad_(trains_decoder());
  for (auto& p : sam->prompt_encoder->parameters()) p.requires_grad_(config_.trainable == "all");
  train(is_training());
}

void CategorySamImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!trains_encoder()) sam->image_encoder()->eval();
  if (!trains_decoder()) sam->mask_decoder->eval();
  if (config_.trainable != "all") sam->prompt_encoder->eval();
}

torch::Tensor CategorySamImpl::encode(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3)
    throw ModelError("category-sam: expects N x 3 x H x W images, got " + weights::shape_string(images.sizes()));
  torch::Tensor x = images.to(torch::kFloat32);
  if (x.size(2) != config_.input_size || x.size(3) != config_.input_size)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{config_.input_size, config_.input_size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  if (config_.encoder == "vit_t") {
    auto& tiny = sam->tiny_vit;
    return tiny->run_layers(domain_alignment->forward(tiny->embed_patches(x)));
  }
  auto& vit = sam->vit;
  auto tokens = vit->embed_patches(x);  // B,g,g,E
  tokens = domain_alignment->forward(tokens.permute({0, 3, 1, 2})).permute({0, 2, 3, 1});
  return vit->apply_neck(vit->run_blocks(tokens));
}

CategorySamOutput CategorySamImpl::decode(const torch::Tensor& embeddings, const std::vector<CategoryPoints>& points,
                                          int64_t image_size) {
  const int64_t n = embeddings.size(0), k = config_.categories, t = config_.descriptors;
  auto decoder = sam->mask_decoder;
  torch::Tensor pe;
  {
    CpuAutocastOff fp32;
    pe = sam->prompt_encoder->dense_pe();
  }
  auto descriptors = category_descriptors.to(embeddings.dtype());
  CategorySamOutput out;
  if (points.empty()) {
    // One pass for all N x K prompt sets: image n's embedding repeated for its K categories.
    auto sparse = descriptors.unsqueeze(0).expand({n, k, t, descriptors.size(2)}).reshape({n * k, t, -1});
    auto src = embeddings.repeat_interleave(k, 0);
    auto dense = sam->prompt_encoder->no_mask_dense(n * k).to(embeddings.dtype());
    auto [masks, iou] = decoder->predict_masks(src, pe, sparse, dense);
    out.masks = masks.select(1, 0).reshape({n, k, masks.size(2), masks.size(3)}).to(torch::kFloat32);
    out.iou = iou.select(1, 0).reshape({n, k}).to(torch::kFloat32);
    return out;
  }
  if (n != 1) throw ModelError("category-sam: point prompts take one image at a time, got " + std::to_string(n));
  if (image_size <= 0) throw ModelError("category-sam: point prompts need the image size");
  std::vector<torch::Tensor> masks, ious;
  for (int64_t c = 0; c < k; ++c) {
    torch::Tensor sparse = descriptors[c].unsqueeze(0);
    std::vector<float> xy;
    for (const auto& p : points) {
      if (p.category < 0 || p.category >= k)
        throw ModelError("category-sam: point prompt for category " + std::to_string(p.category) + " of " +
                         std::to_string(k));
      if (p.category != c) continue;
      const double scale = double(config_.input_size) / double(image_size);
      for (const auto& [x, y] : p.xy) {
        // The prompt encoder adds 0.5 (pixel centre) in its own input frame.
        xy.push_back(static_cast<float>((x + 0.5) * scale - 0.5));
        xy.push_back(static_cast<float>((y + 0.5) * scale - 0.5));
      }
    }
    if (!xy.empty()) {
      const int64_t m = static_cast<int64_t>(xy.size() / 2);
      auto coords = torch::from_blob(xy.data(), {1, m, 2}, torch::kFloat32).clone();
      auto labels = torch::ones({1, m}, torch::kFloat32);
      // Without a box the prompt encoder appends one padding token: drop it.
      CpuAutocastOff fp32;
      auto tokens = sam->prompt_encoder->forward(coords, labels, {}, {}).first.slice(1, 0, m);
      sparse = torch::cat({sparse, tokens.to(sparse.dtype())}, 1);
    }
    auto dense = sam->prompt_encoder->no_mask_dense(1).to(embeddings.dtype());
    auto [m, iou] = decoder->predict_masks(embeddings, pe, sparse, dense);
    masks.push_back(m.select(1, 0));
    ious.push_back(iou.select(1, 0));
  }
  out.masks = torch::stack(masks, 1).to(torch::kFloat32);
  out.iou = torch::stack(ious, 1).to(torch::kFloat32);
  return out;
}

CategorySamOutput CategorySamImpl::predict(const torch::Tensor& images, const std::vector<CategoryPoints>& points) {
  if (!points.empty() && images.size(2) != images.size(3))
    throw ModelError("category-sam: point prompts need square images, got " + weights::shape_string(images.sizes()));
  CategorySamOutput out = decode(encode(images), points, images.size(3));
  out.masks = F::interpolate(out.masks, F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{images.size(2), images.size(3)})
                                            .mode(torch::kBilinear)
                                            .align_corners(false));
  return out;
}

torch::Tensor CategorySamImpl::forward(const torch::Tensor& images, const torch::Tensor&) {
  return predict(images).masks;
}

void CategorySamImpl::load_sam_weights(const weights::StateDict& state, const std::string& source) {
  const std::string family = nucleisam::sam::detect_encoder_family(state, source);
  if ((family == "vit_t") != (config_.encoder == "vit_t"))
    throw CheckpointError(source + ": holds a " + (family == "vit_t" ? std::string("MobileSAM (vit_t)") : "ViT") +
                          " SAM, but the model's encoder is " + config_.encoder);
  if (family == "vit") {
    const auto found = nucleisam::sam::ImageEncoderViTConfig::from_state_dict(state, source);
    if (!(found == config_.vit))
      throw CheckpointError(source + ": holds a " + found.name() + " SAM encoder, but the model's encoder is " +
                            config_.vit.name());
  }
  try {
    weights::load_into(*sam, state, source, "", /*strict=*/true);
  } catch (const c10::Error& e) {
    throw CheckpointError(source + ": cannot load SAM weights (" + first_line(e.what_without_backtrace()) + ")");
  }
}

}  // namespace nucleisam::models
