// The AVX-512F vector operations (F32: 16 floats, F64: 8 doubles) that instantiate the
// sigmoid and tanh of vector_math.h (sigmoid_v, tanh_v) for AVX-512: the AVX2 code's
// operations on registers twice as wide, each lane rounded as there. Internal: included
// only by translation units compiled with -mavx512f -mavx2 -mfma -ffp-contract=off
// (activations_avx512.cpp, vector_cells_avx512.cpp). Only AVX-512F instructions are used
// (the bitwise operations go through the integer registers, as AVX-512F has no and/or
// of floats), so the run-time check of isa.cpp needs nothing more.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "vector_math.h"

namespace rnnkit::kernels::detail::avx512::vec {

// The operations whose float and double intrinsics differ only in their suffix (ps, pd).
// fnma(a, b, c) = c - a*b; max(a, b) is b where a is NaN (vmaxps/vmaxpd, as with AVX2);
// le is false for NaN; a comparison gives a mask register M (one bit per lane);
// blend(a, b, mask) = mask ? b : a.
#define RNNKIT_VEC512_COMMON_OPS(T, SUFFIX, ISUFFIX)                                    \
  static V set(T v) { return _mm512_set1_##SUFFIX(v); }                                  \
  static V load(const T* p) { return _mm512_loadu_##SUFFIX(p); }                         \
  static void store(T* p, V v) { _mm512_storeu_##SUFFIX(p, v); }                         \
  static V add(V a, V b) { return _mm512_add_##SUFFIX(a, b); }                           \
  static V sub(V a, V b) { return _mm512_sub_##SUFFIX(a, b); }                           \
  static V mul(V a, V b) { return _mm512_mul_##SUFFIX(a, b); }                           \
  static V div(V a, V b) { return _mm512_div_##SUFFIX(a, b); }                           \
  static V fma(V a, V b, V c) { return _mm512_fmadd_##SUFFIX(a, b, c); }                 \
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_##SUFFIX(a, b, c); }               \
  static V max(V a, V b) { return _mm512_max_##SUFFIX(a, b); }                           \
  static V and_(V a, V b) {                                                              \
    return _mm512_castsi512_##SUFFIX(                                                    \
        _mm512_and_si512(_mm512_cast##SUFFIX##_si512(a), _mm512_cast##SUFFIX##_si512(b))); \
  }                                                                                      \
  static V or_(V a, V b) {                                                               \
    return _mm512_castsi512_##SUFFIX(                                                    \
        _mm512_or_si512(_mm512_cast##SUFFIX##_si512(a), _mm512_cast##SUFFIX##_si512(b)));  \
  }                                                                                      \
  static M lt(V a, V b) { return _mm512_cmp_##SUFFIX##_mask(a, b, _CMP_LT_OQ); }         \
  static M le(V a, V b) { return _mm512_cmp_##SUFFIX##_mask(a, b, _CMP_LE_OQ); }         \
  static M isnan(V a) { return _mm512_cmp_##SUFFIX##_mask(a, a, _CMP_UNORD_Q); }         \
  static V blend(V a, V b, M mask) { return _mm512_mask_blend_##SUFFIX(mask, a, b); }    \
  static bool all(M mask) { return mask == static_cast<M>((1u << L) - 1); }              \
  static V sign_mask() { return _mm512_castsi512_##SUFFIX(_mm512_set1_##ISUFFIX(kSign)); } \
  static V abs_mask() { return _mm512_castsi512_##SUFFIX(_mm512_set1_##ISUFFIX(~kSign)); }

struct F32 : vec_math::Constants<float> {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static constexpr std::int32_t kSign = INT32_MIN;
  RNNKIT_VEC512_COMMON_OPS(float, ps, epi32)
  // 2^n for integral n with a normal result: n + 2^23 + 127 holds n + 127 in its low
  // mantissa bits (exactly); shifting them into the exponent field drops the rest.
  static V pow2(V n) {
    const V biased = _mm512_add_ps(n, _mm512_set1_ps(8388735.0f));  // 2^23 + 127
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(biased), 23));
  }
};

struct F64 : vec_math::Constants<double> {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static constexpr std::int64_t kSign = INT64_MIN;
  RNNKIT_VEC512_COMMON_OPS(double, pd, epi64)
  static V pow2(V n) {
    const V biased = _mm512_add_pd(n, _mm512_set1_pd(4503599627371519.0));  // 2^52 + 1023
    return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(biased), 52));
  }
};

using vec_math::sigmoid_v;
using vec_math::tanh_v;

}  // namespace rnnkit::kernels::detail::avx512::vec

#undef RNNKIT_VEC512_COMMON_OPS
