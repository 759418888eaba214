// GLU over channels in one pass (see glu_kernel.h).
#include "models/glu_kernel.h"

#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "sam/cpu_kernel_support.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>

namespace nucleisam::models {

namespace {

// sigmoid(v) from e = exp(-|v|) <= 1, so nothing overflows: 1 / (1 + e) for v >= 0, e / (1 + e) below.
NUCLEISAM_ALWAYS_INLINE float sigmoid_of(float v) {
  const float e = exp_nonpositive(v < 0.0f ? v : -v);
  const float r = 1.0f / (1.0f + e);
  const float er = e * r;  // computed unconditionally, so that the select vectorises
  return v < 0.0f ? er : r;
}
NUCLEISAM_ALWAYS_INLINE double sigmoid_of(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Work items: pixels (channels-last: the 2C channels of a pixel are adjacent) or (image, channel)
// planes (NCHW).
struct GluShape {
  int64_t half, pixels;
  bool channels_last;
};

// kC: the channel count of a channels-last map when it is one of the common ones (16, 32, 64), so
// that the compiler unrolls the channel loop into whole vectors; 0: read from the shape.
template <typename scalar_t, int kC>
NUCLEISAM_ALWAYS_INLINE void forward_items(const store_t<scalar_t>* y, store_t<scalar_t>* out,
                                           const GluShape& s, int64_t begin, int64_t end) {
  using E = Elem<scalar_t>;
  const int64_t C = kC > 0 ? kC : s.half;
  const int64_t len = s.channels_last ? C : s.pixels;
  for (int64_t item = begin; item < end; ++item) {
    const store_t<scalar_t>* a;
    store_t<scalar_t>* o;
    if (s.channels_last) {
      a = y + item * 2 * C;
      o = out + item * C;
    } else {
      const int64_t n = item / C, c = item % C;
      a = y + (n * 2 * C + c) * s.pixels;
      o = out + item * s.pixels;
    }
    const store_t<scalar_t>* b = a + (s.channels_last ? C : C * s.pixels);
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t k = 0; k < len; ++k) o[k] = E::narrow(E::widen(a[k]) * sigmoid_of(E::widen(b[k])));
  }
}

template <typename scalar_t, int kC>
NUCLEISAM_ALWAYS_INLINE void backward_items(const store_t<scalar_t>* g, const store_t<scalar_t>* x,
                                            const acc_t<scalar_t>* scale, const acc_t<scalar_t>* shift,
                                            store_t<scalar_t>* dy, const GluShape& s, int64_t begin,
                                            int64_t end) {
  using E = Elem<scalar_t>;
  using acc = acc_t<scalar_t>;
  const int64_t C = kC > 0 ? kC : s.half;
  if (s.channels_last) {
    for (int64_t p = begin; p < end; ++p) {
      const store_t<scalar_t>* xa = x + p * 2 * C;
      const store_t<scalar_t>* xb = xa + C;
      const store_t<scalar_t>* gp = g + p * C;
      store_t<scalar_t>* __restrict da = dy + p * 2 * C;
      store_t<scalar_t>* __restrict db = da + C;
      NUCLEISAM_NO_ALIAS_LOOP
      for (int64_t c = 0; c < C; ++c) {
        const acc av = E::widen(xa[c]) * scale[c] + shift[c];
        const acc sg = sigmoid_of(E::widen(xb[c]) * scale[C + c] + shift[C + c]);
        const acc gv = E::widen(gp[c]);
        da[c] = E::narrow(gv * sg);
        db[c] = E::narrow(gv * av * sg * (acc(1) - sg));
      }
    }
    return;
  }
  for (int64_t item = begin; item < end; ++item) {
    const int64_t n = item / C, c = item % C;
    const store_t<scalar_t>* xa = x + (n * 2 * C + c) * s.pixels;
    const store_t<scalar_t>* xb = xa + C * s.pixels;
    const store_t<scalar_t>* gp = g + item * s.pixels;
    store_t<scalar_t>* __restrict da = dy + (n * 2 * C + c) * s.pixels;
    store_t<scalar_t>* __restrict db = da + C * s.pixels;
    const acc sa = scale[c], ha = shift[c], sb = scale[C + c], hb = shift[C + c];
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t p = 0; p < s.pixels; ++p) {
      const acc av = E::widen(xa[p]) * sa + ha;
      const acc sg = sigmoid_of(E::widen(xb[p]) * sb + hb);
      const acc gv = E::widen(gp[p]);
      da[p] = E::narrow(gv * sg);
      db[p] = E::narrow(gv * av * sg * (acc(1) - sg));
    }
  }
}

// The AVX2 and AVX-512 builds (cpu_kernel_support.h; the baseline takes LibTorch's operations),
// with the common channel counts of channels-last maps unrolled.

template <typename scalar_t>
NUCLEISAM_TARGET_AVX512 void forward_avx512(const store_t<scalar_t>* y, store_t<scalar_t>* out,
                                            const GluShape& s, int64_t b, int64_t e) {
  NUCLEISAM_BY_CHANNEL_COUNT(s.channels_last ? s.half : 0, forward_items, y, out, s, b, e)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX2 void forward_avx2(const store_t<scalar_t>* y, store_t<scalar_t>* out, const GluShape& s,
                                        int64_t b, int64_t e) {
  NUCLEISAM_BY_CHANNEL_COUNT(s.channels_last ? s.half : 0, forward_items, y, out, s, b, e)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX512 void backward_avx512(const store_t<scalar_t>* g, const store_t<scalar_t>* x,
                                             const acc_t<scalar_t>* scale, const acc_t<scalar_t>* shift,
                                             store_t<scalar_t>* dy, const GluShape& s, int64_t b, int64_t e) {
  NUCLEISAM_BY_CHANNEL_COUNT(s.channels_last ? s.half : 0, backward_items, g, x, scale, shift, dy, s, b, e)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX2 void backward_avx2(const store_t<scalar_t>* g, const store_t<scalar_t>* x,
                                         const acc_t<scalar_t>* scale, const acc_t<scalar_t>* shift,
                                         store_t<scalar_t>* dy, const GluShape& s, int64_t b, int64_t e) {
  NUCLEISAM_BY_CHANNEL_COUNT(s.channels_last ? s.half : 0, backward_items, g, x, scale, shift, dy, s, b, e)
}

bool kernel_applies(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return t.device().is_cpu() && t.dim() == 4 && t.size(1) % 2 == 0 &&
         (type == torch::kFloat || type == torch::kDouble || type == torch::kBFloat16);
}

// Items and a grain of about 16k elements per task.
std::pair<int64_t, int64_t> items_and_grain(const torch::Tensor& y, const GluShape& s) {
  const int64_t items = s.channels_last ? y.size(0) * s.pixels : y.size(0) * s.half;
  const int64_t per_item = s.channels_last ? s.half : s.pixels;
  return {items, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, per_item))};
}

// The same gradient from LibTorch's operations (in float, or double), where the kernel has no
// vectorised build.
torch::Tensor backward_with_libtorch(const torch::Tensor& g, const torch::Tensor& x,
                                     const torch::Tensor& scale, const torch::Tensor& shift,
                                     at::MemoryFormat layout) {
  const int64_t channels = x.size(1), half = channels / 2;
  const auto acc = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto y = x.to(acc);
  if (scale.defined())
    y = y * scale.to(acc).view({1, channels, 1, 1}) + shift.to(acc).view({1, channels, 1, 1});
  auto a = y.narrow(1, 0, half), s = torch::sigmoid(y.narrow(1, half, half));
  auto ga = g.to(acc);
  return torch::cat({ga * s, ga * a * s * (1 - s)}, 1).to(x.scalar_type()).contiguous(layout);
}

}  // namespace

torch::Tensor glu_channels_forward(const torch::Tensor& y) {
  // LibTorch's own GLU is as fast for float and double, and the baseline build of the kernel
  // would be slower than LibTorch's bfloat16 GLU (docs/BENCHMARKS.md, bench_cpu_kernels).
  if (!kernel_applies(y) || y.scalar_type() != torch::kBFloat16 || kernel_build() == KernelIsa::baseline)
    return at::glu(y, 1).contiguous(y.suggest_memory_format());
  RECORD_FUNCTION("nucleisam::glu_channels", std::vector<c10::IValue>({y}));
  const auto layout = y.suggest_memory_format();
  const bool cl = layout == at::MemoryFormat::ChannelsLast;
  const auto yc = y.contiguous(layout);
  const int64_t half = y.size(1) / 2;
  auto out = torch::empty({y.size(0), half, y.size(2), y.size(3)}, y.options().memory_format(layout));
  const GluShape shape{half, y.size(2) * y.size(3), cl};
  // Not a structured binding: lambdas cannot capture those before C++20 (clang refuses).
  const auto work = items_and_grain(yc, shape);
  const int64_t items = work.first, grain = work.second;
  const KernelIsa isa = kernel_build();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, y.scalar_type(), "glu_channels", [&] {
    const auto* src = data_as<scalar_t>(yc);
    auto* dst = data_as<scalar_t>(out);
    at::parallel_for(0, items, grain, [&](int64_t b, int64_t e) {
      if (isa == KernelIsa::avx512)
        forward_avx512<scalar_t>(src, dst, shape, b, e);
      else
        forward_avx2<scalar_t>(src, dst, shape, b, e);
    });
  });
  return out;
}

