// conv3x3 of a bilinear enlargement as a small 1x1 convolution plus one enlarge-shift-sum pass
// (see upsampled_conv.h for the identity).
#include "models/upsampled_conv.h"

#include "nucleisam/errors.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <vector>

namespace nucleisam::models {

namespace F = torch::nn::functional;

namespace {

// Where output index o of an axis of `out` samples an axis of `in` under PyTorch's bilinear rule
// with align_corners = false and no scale factor: src = max(in/out * (o + 0.5) - 0.5, 0), the two
// neighbours floor(src) and the next one (the same at the last index), weights 1 - frac and frac.
template <typename acc_t>
struct AxisTaps {
  std::vector<int64_t> lo, hi;
  std::vector<acc_t> w_lo, w_hi;
  AxisTaps(int64_t in, int64_t out) : lo(out), hi(out), w_lo(out), w_hi(out) {
    const acc_t ratio = static_cast<acc_t>(in) / static_cast<acc_t>(out);
    for (int64_t o = 0; o < out; ++o) {
      if (in == out) {
        lo[o] = hi[o] = o;
        w_lo[o] = 1;
        w_hi[o] = 0;
        continue;
      }
      const acc_t src = std::max(ratio * (static_cast<acc_t>(o) + static_cast<acc_t>(0.5)) -
                                     static_cast<acc_t>(0.5),
                                 static_cast<acc_t>(0));
      lo[o] = static_cast<int64_t>(src);
      hi[o] = lo[o] + (lo[o] < in - 1 ? 1 : 0);
      w_hi[o] = src - static_cast<acc_t>(lo[o]);
      w_lo[o] = static_cast<acc_t>(1) - w_hi[o];
    }
  }
};

template <typename scalar_t>
using acc_type = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// z: N x h0 x w0 x 9C (channels-last storage), out: N x h x w x C; bias: C values or null.
template <typename scalar_t>
void forward_kernel(const scalar_t* z, const acc_type<scalar_t>* bias, scalar_t* out,
                    int64_t n_images, int64_t channels, int64_t h0, int64_t w0, int64_t h, int64_t w) {
  using acc_t = acc_type<scalar_t>;
  const AxisTaps<acc_t> rows(h0, h), cols(w0, w);
  const int64_t zc = 9 * channels;
  at::parallel_for(0, n_images * h, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(channels);
    for (int64_t ni = begin; ni < end; ++ni) {
      const int64_t n = ni / h, i = ni % h;
      const scalar_t* zn = z + n * h0 * w0 * zc;
      for (int64_t j = 0; j < w; ++j) {
        if (bias)
          std::copy(bias, bias + channels, acc.begin());
        else
          std::fill(acc.begin(), acc.end(), acc_t(0));
        for (int64_t ty = 0; ty < 3; ++ty) {
          const int64_t si = i + ty - 1;
          if (si < 0 || si >= h) continue;
          const int64_t a0 = rows.lo[si], a1 = rows.hi[si];
          const acc_t la0 = rows.w_lo[si], la1 = rows.w_hi[si];
          for (int64_t tx = 0; tx < 3; ++tx) {
            const int64_t sj = j + tx - 1;
            if (sj < 0 || sj >= w) continue;
            const int64_t b0 = cols.lo[sj], b1 = cols.hi[sj];
            const acc_t lb0 = cols.w_lo[sj], lb1 = cols.w_hi[sj];
            const int64_t off = (3 * ty + tx) * channels;
            const scalar_t* p00 = zn + (a0 * w0 + b0) * zc + off;
            const scalar_t* p01 = zn + (a0 * w0 + b1) * zc + off;
            const scalar_t* p10 = zn + (a1 * w0 + b0) * zc + off;
            const scalar_t* p11 = zn + (a1 * w0 + b1) * zc + off;
            const acc_t w00 = la0 * lb0, w01 = la0 * lb1, w10 = la1 * lb0, w11 = la1 * lb1;
            for (int64_t c = 0; c < channels; ++c)
              acc[c] += w00 * static_cast<acc_t>(p00[c]) + w01 * static_cast<acc_t>(p01[c]) +
                        w10 * static_cast<acc_t>(p10[c]) + w11 * static_cast<acc_t>(p11[c]);
          }
        }
        scalar_t* o = out + ((n * h + i) * w + j) * channels;
        for (int64_t c = 0; c < channels; ++c) o[c] = static_cast<scalar_t>(acc[c]);
      }
    }
  });
}

// The adjoint: grad_z[n, ., ., tap t] gathers grad_out at the pixels that read it. One work item
// per (image, tap) owns a disjoint slice of grad_z, so items never write the same memory.
template <typename scalar_t>
void backward_kernel(const scalar_t* grad_out, scalar_t* grad_z, int64_t n_images,
                     int64_t channels, int64_t h0, int64_t w0, int64_t h, int64_t w) {
  using acc_t = acc_type<scalar_t>;
  const AxisTaps<acc_t> rows(h0, h), cols(w0, w);
  const int64_t zc = 9 * channels;
  at::parallel_for(0, n_images * 9, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(h0 * w0 * channels);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / 9, t = item % 9, ty = t / 3, tx = t % 3;
      std::fill(acc.begin(), acc.end(), acc_t(0));
      for (int64_t si = std::max<int64_t>(0, ty - 1); si < std::min(h, h + ty - 1); ++si) {
        const int64_t i = si - ty + 1;
        const int64_t a0 = rows.lo[si], a1 = rows.hi[si];
        const acc_t la0 = rows.w_lo[si], la1 = rows.w_hi[si];
        for (int64_t sj = std::max<int64_t>(0, tx - 1); sj < std::min(w, w + tx - 1); ++sj) {
          const int64_t j = sj - tx + 1;
          const int64_t b0 = cols.lo[sj], b1 = cols.hi[sj];
          const acc_t lb0 = cols.w_lo[sj], lb1 = cols.w_hi[sj];
          const scalar_t* g = grad_out + ((n * h + i) * w + j) * channels;
          acc_t* q00 = acc.data() + (a0 * w0 + b0) * channels;
          acc_t* q01 = acc.data() + (a0 * w0 + b1) * channels;
          acc_t* q10 = acc.data() + (a1 * w0 + b0) * channels;
          acc_t* q11 = acc.data() + (a1 * w0 + b1) * channels;
          const acc_t w00 = la0 * lb0, w01 = la0 * lb1, w10 = la1 * lb0, w11 = la1 * lb1;
          for (int64_t c = 0; c < channels; ++c) {
            const acc_t v = static_cast<acc_t>(g[c]);
            q00[c] += w00 * v;
            q01[c] += w01 * v;
            q10[c] += w10 * v;
            q11[c] += w11 * v;
          }
        }
      }
      scalar_t* dst = grad_z + n * h0 * w0 * zc + t * channels;
      for (int64_t p = 0; p < h0 * w0; ++p)
        for (int64_t c = 0; c < channels; ++c)
          dst[p * zc + c] = static_cast<scalar_t>(acc[p * channels + c]);
    }
  });
}

