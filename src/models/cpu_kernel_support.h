// Support for nucleisam's own CPU kernels: element access that vectorises for bfloat16, and the
// two builds of each kernel (the compiler's baseline and AVX-512) chosen at run time by
// kernel_isa() (nucleisam/cpu_features.h).
//
// A kernel writes its body once as an always-inline template and wraps it in two functions, one
// marked NUCLEISAM_TARGET_AVX512; the body is compiled into each with that function's
// instruction set. Functions the body calls that are not inlined (std::fill, ...) keep the
// baseline, which every CPU runs.
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#define NUCLEISAM_HAVE_AVX512_KERNELS 1
#define NUCLEISAM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")))
#else
#define NUCLEISAM_HAVE_AVX512_KERNELS 0
#define NUCLEISAM_TARGET_AVX512
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

namespace nucleisam::models {

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

// A tensor's data as the kernel's storage type.
template <typename scalar_t, typename Tensor>
store_t<scalar_t>* data_as(Tensor& t) {
  return reinterpret_cast<store_t<scalar_t>*>(t.template data_ptr<scalar_t>());
}

}  // namespace nucleisam::models
