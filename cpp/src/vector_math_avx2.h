// The AVX2/FMA vector operations (F32: 8 floats, F64: 4 doubles; Ops<T> picks one) that
// the AVX2 GEMM tiles are written in, and that instantiate the sigmoid and tanh of
// vector_math.h (sigmoid_v, tanh_v) for AVX2. Internal: included only by translation
// units compiled with -mavx2 -mfma -ffp-contract=off (activations_avx2.cpp,
// vector_cells_avx2.cpp, gemm_avx2.cpp), so every user gets the same instructions, hence
// the same bits.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "vector_math.h"

namespace rnnkit::kernels::detail::avx2::vec {

// The operations whose float and double intrinsics differ only in their suffix (ps, pd).
// fnma(a, b, c) = c - a*b; max(a, b) is b where a is NaN; le is false for NaN;
// blend(a, b, mask) = mask ? b : a; a comparison's mask is a register of all-ones lanes.
#define RNNKIT_VEC_COMMON_OPS(T, SUFFIX)                                         \
  static V set(T v) { return _mm256_set1_##SUFFIX(v); }                           \
  static V zero() { return _mm256_setzero_##SUFFIX(); }                           \
  static V load(const T* p) { return _mm256_loadu_##SUFFIX(p); }                  \
  static void store(T* p, V v) { _mm256_storeu_##SUFFIX(p, v); }                  \
  static V add(V a, V b) { return _mm256_add_##SUFFIX(a, b); }                    \
  static V sub(V a, V b) { return _mm256_sub_##SUFFIX(a, b); }                    \
  static V mul(V a, V b) { return _mm256_mul_##SUFFIX(a, b); }                    \
  static V div(V a, V b) { return _mm256_div_##SUFFIX(a, b); }                    \
  static V fma(V a, V b, V c) { return _mm256_fmadd_##SUFFIX(a, b, c); }          \
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_##SUFFIX(a, b, c); }        \
  static V max(V a, V b) { return _mm256_max_##SUFFIX(a, b); }                    \
  static V and_(V a, V b) { return _mm256_and_##SUFFIX(a, b); }                   \
  static V or_(V a, V b) { return _mm256_or_##SUFFIX(a, b); }                     \
  static V lt(V a, V b) { return _mm256_cmp_##SUFFIX(a, b, _CMP_LT_OQ); }         \
  static V le(V a, V b) { return _mm256_cmp_##SUFFIX(a, b, _CMP_LE_OQ); }         \
  static V isnan(V a) { return _mm256_cmp_##SUFFIX(a, a, _CMP_UNORD_Q); }         \
  static V blend(V a, V b, V mask) { return _mm256_blendv_##SUFFIX(a, b, mask); }

struct F32 : vec_math::Constants<float> {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  RNNKIT_VEC_COMMON_OPS(float, ps)
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static bool all(V mask) { return _mm256_movemask_ps(mask) == 0xff; }
  static V sign_mask() { return _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)); }
  static V abs_mask() { return _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MAX)); }
  // 2^n for integral n with a normal result: n + 2^23 + 127 holds n + 127 in its low
  // mantissa bits (exactly); shifting them into the exponent field drops the rest.
  static V pow2(V n) {
    const V biased = _mm256_add_ps(n, _mm256_set1_ps(8388735.0f));  // 2^23 + 127
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(biased), 23));
  }
};

struct F64 : vec_math::Constants<double> {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  RNNKIT_VEC_COMMON_OPS(double, pd)
  static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static bool all(V mask) { return _mm256_movemask_pd(mask) == 0xf; }
  static V sign_mask() { return _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MIN)); }
  static V abs_mask() { return _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX)); }
  static V pow2(V n) {
    const V biased = _mm256_add_pd(n, _mm256_set1_pd(4503599627371519.0));  // 2^52 + 1023
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(biased), 52));
  }
};

// The operations for element type T: F32 for float, F64 for double.
template <typename T>
struct OpsFor;
template <>
struct OpsFor<float> {
  using type = F32;
};
template <>
struct OpsFor<double> {
  using type = F64;
};
template <typename T>
using Ops = typename OpsFor<T>::type;

using vec_math::sigmoid_v;
using vec_math::tanh_v;

}  // namespace rnnkit::kernels::detail::avx2::vec

#undef RNNKIT_VEC_COMMON_OPS