torch::Tensor glu_channels_backward(const torch::Tensor& g, const torch::Tensor& x,
                                    const torch::Tensor& scale, const torch::Tensor& shift) {
  if (!kernel_applies(x) || g.dim() != 4 || g.size(0) != x.size(0) || 2 * g.size(1) != x.size(1) ||
      g.size(2) != x.size(2) || g.size(3) != x.size(3))
    throw ModelError(
        "glu_channels_backward: needs a CPU N x 2C x H x W map and an N x C x H x W gradient, got " +
        c10::str(x.sizes()) + " and " + c10::str(g.sizes()));
  if (scale.defined() != shift.defined() ||
      (scale.defined() && (scale.numel() != x.size(1) || shift.numel() != x.size(1))))
    throw ModelError("glu_channels_backward: scale and shift must both be " + std::to_string(x.size(1)) +
                     " values or both absent");
  const auto layout = x.suggest_memory_format();
  if (kernel_build() == KernelIsa::baseline) return backward_with_libtorch(g, x, scale, shift, layout);
  RECORD_FUNCTION("nucleisam::glu_channels_backward", std::vector<c10::IValue>({g, x}));
  const bool cl = layout == at::MemoryFormat::ChannelsLast;
  const auto xc = x.contiguous(layout);
  const auto gc = g.to(x.scalar_type()).contiguous(layout);
  auto dy = torch::empty_like(xc, xc.options().memory_format(layout));
  const GluShape shape{x.size(1) / 2, x.size(2) * x.size(3), cl};
  const auto work = items_and_grain(xc, shape);
  const int64_t items = work.first, grain = work.second;
  const KernelIsa isa = kernel_build();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "glu_channels_backward", [&] {
    using acc = acc_t<scalar_t>;
    const auto acc_type = c10::CppTypeToScalarType<acc>::value;
    const auto sc = scale.defined() ? scale.detach().to(acc_type).contiguous()
                                    : torch::ones({x.size(1)}, torch::TensorOptions().dtype(acc_type));
    const auto sh = shift.defined() ? shift.detach().to(acc_type).contiguous()
                                    : torch::zeros({x.size(1)}, torch::TensorOptions().dtype(acc_type));
    const auto* gp = data_as<scalar_t>(gc);
    const auto* xp = data_as<scalar_t>(xc);
    auto* dp = data_as<scalar_t>(dy);
    const acc* scp = sc.data_ptr<acc>();
    const acc* shp = sh.data_ptr<acc>();
    at::parallel_for(0, items, grain, [&](int64_t b, int64_t e) {
      if (isa == KernelIsa::avx512)
        backward_avx512<scalar_t>(gp, xp, scp, shp, dp, shape, b, e);
      else
        backward_avx2<scalar_t>(gp, xp, scp, shp, dp, shape, b, e);
    });
  });
  return dy;
}

}  // namespace nucleisam::models