// The bias is added in the accumulator's precision (float for bfloat16 maps), before rounding.
torch::Tensor shift_sum_forward(const torch::Tensor& z, const torch::Tensor& bias, int64_t h, int64_t w) {
  const int64_t n = z.size(0), channels = z.size(1) / 9, h0 = z.size(2), w0 = z.size(3);
  const auto zc = z.contiguous(at::MemoryFormat::ChannelsLast);
  auto out = torch::empty({n, channels, h, w}, z.options().memory_format(at::MemoryFormat::ChannelsLast));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, z.scalar_type(), "enlarge_shift_sum", [&] {
    using acc_t = acc_type<scalar_t>;
    torch::Tensor b;
    if (bias.defined()) b = bias.detach().to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    forward_kernel<scalar_t>(zc.data_ptr<scalar_t>(), b.defined() ? b.data_ptr<acc_t>() : nullptr,
                             out.data_ptr<scalar_t>(), n, channels, h0, w0, h, w);
  });
  return out;
}

torch::Tensor shift_sum_backward(const torch::Tensor& grad, int64_t h0, int64_t w0) {
  const int64_t n = grad.size(0), channels = grad.size(1), h = grad.size(2), w = grad.size(3);
  const auto gc = grad.contiguous(at::MemoryFormat::ChannelsLast);
  auto grad_z = torch::empty({n, 9 * channels, h0, w0},
                             grad.options().memory_format(at::MemoryFormat::ChannelsLast));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, grad.scalar_type(), "enlarge_shift_sum_backward", [&] {
    backward_kernel<scalar_t>(gc.data_ptr<scalar_t>(), grad_z.data_ptr<scalar_t>(), n, channels,
                              h0, w0, h, w);
  });
  return grad_z;
}

struct EnlargeShiftSum : torch::autograd::Function<EnlargeShiftSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& bias, int64_t h, int64_t w) {
    ctx->saved_data["h0"] = z.size(2);
    ctx->saved_data["w0"] = z.size(3);
    const bool has_bias = bias.numel() > 0;
    ctx->saved_data["bias_type"] = has_bias ? static_cast<int64_t>(bias.scalar_type()) : int64_t(-1);
    return shift_sum_forward(z, has_bias ? bias : torch::Tensor(), h, w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto& g = grads[0];
    torch::Tensor grad_bias;
    const int64_t bias_type = ctx->saved_data["bias_type"].toInt();
    if (bias_type >= 0 && ctx->needs_input_grad(1)) {
      const auto type = static_cast<c10::ScalarType>(bias_type);
      // Summed in float at least (bfloat16 gradients), returned in the bias's own type.
      const auto acc = type == torch::kDouble ? torch::kDouble : torch::kFloat;
      grad_bias = g.sum({0, 2, 3}, false, acc).to(type);
    }
    return {shift_sum_backward(g, ctx->saved_data["h0"].toInt(), ctx->saved_data["w0"].toInt()),
            grad_bias, torch::Tensor(), torch::Tensor()};
  }
};

