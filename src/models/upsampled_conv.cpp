// conv3x3 of a bilinear enlargement as a small 1x1 convolution plus one enlarge-shift-sum pass
// (see upsampled_conv.h for the identity).
#include "models/upsampled_conv.h"

#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "sam/cpu_kernel_support.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

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
      const acc_t src =
          std::max(ratio * (static_cast<acc_t>(o) + static_cast<acc_t>(0.5)) - static_cast<acc_t>(0.5),
                   static_cast<acc_t>(0));
      lo[o] = static_cast<int64_t>(src);
      hi[o] = lo[o] + (lo[o] < in - 1 ? 1 : 0);
      w_hi[o] = src - static_cast<acc_t>(lo[o]);
      w_lo[o] = static_cast<acc_t>(1) - w_hi[o];
    }
  }
};

// The enlarge-shift-sum is separable. For output row i, the rows pass sums, for every column b of
// the small map and column tap tx, the row-interpolated taps of the three row offsets:
//   S[b, tx, c] = sum_ty  lo-weight * z[lo(i + ty - 1), b, tap(ty, tx), c] + hi-weight * z[hi(..), ..]
// and the columns pass gives out[i, j, c] = bias[c] + sum_tx (column weights of j + tx - 1) . S.
// Per output value that is 6 multiply-adds plus 18 per small column (36 done naively), and the
// channel loops run over contiguous memory (channels-last), which the compiler vectorises.
struct ShiftSumShape {
  int64_t n_images, channels, h0, w0, h, w;
};

// kC: the channel count when it is one of the common ones (16, 32, 64), so that the compiler
// unrolls the channel loops into whole vectors; 0: read from the shape.
//
// One output row (image n, row i). S: w0 x 3 x C accumulators. Each pass is one loop over
// contiguous values with every tap in it: a tap outside the map gets weight 0 and a pointer to a
// tap inside (so no buffer is cleared or accumulated into, which the compiler would turn into
// library calls per pixel). bias: C values (zeros when the convolution has none).
template <typename scalar_t, int kC>
NUCLEISAM_ALWAYS_INLINE void forward_row(const store_t<scalar_t>* __restrict zn,
                                         const acc_t<scalar_t>* __restrict bias,
                                         store_t<scalar_t>* __restrict out_row, acc_t<scalar_t>* __restrict S,
                                         const AxisTaps<acc_t<scalar_t>>& rows,
                                         const AxisTaps<acc_t<scalar_t>>& cols, const ShiftSumShape& g,
                                         int64_t i) {
  using E = Elem<scalar_t>;
  using acc = acc_t<scalar_t>;
  const int64_t C = kC > 0 ? kC : g.channels, c3 = 3 * C, zc = 9 * C;
  // Rows pass: the three row offsets' lower and upper source rows and weights (row i itself is
  // always inside the map, and stands in for an offset that is not).
  const store_t<scalar_t>* r[6];
  acc l[6];
  for (int64_t ty = 0; ty < 3; ++ty) {
    const int64_t si = i + ty - 1;
    const bool inside = si >= 0 && si < g.h;
    const int64_t sr = inside ? si : i;
    r[2 * ty] = zn + rows.lo[sr] * g.w0 * zc + ty * c3;
    r[2 * ty + 1] = zn + rows.hi[sr] * g.w0 * zc + ty * c3;
    l[2 * ty] = inside ? rows.w_lo[si] : acc(0);
    l[2 * ty + 1] = inside ? rows.w_hi[si] : acc(0);
  }
  for (int64_t b = 0; b < g.w0; ++b) {
    acc* __restrict s = S + b * c3;
    const int64_t o = b * zc;
    const store_t<scalar_t>*p0 = r[0] + o, *p1 = r[1] + o, *p2 = r[2] + o, *p3 = r[3] + o, *p4 = r[4] + o,
          *p5 = r[5] + o;
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t k = 0; k < c3; ++k)
      s[k] = l[0] * E::widen(p0[k]) + l[1] * E::widen(p1[k]) + l[2] * E::widen(p2[k]) +
             l[3] * E::widen(p3[k]) + l[4] * E::widen(p4[k]) + l[5] * E::widen(p5[k]);
  }
  // Columns pass.
  for (int64_t j = 0; j < g.w; ++j) {
    const acc* q[6];
    acc m[6];
    for (int64_t tx = 0; tx < 3; ++tx) {
      const int64_t sj = j + tx - 1;
      const bool inside = sj >= 0 && sj < g.w;
      const int64_t sc = inside ? sj : j;
      q[2 * tx] = S + cols.lo[sc] * c3 + tx * C;
      q[2 * tx + 1] = S + cols.hi[sc] * c3 + tx * C;
      m[2 * tx] = inside ? cols.w_lo[sj] : acc(0);
      m[2 * tx + 1] = inside ? cols.w_hi[sj] : acc(0);
    }
    store_t<scalar_t>* __restrict dst = out_row + j * C;
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t c = 0; c < C; ++c)
      dst[c] = E::narrow(bias[c] + m[0] * q[0][c] + m[1] * q[1][c] + m[2] * q[2][c] + m[3] * q[3][c] +
                         m[4] * q[4][c] + m[5] * q[5][c]);
  }
}

