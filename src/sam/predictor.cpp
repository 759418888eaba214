// SamPredictor: official pre/post-processing around the SAM modules. Everything runs without
// autograd bookkeeping and on whatever device the model's parameters are on.
#include "nucleisam/sam/predictor.h"

#include <cmath>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/models/autocast.h"  // header only: no dependency on the models library
#include "nucleisam/sam/pillow_resize.h"
#include "nucleisam/weights/state_dict.h"

namespace nucleisam::sam {
namespace F = torch::nn::functional;

namespace {

constexpr float kPixelMean[3] = {123.675f, 116.28f, 103.53f};
constexpr float kPixelStd[3] = {58.395f, 57.12f, 57.375f};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string shape_or_none(const torch::Tensor& t) { return t.defined() ? weights::shape_string(t.sizes()) : "none"; }

}  // namespace

std::pair<int, int> resized_shape(int h, int w, int long_side) {
  const double scale = long_side * 1.0 / std::max(h, w);
  return {static_cast<int>(h * scale + 0.5), static_cast<int>(w * scale + 0.5)};
}

torch::Tensor normalize_and_pad(const Image& img, int S) {
  if (img.channels != 3)
    throw DataError("SAM expects an RGB image, got " + std::to_string(img.channels) + " channels");
  if (img.height > S || img.width > S)
    throw DataError("image " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                    " does not fit the " + std::to_string(S) + "x" + std::to_string(S) + " encoder input");
  auto out = torch::zeros({1, 3, S, S}, torch::kFloat);
  float* p = out.data_ptr<float>();
  const size_t plane = static_cast<size_t>(S) * S;
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* row = img.row(y);
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c)
        p[c * plane + static_cast<size_t>(y) * S + x] =
            (static_cast<float>(row[3 * x + c]) - kPixelMean[c]) / kPixelStd[c];
  }
  return out;
}

SamPredictor::SamPredictor(Sam model, int input_size, const std::string& precision)
    : model_(std::move(model)), input_size_(input_size), precision_(precision) {
  if (input_size <= 0 || input_size % 16 != 0)
    throw OptionError("SAM input size must be a positive multiple of 16, got " + std::to_string(input_size));
  if (precision != "fp32" && precision != "bf16")
    throw OptionError("SAM precision must be fp32 or bf16, got '" + precision + "'");
  model_->prompt_encoder->set_input_size(input_size);
  model_->eval();
}

torch::Device SamPredictor::device() const { return model_->mask_decoder->iou_token->weight.device(); }

void SamPredictor::set_image(const Image& rgb) {
  if (rgb.empty() || rgb.channels != 3) throw DataError("SAM expects a non-empty RGB image");
  const auto [h, w] = resized_shape(rgb.height, rgb.width, input_size_);
  set_resized_image(resize_bilinear_pillow(rgb, w, h), rgb.height, rgb.width);
}

void SamPredictor::set_resized_image(const Image& resized, int original_h, int original_w) {
  const auto expected = resized_shape(original_h, original_w, input_size_);
  if (resized.height != expected.first || resized.width != expected.second)
    throw DataError("resized image is " + std::to_string(resized.width) + "x" +
                    std::to_string(resized.height) + ", expected " + std::to_string(expected.second) + "x" +
                    std::to_string(expected.first));
  torch::NoGradGuard no_grad;
  auto input = normalize_and_pad(resized, input_size_).to(device());
  try {
    models::Bf16AutocastScope autocast(precision_ == "bf16");
    embedding_ = model_->encode_image(input).to(torch::kFloat32);
  } catch (const c10::Error& e) {
    throw DataError("SAM cannot encode the " + std::to_string(resized.width) + "x" + std::to_string(resized.height) +
                    " resized image at input size " + std::to_string(input_size_) + " (" +
                    first_line(e.what_without_backtrace()) + ")");
  }
  orig_h_ = original_h;
  orig_w_ = original_w;
  resized_h_ = resized.height;
  resized_w_ = resized.width;
}

void SamPredictor::set_embedding(const torch::Tensor& embedding, int original_h, int original_w) {
  const int64_t g = input_size_ / 16;
  if (!embedding.defined() || embedding.dim() != 4 || embedding.size(0) != 1 || embedding.size(1) != 256 ||
      embedding.size(2) != g || embedding.size(3) != g)
    throw DataError("image embedding has shape " + (embedding.defined() ? weights::shape_string(embedding.sizes()) : "[]") +
                    ", expected [1, 256, " + std::to_string(g) + ", " + std::to_string(g) +
                    "] for input size " + std::to_string(input_size_));
  if (original_h <= 0 || original_w <= 0) throw DataError("original image size must be positive");
  embedding_ = embedding.to(device(), torch::kFloat);
  orig_h_ = original_h;
  orig_w_ = original_w;
  std::tie(resized_h_, resized_w_) = resized_shape(original_h, original_w, input_size_);
}

