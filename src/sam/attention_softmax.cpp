// One-pass relative-position softmax of the encoder's attention (see attention_softmax.h).
#include "sam/attention_softmax.h"

#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "sam/cpu_kernel_support.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cstring>
#include <limits>
#include <vector>

namespace nucleisam::sam {

namespace {

// Reductions over 16 lanes (a vector of floats in the AVX-512 build), combined at the end: written
// so because the compiler does not reorder a float sum or maximum of one accumulator by itself.
constexpr int64_t kLanes = 16;

// Rows [begin, end) of attn (N = H * W keys each); buf: N floats.
template <typename scalar_t>
NUCLEISAM_ALWAYS_INLINE void softmax_rows(store_t<scalar_t>* attn, const float* rel_h, const float* rel_w,
                                          int64_t H, int64_t W, int64_t begin, int64_t end,
                                          float* __restrict buf) {
  using E = Elem<scalar_t>;
  const int64_t N = H * W, full = N - N % kLanes;
  for (int64_t r = begin; r < end; ++r) {
    store_t<scalar_t>* __restrict a = attn + r * N;
    const float* rh = rel_h + r * H;
    const float* __restrict rw = rel_w + r * W;
    for (int64_t kh = 0; kh < H; ++kh) {
      const float h = rh[kh];
      const store_t<scalar_t>* __restrict ak = a + kh * W;
      float* __restrict bk = buf + kh * W;
      NUCLEISAM_NO_ALIAS_LOOP
      for (int64_t kw = 0; kw < W; ++kw) bk[kw] = E::widen(ak[kw]) + h + rw[kw];
    }
    // The row's maximum over 16 lanes at a time, as a GCC vector (the compiler does not vectorise
    // a float maximum of one accumulator).
    typedef float lanes_t __attribute__((vector_size(kLanes * sizeof(float))));
    lanes_t lanes;
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] = -std::numeric_limits<float>::infinity();
    for (int64_t k = 0; k < full; k += kLanes) {
      lanes_t x;
      std::memcpy(&x, buf + k, sizeof x);
      lanes = x > lanes ? x : lanes;
    }
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t l = 0; l < kLanes; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
    for (int64_t k = full; k < N; ++k) mx = buf[k] > mx ? buf[k] : mx;
    float sums[kLanes] = {};
    for (int64_t k = 0; k < full; k += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) {
        const float e = exp_nonpositive(buf[k + l] - mx);
        buf[k + l] = e;
        sums[l] += e;
      }
    float total = 0;
    for (int64_t l = 0; l < kLanes; ++l) total += sums[l];
    for (int64_t k = full; k < N; ++k) {
      buf[k] = exp_nonpositive(buf[k] - mx);
      total += buf[k];
    }
    const float inv = 1.0f / total;
    NUCLEISAM_NO_ALIAS_LOOP
    for (int64_t k = 0; k < N; ++k) a[k] = E::narrow(buf[k] * inv);
  }
}

template <typename scalar_t>
NUCLEISAM_TARGET_AVX512 void softmax_rows_avx512(store_t<scalar_t>* attn, const float* rel_h,
                                                 const float* rel_w, int64_t H, int64_t W, int64_t begin,
                                                 int64_t end, float* buf) {
  softmax_rows<scalar_t>(attn, rel_h, rel_w, H, W, begin, end, buf);
}

}  // namespace

void add_rel_pos_softmax_(torch::Tensor& attn, const torch::Tensor& rel_h, const torch::Tensor& rel_w,
                          int64_t H, int64_t W) {
  const auto type = attn.scalar_type();
  if (!attn.device().is_cpu() || (type != torch::kFloat && type != torch::kBFloat16) ||
      !attn.is_contiguous() || H <= 0 || W <= 0 || attn.numel() % (H * W) != 0)
    throw ModelError("add_rel_pos_softmax_: needs contiguous CPU float or bfloat16 logits with rows of " +
                     std::to_string(H) + " x " + std::to_string(W) + " keys, got " + c10::str(attn.sizes()));
  const int64_t rows = attn.numel() / (H * W);
  if (rel_h.numel() != rows * H || rel_w.numel() != rows * W)
    throw ModelError("add_rel_pos_softmax_: rel_h / rel_w must hold " + std::to_string(rows) + " rows of " +
                     std::to_string(H) + " / " + std::to_string(W) + " values, got " +
                     c10::str(rel_h.sizes()) + " and " + c10::str(rel_w.sizes()));
  if (kernel_build() != KernelIsa::avx512) {
    // Only the AVX-512 build beats LibTorch's operations (the official arithmetic), which every
    // other CPU takes (bench_cpu_kernels: AVX2 33 ms against 17 ms for a bf16 step here).
    attn.view({rows, H, W}).add_(rel_h.reshape({rows, H, 1})).add_(rel_w.reshape({rows, 1, W}));
    attn.copy_(torch::softmax(attn.view({rows, H * W}), -1).view(attn.sizes()));
    return;
  }
  RECORD_FUNCTION("nucleisam::add_rel_pos_softmax_", std::vector<c10::IValue>({attn}));
  const auto rh = rel_h.to(torch::kFloat).contiguous(), rw = rel_w.to(torch::kFloat).contiguous();
  const float* rhp = rh.data_ptr<float>();
  const float* rwp = rw.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, 32768 / (H * W));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, type, "add_rel_pos_softmax_", [&] {
    if constexpr (std::is_same_v<scalar_t, double>) {
      throw ModelError("add_rel_pos_softmax_: double is not supported");
    } else {
      auto* data = data_as<scalar_t>(attn);
      at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
        std::vector<float> buf(H * W);
        softmax_rows_avx512<scalar_t>(data, rhp, rwp, H, W, begin, end, buf.data());
      });
    }
  });
}

}  // namespace nucleisam::sam