// z: N x h0 x w0 x 9C (channels-last storage), out: N x h x w x C; bias: C values; rows
// [begin, end) of the N * h output rows.
template <typename scalar_t, int kC>
NUCLEISAM_ALWAYS_INLINE void forward_rows(const store_t<scalar_t>* z, const acc_t<scalar_t>* bias,
                                          store_t<scalar_t>* out, const AxisTaps<acc_t<scalar_t>>& rows,
                                          const AxisTaps<acc_t<scalar_t>>& cols, const ShiftSumShape& g,
                                          int64_t begin, int64_t end) {
  std::vector<acc_t<scalar_t>> S(g.w0 * 3 * g.channels);
  for (int64_t ni = begin; ni < end; ++ni) {
    const int64_t n = ni / g.h, i = ni % g.h;
    forward_row<scalar_t, kC>(z + n * g.h0 * g.w0 * 9 * g.channels, bias, out + ni * g.w * g.channels,
                              S.data(), rows, cols, g, i);
  }
}

// F_a[b, ty-th third of the taps] += weight * G[b] for one small row's accumulators F_a.
template <typename scalar_t, int kC>
NUCLEISAM_ALWAYS_INLINE void scatter_row(acc_t<scalar_t>* F_a, const acc_t<scalar_t>* G,
                                         const ShiftSumShape& g, int64_t ty, acc_t<scalar_t> weight) {
  const int64_t C = kC > 0 ? kC : g.channels, c3 = 3 * C, zc = 9 * C;
  acc_t<scalar_t>* f = F_a + ty * c3;
  for (int64_t b = 0; b < g.w0; ++b) {
    acc_t<scalar_t>* __restrict fb = f + b * zc;
    const acc_t<scalar_t>* __restrict Gb = G + b * c3;
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t k = 0; k < c3; ++k) fb[k] += weight * Gb[k];
  }
}

// Accumulators of the small rows being written, 4 consecutive rows at most (row a in slot a % 4).
template <typename acc>
struct RowRing {
  static constexpr int64_t rows = 4;
  acc* data;
  int64_t row_len;
  int64_t opened, written;  // rows below `opened` have been cleared, rows below `written` written out
  acc* slot(int64_t a) const { return data + (a % rows) * row_len; }
  void open_up_to(int64_t last) {  // clears rows opened .. last
    for (; opened <= last; ++opened) std::fill(slot(opened), slot(opened) + row_len, acc(0));
    TORCH_CHECK(opened - written <= rows,
                "enlarge_shift_sum backward: more than 4 small rows open (internal error)");
  }
};

// Rounds every small row below `end` not yet written into grad_z (rows of image n from grad_zn).
// A row that no output row reached gets zeros.
template <typename scalar_t>
NUCLEISAM_ALWAYS_INLINE void write_rows_below(RowRing<acc_t<scalar_t>>& ring, int64_t end,
                                              store_t<scalar_t>* grad_zn) {
  for (; ring.written < end; ++ring.written) {
    ring.open_up_to(ring.written);
    const acc_t<scalar_t>* __restrict src = ring.slot(ring.written);
    store_t<scalar_t>* __restrict dst = grad_zn + ring.written * ring.row_len;
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t k = 0; k < ring.row_len; ++k) dst[k] = Elem<scalar_t>::narrow(src[k]);
  }
}

