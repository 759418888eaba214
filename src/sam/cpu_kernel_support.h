// Support for nucleisam's own CPU kernels (src/models, src/sam): element access that vectorises
// for bfloat16, an exponential that vectorises, and the three builds of each kernel (the
// compiler's baseline, AVX2 + FMA, AVX-512) chosen at run time by kernel_isa()
// (nucleisam/cpu_features.h).
//
// A kernel writes its body once as an always-inline template and wraps it in three functions,
// two marked NUCLEISAM_TARGET_AVX512 and NUCLEISAM_TARGET_AVX2; the body is compiled into each
// with that function's instruction set, and kernel_build() says which to call. Functions the body
// calls that are not inlined (std::fill, ...) keep the baseline, which every CPU runs.
#pragma once

#include <c10/util/BFloat16.h>

#include "nucleisam/cpu_features.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#define NUCLEISAM_HAVE_X86_KERNELS 1
#define NUCLEISAM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")))
#define NUCLEISAM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define NUCLEISAM_HAVE_X86_KERNELS 0
#define NUCLEISAM_TARGET_AVX512
#define NUCLEISAM_TARGET_AVX2
#endif

#if defined(__GNUC__)
#define NUCLEISAM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NUCLEISAM_ALWAYS_INLINE inline
#endif

// Before a loop whose iterations write memory that no other iteration reads: without it GCC
// guards the vector loop with run-time overlap checks that can fail and send it down the scalar one.
#if defined(__GNUC__) && !defined(__clang__)
#define NUCLEISAM_NO_ALIAS_LOOP _Pragma("GCC ivdep")
#else
#define NUCLEISAM_NO_ALIAS_LOOP
#endif

// Calls call<scalar_t, C>(args...) with C the channel count when it is one of the common ones (16,
// 32, 64), so that the kernel's channel loops unroll into whole vectors, else with C = 0 (read at
// run time). A switch, not a lambda: a lambda would not inherit the calling build's instruction set.
#define NUCLEISAM_BY_CHANNEL_COUNT(count, call, ...) \
  switch (count) {                                   \
    case 16:                                         \
      call<scalar_t, 16>(__VA_ARGS__);               \
      break;                                         \
    case 32:                                         \
      call<scalar_t, 32>(__VA_ARGS__);               \
      break;                                         \
    case 64:                                         \
      call<scalar_t, 64>(__VA_ARGS__);               \
      break;                                         \
    default:                                         \
      call<scalar_t, 0>(__VA_ARGS__);                \
      break;                                         \
  }

namespace nucleisam {

// How a kernel reads and writes elements of scalar_t: `store` is the type in memory, `acc` the
// type sums are kept in (float for bfloat16).
template <typename scalar_t>
struct Elem {
  using store = scalar_t;
  using acc = scalar_t;
  static NUCLEISAM_ALWAYS_INLINE acc widen(store v) { return v; }
  static NUCLEISAM_ALWAYS_INLINE store narrow(acc v) { return v; }
};

// bfloat16 as its raw 16 bits: widening is a shift, narrowing rounds to nearest even with NaN
// kept quiet, exactly as c10::BFloat16's constructor does (whose code the compiler does not
// vectorise).
template <>
struct Elem<c10::BFloat16> {
  using store = uint16_t;
  using acc = float;
  static NUCLEISAM_ALWAYS_INLINE float widen(uint16_t v) {
    const uint32_t bits = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static NUCLEISAM_ALWAYS_INLINE uint16_t narrow(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    const uint16_t rounded = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    return f != f ? uint16_t(0x7FC0) : rounded;
  }
};

template <typename scalar_t>
using store_t = typename Elem<scalar_t>::store;
template <typename scalar_t>
using acc_t = typename Elem<scalar_t>::acc;

// exp(t) for t <= 0 as exp(t) = 2^n * p(r), n = round(t / ln 2), r = t - n ln 2 (ln 2 in two parts)
// and p Cephes' degree-6 polynomial for expf (relative error ~1e-7 on |r| <= ln2 / 2). Written with
// selects and a rounding by the 1.5 * 2^23 trick so that every step vectorises, baseline included.
// Below -87 the result is 0 (exp(-87) = 1.6e-38, the smallest normal floats).
NUCLEISAM_ALWAYS_INLINE float exp_nonpositive(float t) {
  const float clamped = t < -87.0f ? -87.0f : t;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (clamped * 1.44269504088896341f + magic) - magic;
  const float r = (clamped - n * 0.693359375f) - n * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const float n_ok = n == n ? n : 0.0f;  // NaN in, NaN out (through p) without converting NaN to int
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n_ok) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  const float result = p * two_n;  // computed unconditionally, so that the select below vectorises
  return t < -87.0f ? 0.0f : result;
}

// The build of the kernels to call here: kernel_isa(), or the baseline where this binary has only
// that one (not x86-64).
inline KernelIsa kernel_build() { return NUCLEISAM_HAVE_X86_KERNELS ? kernel_isa() : KernelIsa::baseline; }

// A tensor's data as the kernel's storage type.
template <typename scalar_t, typename Tensor>
store_t<scalar_t>* data_as(Tensor& t) {
  return reinterpret_cast<store_t<scalar_t>*>(t.template data_ptr<scalar_t>());
}

}  // namespace nucleisam
