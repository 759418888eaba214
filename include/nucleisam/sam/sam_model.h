// The SAM container: image encoder (ViT or MobileSAM's TinyViT), prompt encoder and mask decoder,
// registered as image_encoder / prompt_encoder / mask_decoder so an official checkpoint's keys
// map onto the module tree unchanged. The model type is detected from the checkpoint's keys.
#pragma once

#include <torch/torch.h>

#include <string>

#include "nucleisam/sam/image_encoder_vit.h"
#include "nucleisam/sam/mask_decoder.h"
#include "nucleisam/sam/prompt_encoder.h"
#include "nucleisam/sam/tiny_vit.h"

namespace nucleisam::weights {
struct StateDict;
}  // namespace nucleisam::weights

namespace nucleisam::sam {

struct SamImpl : torch::nn::Module {
  explicit SamImpl(const ImageEncoderViTConfig& vit_config);
  explicit SamImpl(const TinyViTConfig& tiny_vit_config);

  // Normalised, padded B x 3 x S x S input -> B x 256 x S/16 x S/16 image embeddings.
  torch::Tensor encode_image(const torch::Tensor& x);
  // The registered image encoder, whichever kind it is (for parameter counts, freezing, ...).
  std::shared_ptr<torch::nn::Module> image_encoder() const;
  bool is_tiny_vit() const { return vit.is_empty(); }
  // "vit_b", "vit_l", "vit_h", "vit_t" or a description of a non-standard ViT.
  std::string model_type() const;

  ImageEncoderViT vit{nullptr};  // exactly one of these two is set
  TinyViT tiny_vit{nullptr};
  PromptEncoder prompt_encoder{nullptr};
  MaskDecoder mask_decoder{nullptr};
};
TORCH_MODULE(Sam);

// "vit_t" when the state dict has image_encoder.layers.* (TinyViT), "vit" for
// image_encoder.blocks.* (ViT of any size). Throws CheckpointError naming source_name otherwise.
std::string detect_encoder_family(const weights::StateDict& state, const std::string& source_name);

// Builds the architecture the state dict describes, loads it strictly (every key, every shape)
// and returns it in eval mode on the CPU.
Sam build_sam(const weights::StateDict& state, const std::string& source_name);
// read_checkpoint + build_sam.
Sam load_sam(const std::string& checkpoint_path);

}  // namespace nucleisam::sam
