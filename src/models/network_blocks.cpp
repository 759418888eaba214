// Building blocks of the U-Net family (see network_blocks.h).
#include "models/network_blocks.h"

#include "models/glu_kernel.h"
#include "nucleisam/errors.h"

namespace nucleisam::models {

namespace F = torch::nn::functional;

MaxBlurPoolImpl::MaxBlurPoolImpl() {
  auto k = torch::tensor({1.0f, 2.0f, 1.0f});
  blur = register_buffer("blur", (k.unsqueeze(1) * k.unsqueeze(0) / 16.0f).view({1, 1, 3, 3}));
}

torch::Tensor MaxBlurPoolImpl::forward(const torch::Tensor& x) {
  auto pooled = F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2));
  const int64_t channels = pooled.size(1);
  auto kernel = blur.to(pooled.dtype()).expand({channels, 1, 3, 3});
  return F::conv2d(pooled, kernel, F::Conv2dFuncOptions().padding(1).groups(channels));
}

DownsampleImpl::DownsampleImpl(Pooling kind_) : kind(kind_) {
  if (kind == Pooling::maxblur) blur_pool = register_module("blur_pool", MaxBlurPool());
}

torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) {
  if (kind == Pooling::maxblur) return blur_pool(x);
  return F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2));
}

ConvNormActImpl::ConvNormActImpl(int64_t in_channels, int64_t out_channels, Activation activation_)
    : activation(activation_) {
  const int64_t conv_out = activation == Activation::glu ? 2 * out_channels : out_channels;
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, conv_out, 3).padding(1)));
  norm = register_module("norm", torch::nn::BatchNorm2d(conv_out));
}