// The adjoint, for the small rows [a_begin, a_end) of image n. Output rows are taken in order;
// each one that reads a small row of the range is pulled back through the columns pass into G
// (w0 x 3 x C), then scattered to the small rows it came from. Output row i reaches only small
// rows lo(i - 1) .. hi(i + 1), at most 4 consecutive ones when the map is enlarged (h >= h0), so
// the accumulators live in a ring of 4 rows (cache-sized) and a row is rounded into grad_z as
// soon as the rows being read have moved past it. Items own disjoint small rows, so they never
// write the same memory; an output row next to a border between items is pulled back by both.
template <typename scalar_t, int kC>
NUCLEISAM_ALWAYS_INLINE void backward_rows(const store_t<scalar_t>* grad_out, store_t<scalar_t>* grad_z,
                                           const AxisTaps<acc_t<scalar_t>>& rows,
                                           const AxisTaps<acc_t<scalar_t>>& cols, const ShiftSumShape& g,
                                           int64_t n, int64_t a_begin, int64_t a_end) {
  using E = Elem<scalar_t>;
  using acc = acc_t<scalar_t>;
  const int64_t C = kC > 0 ? kC : g.channels, c3 = 3 * C, zc = 9 * C, row_len = g.w0 * zc;
  std::vector<acc> ring_storage(RowRing<acc>::rows * row_len), Gv(g.w0 * c3);
  acc* __restrict G = Gv.data();
  store_t<scalar_t>* grad_zn = grad_z + n * g.h0 * row_len;
  // Small rows [a_begin, opened) have been cleared in the ring; [a_begin, written) are in grad_z.
  RowRing<acc> ring{ring_storage.data(), row_len, a_begin, a_begin};
  for (int64_t i = 0; i < g.h; ++i) {
    const int64_t first = rows.lo[std::max<int64_t>(0, i - 1)], last = rows.hi[std::min(g.h - 1, i + 1)];
    if (last < a_begin) continue;
    if (first >= a_end) break;
    write_rows_below<scalar_t>(ring, std::min(first, a_end), grad_zn);
    ring.open_up_to(std::min(last, a_end - 1));
    for (int64_t k = 0; k < g.w0 * c3; ++k) G[k] = acc(0);
    const store_t<scalar_t>* gi = grad_out + (n * g.h + i) * g.w * C;
    for (int64_t j = 0; j < g.w; ++j) {
      const store_t<scalar_t>* __restrict gj = gi + j * C;
      for (int64_t tx = 0; tx < 3; ++tx) {
        const int64_t sj = j + tx - 1;
        if (sj < 0 || sj >= g.w) continue;
        acc* G0 = G + cols.lo[sj] * c3 + tx * C;
        const acc m0 = cols.w_lo[sj], m1 = cols.w_hi[sj];
        if (cols.lo[sj] == cols.hi[sj]) {
          NUCLEISAM_NO_ALIAS_LOOP
          for (int64_t c = 0; c < C; ++c) G0[c] += (m0 + m1) * E::widen(gj[c]);
        } else {
          acc* __restrict G0r = G0;
          acc* __restrict G1r = G + cols.hi[sj] * c3 + tx * C;
          NUCLEISAM_NO_ALIAS_LOOP
          for (int64_t c = 0; c < C; ++c) {
            const acc v = E::widen(gj[c]);
            G0r[c] += m0 * v;
            G1r[c] += m1 * v;
          }
        }
      }
    }
    for (int64_t ty = 0; ty < 3; ++ty) {
      const int64_t si = i + ty - 1;
      if (si < 0 || si >= g.h) continue;
      const int64_t a0 = rows.lo[si], a1 = rows.hi[si];
      const bool in0 = a0 >= a_begin && a0 < a_end, in1 = a1 >= a_begin && a1 < a_end;
      if (a0 == a1) {
        if (in0) scatter_row<scalar_t, kC>(ring.slot(a0), G, g, ty, rows.w_lo[si] + rows.w_hi[si]);
      } else {
        if (in0) scatter_row<scalar_t, kC>(ring.slot(a0), G, g, ty, rows.w_lo[si]);
        if (in1) scatter_row<scalar_t, kC>(ring.slot(a1), G, g, ty, rows.w_hi[si]);
      }
    }
  }
  write_rows_below<scalar_t>(ring, a_end, grad_zn);
}

// The three builds of each kernel (cpu_kernel_support.h), each with the common channel counts
// unrolled (NUCLEISAM_BY_CHANNEL_COUNT).

