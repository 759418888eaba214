// SAM embeddings of image windows (see sam_guidance.h).
#include "nucleisam/predict/sam_guidance.h"

#include <cstring>

#include "nucleisam/errors.h"
#include "nucleisam/sam/pillow_resize.h"
#include "nucleisam/sam/predictor.h"

namespace nucleisam::predict {

SamGuidance::SamGuidance(const std::string& checkpoint, int input_size)
    : sam_(sam::load_sam(checkpoint)), input_size_(input_size) {
  if (input_size <= 0 || input_size % 16 != 0)
    throw OptionError("SAM input size must be a positive multiple of 16, got " + std::to_string(input_size));
  model_type_ = sam_->model_type();
  sam_->eval();
  for (auto& p : sam_->parameters()) p.set_requires_grad(false);
}

torch::Tensor SamGuidance::embed(const torch::Tensor& rgb_any) {
  if (rgb_any.dim() != 4 || rgb_any.size(1) != 3)
    throw ModelError("SAM guidance: windows must be N x 3 x H x W");
  const torch::Tensor rgb = rgb_any.to(torch::kCPU, torch::kFloat32).clamp(0, 255).round().to(torch::kUInt8)
                                .permute({0, 2, 3, 1}).contiguous();
  const int n = static_cast<int>(rgb.size(0)), h = static_cast<int>(rgb.size(1)), w = static_cast<int>(rgb.size(2));
  const auto [rh, rw] = sam::resized_shape(h, w, input_size_);
  std::vector<torch::Tensor> inputs;
  for (int k = 0; k < n; ++k) {
    Image window(h, w, 3);
    std::memcpy(window.data.data(), rgb[k].data_ptr<uint8_t>(), window.data.size());
    inputs.push_back(sam::normalize_and_pad(sam::resize_bilinear_pillow(window, rw, rh), input_size_));
  }
  torch::NoGradGuard no_grad;
  return sam_->encode_image(torch::cat(inputs, 0)).detach();
}

}  // namespace nucleisam::predict
