// Category-descriptor SAM (method 2, paper 003; docs/method2.md): SAM with
//   - a domain alignment: N MobileNetV2 inverted-residual blocks (1x1 expansion to `hidden`
//     channels, 3x3 depthwise, 1x1 linear projection back, residual) at the encoder's low-level
//     point: between the ViT's patch embedding (+ position embedding) and its transformer blocks;
//     for MobileSAM's TinyViT between the convolutional stem (patch_embed, stride 4) and its first
//     stage (see docs/method2.md for why);
//   - K learnable 256-d descriptor tokens per category (background, nucleus types, boundary):
//     each category's tokens are the sparse prompt of one mask-decoder pass, all categories of all
//     images in one batched pass; each gives one mask logit map (the decoder's single-mask token 0)
//     and one IoU score.
// What trains is a switch (`trainable`): "adapters" (the paper: alignment + descriptors; SAM
// frozen), "decoder" (also the mask decoder), "encoder" (also the whole image encoder; decoder
// frozen), "all" (everything, for training from scratch). Frozen parameters have
// requires_grad = false and frozen submodules stay in eval mode whatever train() is called with
// (TinyViT's BatchNorm statistics never move).
//
// Precision: inside a bf16 autocast scope the encoder, the alignment and the mask decoder run
// their convolutions and matrix products in bf16 (LayerNorms take float32 inputs); the prompt
// encoder's positional encodings stay float32; masks and scores come back float32.
//
// The network's SAM lives under "sam." (official keys after it), so any SAM / MobileSAM checkpoint
// the engine reads loads with load_sam_weights; a model file holds everything.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "nucleisam/models/segmentation_model.h"
#include "nucleisam/sam/sam_model.h"

namespace nucleisam::weights {
struct StateDict;
}  // namespace nucleisam::weights

namespace nucleisam::models {

struct CategorySamConfig {
  std::string encoder = "vit_b";  // vit_b | vit_l | vit_h | vit_t (MobileSAM TinyViT) | vit (custom)
  sam::ImageEncoderViTConfig vit = sam::ImageEncoderViTConfig::vit_b();  // unused for vit_t
  int64_t categories = 3;        // background + nucleus types (>= 1) + boundary
  int64_t alignment_blocks = 12; // 0 = no alignment
  int64_t alignment_hidden = 96;
  int64_t descriptors = 32;      // tokens per category
  int64_t input_size = 1024;     // the crop is resized (bilinear) to this square side for SAM
  std::string trainable = "adapters";  // adapters | decoder | encoder | all

  // Reads and checks the options of build_network("category-sam", categories, options):
  //   encoder, encoder_embed_dim / encoder_depth / encoder_heads / encoder_global_attn ("2,5,8,11")
  //   / encoder_window / encoder_img_size (only for encoder "vit"), alignment_blocks,
  //   alignment_hidden, descriptors, input_size, trainable. Throws ModelError naming the option.
  static CategorySamConfig from_options(int64_t categories, const ModelOptions& options);
};

// The encoder options (encoder + encoder_* for a non-standard ViT) describing the SAM in a
// checkpoint, so a recipe needs only the checkpoint path. Throws CheckpointError naming source.
std::map<std::string, std::string> category_sam_encoder_options(const weights::StateDict& state,
                                                                const std::string& source);

// MobileNetV2 inverted residual with a linear bottleneck: x + BN(1x1(ReLU6(BN(dw3x3(ReLU6(BN(1x1 x))))))).
// The last BatchNorm's scale starts at zero, so a fresh block is the identity and an untrained
// alignment leaves SAM's features unchanged. NCHW in and out. Parameters: 2*C*h + 13*h + 2*C.
struct InvertedResidualImpl : torch::nn::Module {
  InvertedResidualImpl(int64_t channels, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d expand{nullptr}, depthwise{nullptr}, project{nullptr};
  torch::nn::BatchNorm2d expand_bn{nullptr}, depthwise_bn{nullptr}, project_bn{nullptr};
};
TORCH_MODULE(InvertedResidual);

struct DomainAlignmentImpl : torch::nn::Module {
  DomainAlignmentImpl(int64_t channels, int64_t blocks, int64_t hidden);
  torch::Tensor forward(torch::Tensor x);  // NCHW
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(DomainAlignment);

// Positive point prompts of one category, in the pixel frame of the images given to predict().
struct CategoryPoints {
  int64_t category = 0;
  std::vector<std::pair<float, float>> xy;
};

struct CategorySamOutput {
  torch::Tensor masks;  // N x K x 4g x 4g mask logits (g = input_size / 16)
  torch::Tensor iou;    // N x K predicted IoU per category
};

struct CategorySamImpl : SegmentationNetworkImpl {
  explicit CategorySamImpl(const CategorySamConfig& config);

  // images: N x 3 x H x W normalised (SAM's pixel mean / std). Returns N x K x H x W mask logits
  // (the decoder's masks resized bilinearly to H x W). guidance is ignored.
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& guidance) override;
  int64_t input_multiple() const override { return 16; }
  int64_t out_channels() const override { return config_.categories; }

  // The image embeddings N x 256 x g x g (resize, encoder with the alignment inserted).
  torch::Tensor encode(const torch::Tensor& images);
  // Every category decoded for every image. With `points` (only for N = 1; coordinates in an
  // image_size x image_size frame), each listed category's prompt is its descriptors followed
  // by one positive point token per point (SAM's prompt encoder, label 1).
  CategorySamOutput decode(const torch::Tensor& embeddings, const std::vector<CategoryPoints>& points = {},
                           int64_t image_size = 0);
  // encode + decode, masks resized to the images' size.
  CategorySamOutput predict(const torch::Tensor& images, const std::vector<CategoryPoints>& points = {});

  // Loads SAM's weights (image_encoder.*, prompt_encoder.*, mask_decoder.*) from an official-layout
  // state dict, strictly. CheckpointError naming `source` when the checkpoint's SAM is not the
  // configured one (e.g. a vit_l file for encoder vit_b).
  void load_sam_weights(const weights::StateDict& state, const std::string& source);

  // Keeps the frozen parts in eval mode.
  void train(bool on = true) override;

  const CategorySamConfig& config() const { return config_; }
  bool trains_encoder() const { return config_.trainable == "encoder" || config_.trainable == "all"; }
  bool trains_decoder() const { return config_.trainable == "decoder" || config_.trainable == "all"; }

  sam::Sam sam{nullptr};
  DomainAlignment domain_alignment{nullptr};
  torch::Tensor category_descriptors;  // K x T x 256

 private:
  CategorySamConfig config_;
};
TORCH_MODULE(CategorySam);

}  // namespace nucleisam::models