template <typename scalar_t>
void forward_rows_baseline(const store_t<scalar_t>* z, const acc_t<scalar_t>* bias, store_t<scalar_t>* out,
                           const AxisTaps<acc_t<scalar_t>>& rows, const AxisTaps<acc_t<scalar_t>>& cols,
                           const ShiftSumShape& g, int64_t begin, int64_t end) {
  NUCLEISAM_BY_CHANNEL_COUNT(g.channels, forward_rows, z, bias, out, rows, cols, g, begin, end)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX512 void forward_rows_avx512(const store_t<scalar_t>* z, const acc_t<scalar_t>* bias,
                                                 store_t<scalar_t>* out,
                                                 const AxisTaps<acc_t<scalar_t>>& rows,
                                                 const AxisTaps<acc_t<scalar_t>>& cols,
                                                 const ShiftSumShape& g, int64_t begin, int64_t end) {
  NUCLEISAM_BY_CHANNEL_COUNT(g.channels, forward_rows, z, bias, out, rows, cols, g, begin, end)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX2 void forward_rows_avx2(const store_t<scalar_t>* z, const acc_t<scalar_t>* bias,
                                             store_t<scalar_t>* out, const AxisTaps<acc_t<scalar_t>>& rows,
                                             const AxisTaps<acc_t<scalar_t>>& cols, const ShiftSumShape& g,
                                             int64_t begin, int64_t end) {
  NUCLEISAM_BY_CHANNEL_COUNT(g.channels, forward_rows, z, bias, out, rows, cols, g, begin, end)
}
template <typename scalar_t>
void backward_rows_baseline(const store_t<scalar_t>* grad_out, store_t<scalar_t>* grad_z,
                            const AxisTaps<acc_t<scalar_t>>& rows, const AxisTaps<acc_t<scalar_t>>& cols,
                            const ShiftSumShape& g, int64_t n, int64_t a_begin, int64_t a_end) {
  NUCLEISAM_BY_CHANNEL_COUNT(g.channels, backward_rows, grad_out, grad_z, rows, cols, g, n, a_begin, a_end)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX512 void backward_rows_avx512(const store_t<scalar_t>* grad_out,
                                                  store_t<scalar_t>* grad_z,
                                                  const AxisTaps<acc_t<scalar_t>>& rows,
                                                  const AxisTaps<acc_t<scalar_t>>& cols,
                                                  const ShiftSumShape& g, int64_t n, int64_t a_begin,
                                                  int64_t a_end) {
  NUCLEISAM_BY_CHANNEL_COUNT(g.channels, backward_rows, grad_out, grad_z, rows, cols, g, n, a_begin, a_end)
}
template <typename scalar_t>
NUCLEISAM_TARGET_AVX2 void backward_rows_avx2(const store_t<scalar_t>* grad_out, store_t<scalar_t>* grad_z,
                                              const AxisTaps<acc_t<scalar_t>>& rows,
                                              const AxisTaps<acc_t<scalar_t>>& cols, const ShiftSumShape& g,
                                              int64_t n, int64_t a_begin, int64_t a_end) {
  NUCLEISAM_BY_CHANNEL_COUNT(g.channels, backward_rows, grad_out, grad_z, rows, cols, g, n, a_begin, a_end)
}

template <typename scalar_t>
void forward_kernel(const store_t<scalar_t>* z, const acc_t<scalar_t>* bias, store_t<scalar_t>* out,
                    const ShiftSumShape& g) {
  const AxisTaps<acc_t<scalar_t>> rows(g.h0, g.h), cols(g.w0, g.w);
  const KernelIsa isa = kernel_build();
  at::parallel_for(0, g.n_images * g.h, 1, [&](int64_t begin, int64_t end) {
    if (isa == KernelIsa::avx512)
      forward_rows_avx512<scalar_t>(z, bias, out, rows, cols, g, begin, end);
    else if (isa == KernelIsa::avx2)
      forward_rows_avx2<scalar_t>(z, bias, out, rows, cols, g, begin, end);
    else
      forward_rows_baseline<scalar_t>(z, bias, out, rows, cols, g, begin, end);
  });
}

template <typename scalar_t>
void backward_kernel(const store_t<scalar_t>* grad_out, store_t<scalar_t>* grad_z, const ShiftSumShape& g) {
  const AxisTaps<acc_t<scalar_t>> rows(g.h0, g.h), cols(g.w0, g.w);
  const KernelIsa isa = kernel_build();
  // Work items: images x blocks of small rows, about two per thread, blocks of >= 2 rows.
  const int64_t wanted = (2 * at::get_num_threads() + g.n_images - 1) / g.n_images;
  const int64_t blocks = std::max<int64_t>(1, std::min(wanted, g.h0 / 2));
  const int64_t block_rows = (g.h0 + blocks - 1) / blocks;
  at::parallel_for(0, g.n_images * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / blocks, a_begin = (item % blocks) * block_rows;
      const int64_t a_end = std::min(g.h0, a_begin + block_rows);
      if (a_begin >= a_end) continue;
      if (isa == KernelIsa::avx512)
        backward_rows_avx512<scalar_t>(grad_out, grad_z, rows, cols, g, n, a_begin, a_end);
      else if (isa == KernelIsa::avx2)
        backward_rows_avx2<scalar_t>(grad_out, grad_z, rows, cols, g, n, a_begin, a_end);
      else
        backward_rows_baseline<scalar_t>(grad_out, grad_z, rows, cols, g, n, a_begin, a_end);
    }
  });
}

// The bias is added in the accumulator's precision (float for bfloat16 maps), before rounding.
torch::Tensor shift_sum_forward(const torch::Tensor& z, const torch::Tensor& bias, int64_t h, int64_t w) {
  RECORD_FUNCTION("nucleisam::enlarge_shift_sum", std::vector<c10::IValue>({z}));
  const int64_t n = z.size(0), channels = z.size(1) / 9, h0 = z.size(2), w0 = z.size(3);
  const auto zc = z.contiguous(at::MemoryFormat::ChannelsLast);
  auto out = torch::empty({n, channels, h, w}, z.options().memory_format(at::MemoryFormat::ChannelsLast));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, z.scalar_type(), "enlarge_shift_sum", [&] {
    using acc = acc_t<scalar_t>;
    const auto acc_type = c10::CppTypeToScalarType<acc>::value;
    const torch::Tensor b = bias.defined() ? bias.detach().to(acc_type).contiguous()
                                           : torch::zeros({channels}, torch::TensorOptions().dtype(acc_type));
    forward_kernel<scalar_t>(data_as<scalar_t>(zc), b.data_ptr<acc>(), data_as<scalar_t>(out),
                             ShiftSumShape{n, channels, h0, w0, h, w});
  });
  return out;
}

