// SAM container and checkpoint-driven construction.
#include "nucleisam/sam/sam_model.h"

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"

namespace nucleisam::sam {
namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

SamImpl::SamImpl(const ImageEncoderViTConfig& cfg) {
  vit = register_module("image_encoder", ImageEncoderViT(cfg));
  prompt_encoder = register_module("prompt_encoder", PromptEncoder(256, cfg.img_size));
  mask_decoder = register_module("mask_decoder", MaskDecoder(256, 3));
}

SamImpl::SamImpl(const TinyViTConfig& cfg) {
  tiny_vit = register_module("image_encoder", TinyViT(cfg));
  prompt_encoder = register_module("prompt_encoder", PromptEncoder(256, cfg.img_size));
  mask_decoder = register_module("mask_decoder", MaskDecoder(256, 3));
}

torch::Tensor SamImpl::encode_image(const torch::Tensor& x) {
  return vit.is_empty() ? tiny_vit->forward(x) : vit->forward(x);
}

std::shared_ptr<torch::nn::Module> SamImpl::image_encoder() const {
  if (!vit.is_empty()) return vit.ptr();
  return tiny_vit.ptr();
}

std::string SamImpl::model_type() const { return vit.is_empty() ? "vit_t" : vit->config.name(); }

std::string detect_encoder_family(const weights::StateDict& state, const std::string& source) {
  const bool blocks = weights::has_prefix(state, "image_encoder.blocks.");
  const bool layers = weights::has_prefix(state, "image_encoder.layers.");
  if (layers && !blocks) return "vit_t";
  if (blocks && !layers) return "vit";
  if (blocks && layers)
    throw CheckpointError(
        source + ": has both image_encoder.blocks.* (ViT) and image_encoder.layers.* (TinyViT) keys");
  throw CheckpointError(source +
                        ": not a SAM checkpoint: no image_encoder.blocks.* (ViT) or image_encoder.layers.* "
                        "(MobileSAM TinyViT) keys among its " +
                        std::to_string(state.size()) + " tensors");
}

Sam build_sam(const weights::StateDict& state, const std::string& source) {
  Sam model{nullptr};
  try {
    if (detect_encoder_family(state, source) == "vit_t") {
      model = Sam(TinyViTConfig::mobile_sam());
    } else {
      model = Sam(ImageEncoderViTConfig::from_state_dict(state, source));
    }
    weights::load_into(*model, state, source, "", /*strict=*/true);
  } catch (const c10::Error& e) {
    // A checkpoint whose shapes passed our checks but not LibTorch's: name the file.
    throw CheckpointError(source + ": cannot build a SAM model from this checkpoint (" +
                          first_line(e.what_without_backtrace()) + ")");
  }
  model->eval();
  return model;
}

Sam load_sam(const std::string& path) { return build_sam(weights::read_checkpoint(path), path); }

}  // namespace nucleisam::sam