bool kernel_supports(const torch::Tensor& t) {
  const auto s = t.scalar_type();
  return t.device().is_cpu() &&
         (s == torch::kFloat || s == torch::kDouble || s == torch::kBFloat16);
}

}  // namespace

torch::Tensor enlarge_shift_sum(const torch::Tensor& z, int64_t h, int64_t w, const torch::Tensor& bias) {
  if (!z.defined() || z.dim() != 4 || z.size(1) % 9 != 0 || z.size(1) == 0)
    throw ModelError("enlarge_shift_sum: expected N x 9C x h x w, got " +
                     (z.defined() ? c10::str(z.sizes()) : std::string("no tensor")));
  if (h < z.size(2) || w < z.size(3))
    throw ModelError("enlarge_shift_sum: output " + std::to_string(h) + "x" + std::to_string(w) +
                     " is smaller than the input " + c10::str(z.sizes()));
  if (!kernel_supports(z))
    throw ModelError("enlarge_shift_sum: needs a CPU float, double or bfloat16 tensor");
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != z.size(1) / 9 || !bias.device().is_cpu()))
    throw ModelError("enlarge_shift_sum: bias must be a CPU vector of " + std::to_string(z.size(1) / 9) +
                     " values, got " + c10::str(bias.sizes()));
  // autograd::Function inputs must be defined tensors: "no bias" travels as an empty one.
  return EnlargeShiftSum::apply(z, bias.defined() ? bias : torch::empty({0}, z.options()), h, w);
}

torch::Tensor conv3x3_of_enlarged(torch::nn::Conv2dImpl& conv, const torch::Tensor& x,
                                  int64_t h, int64_t w) {
  const auto& o = conv.options;
  const auto& k = *o.kernel_size();
  const auto& stride = *o.stride();
  const auto& dilation = *o.dilation();
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool shape_ok = k[0] == 3 && k[1] == 3 && stride[0] == 1 && stride[1] == 1 &&
                        dilation[0] == 1 && dilation[1] == 1 && o.groups() == 1 && pad &&
                        (**pad)[0] == 1 && (**pad)[1] == 1 &&
                        c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
  if (!shape_ok)
    throw ModelError("conv3x3_of_enlarged: needs a 3x3 convolution, stride 1, zero padding 1, one group");
  return conv3x3_of_enlarged(conv.weight, conv.bias, x, h, w);
}

torch::Tensor conv3x3_of_enlarged(const torch::Tensor& weight, const torch::Tensor& bias,
                                  const torch::Tensor& x, int64_t h, int64_t w) {
  if (!weight.defined() || weight.dim() != 4 || weight.size(2) != 3 || weight.size(3) != 3 ||
      !x.defined() || x.dim() != 4 || x.size(1) != weight.size(1))
    throw ModelError("conv3x3_of_enlarged: needs an O x C x 3 x 3 kernel and an N x C x h x w map, got " +
                     (weight.defined() ? c10::str(weight.sizes()) : std::string("no kernel")) + " and " +
                     (x.defined() ? c10::str(x.sizes()) : std::string("no map")));
  const auto direct = F::Conv2dFuncOptions().padding(1).bias(bias);
  if (x.size(2) == h && x.size(3) == w) return F::conv2d(x, weight, direct);
  // Inference in bfloat16 keeps the direct form: there the convolution runs on the bf16 matrix
  // units (AMX), several times the float rate, and the saving in multiply-adds no longer pays for
  // the extra memory passes (measured in docs/BENCHMARKS.md). Training always takes the short form:
  // it also spares backward the enlarged input.
  const bool bf16 = x.scalar_type() == torch::kBFloat16 ||
                    (at::autocast::is_cpu_enabled() &&
                     at::autocast::get_autocast_cpu_dtype() == at::kBFloat16);
  if (!kernel_supports(x) || (bf16 && !torch::GradMode::is_enabled())) {
    auto big = F::interpolate(x, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{h, w})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));
    return F::conv2d(big, weight, direct);
  }
  const int64_t out_ch = weight.size(0), in_ch = weight.size(1);
  // Tap-major 1x1 kernel: output channel t * C + c is W[c, :, ty, tx].
  auto taps = weight.permute({2, 3, 0, 1}).reshape({9 * out_ch, in_ch, 1, 1});
  return enlarge_shift_sum(F::conv2d(x, taps), h, w, bias);
}

}  // namespace nucleisam::models
