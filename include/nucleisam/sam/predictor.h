// SamPredictor: the official interactive use of SAM. set_image resizes (Pillow-exact bilinear,
// longest side -> input size), normalises, pads and encodes once; predict turns point / box / mask
// prompts given in original-image pixels into masks at the original resolution.
#pragma once

#include <torch/torch.h>

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "nucleisam/raster.h"
#include "nucleisam/sam/sam_model.h"

namespace nucleisam::sam {

struct SamPoint {
  double x = 0, y = 0;  // pixels of the original image (column, row)
  int label = 1;        // 1 foreground, 0 background
};

struct SamPrompt {
  std::vector<SamPoint> points;
  std::optional<std::array<double, 4>> box;  // x0, y0, x1, y1 in original pixels
  // Low-res mask logits from a previous prediction: (1 x) 1 x 4g x 4g (256 x 256 at input 1024).
  torch::Tensor mask_input;
  bool multimask = true;  // 3 masks (tokens 1..3) instead of 1 (token 0)
};

struct SamPrediction {
  torch::Tensor masks;           // 1 x C x H x W bool, original image size, on the CPU
  torch::Tensor iou;             // 1 x C float32 predicted IoU, CPU
  torch::Tensor low_res_logits;  // 1 x C x 4g x 4g float32, CPU (feed back as mask_input)
};

// The official ResizeLongestSide size: scale = long_side / max(h, w), each side
// int(side * scale + 0.5). Returns (height, width).
std::pair<int, int> resized_shape(int height, int width, int long_side);

// (pixel - mean) / std per RGB channel in float32, then zero padding on the bottom/right to
// input_size x input_size (padding after normalisation, as the official preprocess does).
// Returns a 1 x 3 x S x S float32 CPU tensor. The image must fit in S x S.
torch::Tensor normalize_and_pad(const Image& resized, int input_size);

class SamPredictor {
 public:
  // input_size: side of the square encoder input, a multiple of 16 (1024 is the official size;
  // other sizes resample the encoder's position embeddings, see docs/sam.md).
  // precision: "fp32" (the official code's arithmetic; the parity tests) or "bf16": the image
  // encoder runs under bfloat16 autocast (matrix products and convolutions in bf16, which AMX /
  // AVX-512-BF16 CPUs run several times faster), its embedding is returned in float32, and the
  // prompt encoder and mask decoder stay float32. Accuracy against fp32: docs/sam.md.
  explicit SamPredictor(Sam model, int input_size = 1024, const std::string& precision = "fp32");

  void set_image(const Image& rgb);
  // Skips the resize: `resized` is the image already resized to resized_shape(original).
  void set_resized_image(const Image& resized, int original_height, int original_width);
  // Reuses embeddings computed earlier for an image of the given original size (1 x 256 x g x g).
  // Throws DataError when the shape does not match this predictor's input size.
  void set_embedding(const torch::Tensor& embedding, int original_height, int original_width);

  bool has_image() const { return embedding_.defined(); }
  const torch::Tensor& embedding() const { return embedding_; }  // on the model's device
  int input_size() const { return input_size_; }
  const std::string& precision() const { return precision_; }
  int original_height() const { return orig_h_; }
  int original_width() const { return orig_w_; }
  int resized_height() const { return resized_h_; }
  int resized_width() const { return resized_w_; }
  Sam& model() { return model_; }

  // Throws DataError for a prompt it cannot use (no image set, bad mask_input shape, bad label).
  SamPrediction predict(const SamPrompt& prompt) const;
  // Prompts already in the input frame, on any device: points B x N x 2, labels B x N,
  // boxes B x 4, masks B x 1 x 4g x 4g (any may be undefined). Returns low-res logits and IoU on
  // the model's device. Throws DataError naming the tensors' shapes when they do not fit.
  std::pair<torch::Tensor, torch::Tensor> predict_low_res(const torch::Tensor& points,
                                                          const torch::Tensor& labels,
                                                          const torch::Tensor& boxes,
                                                          const torch::Tensor& masks, bool multimask) const;
  // Upsample low-res logits to the input size, crop the padding, resize to the original size
  // (bilinear, align_corners=False). Returns logits; threshold at 0 for masks.
  torch::Tensor postprocess_masks(const torch::Tensor& low_res_logits) const;
  // x * (resized_w / original_w), y * (resized_h / original_h) in double (the official apply_coords).
  std::array<double, 2> to_input_frame(double x, double y) const;

 private:
  torch::Device device() const;
  mutable Sam model_;  // forward passes are not const in LibTorch; predict does not change the model
  int input_size_;
  std::string precision_;
  torch::Tensor embedding_;
  int orig_h_ = 0, orig_w_ = 0, resized_h_ = 0, resized_w_ = 0;
};

}  // namespace nucleisam::sam