torch::Tensor shift_sum_backward(const torch::Tensor& grad, int64_t h0, int64_t w0) {
  RECORD_FUNCTION("nucleisam::enlarge_shift_sum_backward", std::vector<c10::IValue>({grad}));
  const int64_t n = grad.size(0), channels = grad.size(1), h = grad.size(2), w = grad.size(3);
  const auto gc = grad.contiguous(at::MemoryFormat::ChannelsLast);
  auto grad_z =
      torch::empty({n, 9 * channels, h0, w0}, grad.options().memory_format(at::MemoryFormat::ChannelsLast));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, grad.scalar_type(), "enlarge_shift_sum_backward", [&] {
    backward_kernel<scalar_t>(data_as<scalar_t>(gc), data_as<scalar_t>(grad_z),
                              ShiftSumShape{n, channels, h0, w0, h, w});
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
    return {shift_sum_backward(g, ctx->saved_data["h0"].toInt(), ctx->saved_data["w0"].toInt()), grad_bias,
            torch::Tensor(), torch::Tensor()};
  }
};

bool kernel_supports(const torch::Tensor& t) {
  const auto s = t.scalar_type();
  return t.device().is_cpu() && (s == torch::kFloat || s == torch::kDouble || s == torch::kBFloat16);
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

torch::Tensor conv3x3_of_enlarged(torch::nn::Conv2dImpl& conv, const torch::Tensor& x, int64_t h, int64_t w) {
  const auto& o = conv.options;
  const auto& k = *o.kernel_size();
  const auto& stride = *o.stride();
  const auto& dilation = *o.dilation();
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool shape_ok = k[0] == 3 && k[1] == 3 && stride[0] == 1 && stride[1] == 1 && dilation[0] == 1 &&
                        dilation[1] == 1 && o.groups() == 1 && pad && (**pad)[0] == 1 && (**pad)[1] == 1 &&
                        c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
  if (!shape_ok)
    throw ModelError("conv3x3_of_enlarged: needs a 3x3 convolution, stride 1, zero padding 1, one group");
  return conv3x3_of_enlarged(conv.weight, conv.bias, x, h, w);
}

torch::Tensor conv3x3_of_enlarged(const torch::Tensor& weight, const torch::Tensor& bias,
                                  const torch::Tensor& x, int64_t h, int64_t w) {
  if (!weight.defined() || weight.dim() != 4 || weight.size(2) != 3 || weight.size(3) != 3 || !x.defined() ||
      x.dim() != 4 || x.size(1) != weight.size(1))
    throw ModelError("conv3x3_of_enlarged: needs an O x C x 3 x 3 kernel and an N x C x h x w map, got " +
                     (weight.defined() ? c10::str(weight.sizes()) : std::string("no kernel")) + " and " +
                     (x.defined() ? c10::str(x.sizes()) : std::string("no map")));
  const auto direct = F::Conv2dFuncOptions().padding(1).bias(bias);
  if (x.size(2) == h && x.size(3) == w) return F::conv2d(x, weight, direct);
  // Every CPU float, double or bfloat16 map takes the short form, in training and at inference
  // (with the vectorised kernel it beats the direct form in bfloat16 on AMX too: docs/BENCHMARKS.md).
  if (!kernel_supports(x)) {
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