std::array<double, 2> SamPredictor::to_input_frame(double x, double y) const {
  return {x * (static_cast<double>(resized_w_) / orig_w_), y * (static_cast<double>(resized_h_) / orig_h_)};
}

std::pair<torch::Tensor, torch::Tensor> SamPredictor::predict_low_res(const torch::Tensor& points,
                                                                      const torch::Tensor& labels,
                                                                      const torch::Tensor& boxes,
                                                                      const torch::Tensor& masks,
                                                                      bool multimask) const {
  if (!has_image()) throw DataError("SAM predictor: no image set (call set_image or set_embedding first)");
  torch::NoGradGuard no_grad;
  auto dev = device();
  auto mv = [&](const torch::Tensor& t) { return t.defined() ? t.to(dev) : t; };
  try {
    auto [sparse, dense] = model_->prompt_encoder->forward(mv(points), mv(labels), mv(boxes), mv(masks));
    return model_->mask_decoder->forward(embedding_, model_->prompt_encoder->dense_pe(), sparse, dense,
                                         multimask);
  } catch (const c10::Error& e) {
    // Prompt tensors of the wrong shape fail inside LibTorch: say which prompt and why.
    throw DataError("SAM prompt does not fit the model (points " + shape_or_none(points) + ", labels " +
                    shape_or_none(labels) + ", boxes " + shape_or_none(boxes) + ", masks " + shape_or_none(masks) +
                    "; expected points B x N x 2, labels B x N, boxes B x 4, masks B x 1 x 4g x 4g): " +
                    first_line(e.what_without_backtrace()));
  }
}

torch::Tensor SamPredictor::postprocess_masks(const torch::Tensor& low_res) const {
  auto opts = [](int64_t h, int64_t w) {
    return F::InterpolateFuncOptions()
        .size(std::vector<int64_t>{h, w})
        .mode(torch::kBilinear)
        .align_corners(false);
  };
  auto up = F::interpolate(low_res, opts(input_size_, input_size_));
  up = up.slice(2, 0, resized_h_).slice(3, 0, resized_w_);
  return F::interpolate(up, opts(orig_h_, orig_w_));
}

SamPrediction SamPredictor::predict(const SamPrompt& prompt) const {
  if (!has_image()) throw DataError("SAM predictor: no image set (call set_image or set_embedding first)");
  torch::NoGradGuard no_grad;
  torch::Tensor points, labels, boxes, masks;
  if (!prompt.points.empty()) {
    const int64_t n = static_cast<int64_t>(prompt.points.size());
    std::vector<float> xy;
    std::vector<float> lab;
    for (const auto& p : prompt.points) {
      if (p.label != 0 && p.label != 1)
        throw DataError("point label must be 0 (background) or 1 (foreground), got " +
                        std::to_string(p.label));
      const auto t = to_input_frame(p.x, p.y);
      xy.push_back(static_cast<float>(t[0]));
      xy.push_back(static_cast<float>(t[1]));
      lab.push_back(static_cast<float>(p.label));
    }
    points = torch::from_blob(xy.data(), {1, n, 2}, torch::kFloat).clone();
    labels = torch::from_blob(lab.data(), {1, n}, torch::kFloat).clone();
  }
  if (prompt.box) {
    const auto& b = *prompt.box;
    const auto a = to_input_frame(b[0], b[1]);
    const auto c = to_input_frame(b[2], b[3]);
    boxes = torch::tensor({static_cast<float>(a[0]), static_cast<float>(a[1]), static_cast<float>(c[0]),
                           static_cast<float>(c[1])})
                .reshape({1, 4});
  }
  if (prompt.mask_input.defined()) {
    const int64_t m = 4 * (input_size_ / 16);
    auto mi = prompt.mask_input;
    if (mi.dim() == 3) mi = mi.unsqueeze(0);
    if (mi.dim() != 4 || mi.size(0) != 1 || mi.size(1) != 1 || mi.size(2) != m || mi.size(3) != m)
      throw DataError("mask input has shape " + weights::shape_string(prompt.mask_input.sizes()) + ", expected [1, " +
                      std::to_string(m) + ", " + std::to_string(m) + "]");
    masks = mi.to(torch::kFloat);
  }
  auto [low_res, iou] = predict_low_res(points, labels, boxes, masks, prompt.multimask);
  SamPrediction out;
  out.masks = (postprocess_masks(low_res) > 0.0).to(torch::kCPU);
  out.iou = iou.to(torch::kCPU);
  out.low_res_logits = low_res.to(torch::kCPU);
  return out;
}

}  // namespace nucleisam::sam