namespace {

// BatchNorm then GLU as one autograd step. Backward keeps only BatchNorm's input (and its batch
// statistics): the normalised map GLU needs is recomputed from them (one multiply-add per
// element), so each unit keeps 2C channels for backward instead of 4C. The gradient handed to
// BatchNorm's backward has the input's memory layout: LibTorch 1.13's GLU backward returns
// NCHW gradients for channels-last inputs, which sends BatchNorm's backward down its per-channel
// strided loop (about 8x slower than its channels-last kernel).
struct BatchNormGlu : torch::autograd::Function<BatchNormGlu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& running_mean, const torch::Tensor& running_var,
                               bool training, double momentum, double eps) {
    auto [y, save_mean, save_invstd] =
        at::native_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps);
    if (training) {
      ctx->save_for_backward({x, weight, bias, save_mean, save_invstd});
    } else {
      ctx->save_for_backward({x, weight, bias, running_mean, running_var});
    }
    ctx->saved_data["training"] = training;
    ctx->saved_data["eps"] = eps;
    return glu_channels(y, x.suggest_memory_format());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &bias = saved[2];
    const bool training = ctx->saved_data["training"].toBool();
    const double eps = ctx->saved_data["eps"].toDouble();
    const auto layout = x.suggest_memory_format();
    // Training: the batch's mean and inverse deviation; eval: the running mean and variance.
    const torch::Tensor& mean = saved[3];
    const torch::Tensor invstd = training ? saved[4] : (saved[4] + eps).rsqrt();
    // GLU's backward through the normalised map, which the kernel recomputes from the input and
    // the statistics (in float, or double) as it goes.
    auto scale = weight.defined() ? weight * invstd : invstd;
    auto shift = bias.defined() ? bias - mean * scale : -mean * scale;
    auto grad_y = glu_channels_backward(grads[0], x, scale, shift).contiguous(layout);
    auto [grad_x, grad_weight, grad_bias] = at::native_batch_norm_backward(
        grad_y, x, weight, training ? torch::Tensor() : saved[3],
        training ? torch::Tensor() : saved[4], training ? saved[3] : torch::Tensor(),
        training ? saved[4] : torch::Tensor(), training, eps,
        {ctx->needs_input_grad(0), weight.defined() && ctx->needs_input_grad(1),
         bias.defined() && ctx->needs_input_grad(2)});
    return {grad_x, grad_weight, grad_bias, torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor glu_channels(const torch::Tensor& y, at::MemoryFormat layout) {
  // The kernel records no autograd step: a map that needs one goes through LibTorch's GLU.
  if (torch::GradMode::is_enabled() && y.requires_grad()) return at::glu(y, 1).contiguous(layout);
  return glu_channels_forward(y.contiguous(layout));
}

std::optional<ConvKernel> fold_batch_norm(const torch::nn::Conv2dImpl& conv,
                                          const torch::nn::BatchNorm2dImpl& bn) {
  if (bn.is_training() || !bn.options.track_running_stats() || torch::GradMode::is_enabled())
    return std::nullopt;
  const auto& w = conv.weight;
  auto scale = (bn.running_var + bn.options.eps()).rsqrt().to(w.scalar_type());
  if (bn.weight.defined()) scale = scale * bn.weight;
  auto shift = -bn.running_mean.to(w.scalar_type());
  if (conv.bias.defined()) shift = shift + conv.bias;
  shift = shift * scale;
  if (bn.bias.defined()) shift = shift + bn.bias;
  return ConvKernel{(w * scale.view({-1, 1, 1, 1})).contiguous(w.suggest_memory_format()), shift};
}

double count_batch_and_average_factor(torch::nn::BatchNorm2dImpl& bn) {
  const auto& opt = bn.options;
  double factor = opt.momentum().value_or(0.0);
  if (bn.is_training() && opt.track_running_stats() && bn.num_batches_tracked.defined()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    if (!opt.momentum()) factor = 1.0 / bn.num_batches_tracked.item<double>();
  }
  return factor;
}

torch::Tensor batch_norm_glu(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  const double factor = count_batch_and_average_factor(bn);
  const bool track = bn.options.track_running_stats();
  return BatchNormGlu::apply(x, bn.weight, bn.bias, track ? bn.running_mean : torch::Tensor(),
                             track ? bn.running_var : torch::Tensor(), bn.is_training() || !track,
                             factor, bn.options.eps());
}

torch::Tensor ConvNormActImpl::forward(const torch::Tensor& x) {
  if (const auto k = fold_batch_norm(*conv, *norm)) {
    auto y = F::conv2d(x, k->weight, F::Conv2dFuncOptions().padding(1).bias(k->bias));
    if (activation == Activation::relu) return torch::relu_(y);
    return glu_channels(y, y.suggest_memory_format());
  }
  if (activation == Activation::glu) return batch_norm_glu(*norm, conv(x));
  // In place: BatchNorm's backward needs its input, not its output, so ReLU may overwrite it.
  auto y = norm(conv(x));
  return torch::relu_(y);
}

ConvBlockImpl::ConvBlockImpl(int64_t in_channels, int64_t out_channels, Activation activation) {
  first = register_module("first", ConvNormAct(in_channels, out_channels, activation));
  second = register_module("second", ConvNormAct(out_channels, out_channels, activation));
}

torch::Tensor ConvBlockImpl::forward(const torch::Tensor& x) { return second(first(x)); }

EncoderImpl::EncoderImpl(int64_t width, int64_t depth, Activation activation, Pooling pooling,
                         double dropout_p) {
  int64_t in = 3;
  for (int64_t level = 0; level < depth; ++level) {
    channels.push_back(width << level);
    blocks->push_back(ConvBlock(in, channels.back(), activation));
    in = channels.back();
  }
  register_module("blocks", blocks);
  down = register_module("down", Downsample(pooling));
  if (dropout_p > 0) dropout = register_module("dropout", torch::nn::Dropout2d(dropout_p));
}

std::vector<torch::Tensor> EncoderImpl::forward(const torch::Tensor& images) {
  std::vector<torch::Tensor> features;
  torch::Tensor x = images;
  for (size_t level = 0; level < blocks->size(); ++level) {
    if (level > 0) x = down(x);
    x = blocks[level]->as<ConvBlockImpl>()->forward(x);
    features.push_back(x);
  }
  if (dropout) features.back() = dropout(features.back());
  return features;
}

void check_images(const torch::Tensor& images, int64_t multiple, const std::string& arch) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3)
    throw ModelError(arch + ": expected images N x 3 x H x W, got " +
                     (images.defined() ? c10::str(images.sizes()) : std::string("no tensor")));
  const int64_t h = images.size(2), w = images.size(3);
  if (h <= 0 || w <= 0 || h % multiple != 0 || w % multiple != 0)
    throw ModelError(arch + ": image size " + std::to_string(h) + "x" + std::to_string(w) +
                     " is not a multiple of " + std::to_string(multiple) +
                     " (2^(depth-1)); pad or crop the tile, or lower the model's depth");
}

}  // namespace nucleisam::models
