// AVX2/FMA GEMM micro-tiles (see kernels_isa.h for the contract). Compiled with
// -mavx2 -mfma -ffp-contract=off; called only when the CPU has AVX2 and FMA.
//
// A tile keeps mr x np x 2 accumulator registers (at most 12 of the 16 ymm registers;
// the rest hold two B vectors and a broadcast A value). Every accumulator is one FMA
// chain over k in increasing order, so an element's bits do not depend on which tile
// shape (mr, np) computed it: the driver in gemm_blocked.cpp chooses shapes freely.
// The vector operations are those of vector_math_avx2.h (vec::Ops<T>).
#include <immintrin.h>

#include "kernels_isa.h"
#include "vector_math_avx2.h"

namespace rnnkit::kernels::detail::avx2 {

namespace {

// a: MR x kc (element (i, k) at a[i*ars + k*acs]), b: NP panels (stride bps) of kc x NR,
// c: MR x NP*NR (ldc).
template <class O, int MR, int NP>
void tile_impl(i64 kc, const typename O::T* a, i64 ars, i64 acs, const typename O::T* b,
               i64 bps, typename O::T* c, i64 ldc, bool load_c) {
  constexpr int L = O::L;
  constexpr int NR = 2 * L;
  // Each A value feeds NP panels. Kept in registers across them, the MR values, two B
  // vectors and 2*MR*NP accumulators need more than the 16 ymm registers for (3, 2), and
  // GCC then spills an accumulator (a store and a reload on its FMA chain every k, which
  // lengthens the chain). Hiding from the optimiser that the A offset is the same for
  // every panel makes it broadcast the A values again per panel instead (loads are cheap
  // here; a longer FMA chain is not).
  constexpr bool kBroadcastPerPanel = NP > 1 && MR + 2 + 2 * MR * NP > 16;
  typename O::V acc[MR][NP][2];
  if (load_c) {
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 6
      for (int p = 0; p < NP; ++p) {
        acc[i][p][0] = O::load(c + i * ldc + p * NR);
        acc[i][p][1] = O::load(c + i * ldc + p * NR + L);
      }
    }
  } else {
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 6
      for (int p = 0; p < NP; ++p) acc[i][p][0] = acc[i][p][1] = O::zero();
    }
  }
  const typename O::T* arow[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) arow[i] = a + i * ars;
#pragma GCC unroll 4
  for (i64 k = 0; k < kc; ++k) {
    const typename O::T* bk = b + k * NR;
    const i64 ak = k * acs;
#pragma GCC unroll 6
    for (int p = 0; p < NP; ++p) {
      const typename O::V b0 = O::load(bk + p * bps);
      const typename O::V b1 = O::load(bk + p * bps + L);
      i64 akp = ak;  // = ak; see kBroadcastPerPanel
      if constexpr (kBroadcastPerPanel) asm volatile("" : "+r"(akp));
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const typename O::V ai = O::bcast(arow[i] + akp);
        acc[i][p][0] = O::fma(ai, b0, acc[i][p][0]);
        acc[i][p][1] = O::fma(ai, b1, acc[i][p][1]);
      }
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 6
    for (int p = 0; p < NP; ++p) {
      O::store(c + i * ldc + p * NR, acc[i][p][0]);
      O::store(c + i * ldc + p * NR + L, acc[i][p][1]);
    }
  }
}

}  // namespace

// One instance of tile_impl per (mr, np) that max_panels allows (kernels_isa.h).
template <typename T>
void tile(int mr, int np, i64 kc, const T* a, i64 ars, i64 acs, const T* b, i64 bps, T* c,
          i64 ldc, bool load_c) {
  using O = vec::Ops<T>;
  switch (mr * 8 + np) {
#define RNNKIT_TILE(MR, NP) \
  case MR * 8 + NP:         \
    return tile_impl<O, MR, NP>(kc, a, ars, acs, b, bps, c, ldc, load_c);
    RNNKIT_TILE(6, 1)
    RNNKIT_TILE(5, 1)
    RNNKIT_TILE(4, 1)
    RNNKIT_TILE(3, 1)
    RNNKIT_TILE(3, 2)
    RNNKIT_TILE(2, 1)
    RNNKIT_TILE(2, 2)
    RNNKIT_TILE(2, 3)
    RNNKIT_TILE(1, 1)
    RNNKIT_TILE(1, 2)
    RNNKIT_TILE(1, 3)
    RNNKIT_TILE(1, 4)
    RNNKIT_TILE(1, 5)
    RNNKIT_TILE(1, 6)
#undef RNNKIT_TILE
    default:
      return;  // unreachable: gemm_blocked.cpp only asks for the shapes above (max_panels)
  }
}
template void tile(int, int, i64, const float*, i64, i64, const float*, i64, float*, i64, bool);
template void tile(int, int, i64, const double*, i64, i64, const double*, i64, double*, i64,
                   bool);

namespace {

// x: kc values, b: NP panels of kc x NR, y: NP rows of NR (kernels_isa.h); a panel is two
// registers.
template <class O, int NP>
void gemv_impl(i64 kc, const typename O::T* x, const typename O::T* const* b,
               typename O::T* const* y, unsigned load_c) {
  constexpr int L = O::L;
  constexpr int NR = 2 * L;
  typename O::V acc[NP][2];
  const typename O::T* bp[NP];
#pragma GCC unroll 4
  for (int p = 0; p < NP; ++p) {
    const bool load = (load_c >> p) & 1u;
    acc[p][0] = load ? O::load(y[p]) : O::zero();
    acc[p][1] = load ? O::load(y[p] + L) : O::zero();
    bp[p] = b[p];
  }
#pragma GCC unroll 2
  for (i64 k = 0; k < kc; ++k) {
    const typename O::V xk = O::bcast(x + k);
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) {
      acc[p][0] = O::fma(xk, O::load(bp[p] + k * NR), acc[p][0]);
      acc[p][1] = O::fma(xk, O::load(bp[p] + k * NR + L), acc[p][1]);
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < NP; ++p) {
    O::store(y[p], acc[p][0]);
    O::store(y[p] + L, acc[p][1]);
  }
}

}  // namespace

template <typename T>
void gemv_panels(int np, i64 kc, const T* x, const T* const* b, T* const* y, unsigned load_c) {
  using O = vec::Ops<T>;
  switch (np) {
    case 1:
      return gemv_impl<O, 1>(kc, x, b, y, load_c);
    case 2:
      return gemv_impl<O, 2>(kc, x, b, y, load_c);
    case 3:
      return gemv_impl<O, 3>(kc, x, b, y, load_c);
    case 4:
      return gemv_impl<O, 4>(kc, x, b, y, load_c);
    default:
      return;  // unreachable: gemm.cpp checks 1 <= np <= kGemvMaxPanels
  }
}
template void gemv_panels(int, i64, const float*, const float* const*, float* const*, unsigned);
template void gemv_panels(int, i64, const double*, const double* const*, double* const*,
                          unsigned);

namespace {

// In-register transposes: rows r[0..7] (8 floats each) -> columns; r[0..3] (4 doubles).
inline void transpose(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

inline void transpose(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

}  // namespace

// Columns k..k+L-1 of the panel's rows at a time: two L x L blocks (rows 0..L-1 and
// L..2L-1), each transposed in registers; the last kc % L columns one value at a time.
template <typename T>
void pack_nt_panel(i64 kc, const T* src, i64 lds, T* dst) {
  using O = vec::Ops<T>;
  constexpr int L = O::L, NR = 2 * L;
  i64 k = 0;
  for (; k + L <= kc; k += L) {
    for (int half = 0; half < 2; ++half) {
      typename O::V r[L];
      for (int j = 0; j < L; ++j) r[j] = O::load(src + (half * L + j) * lds + k);
      transpose(r);
      for (int kk = 0; kk < L; ++kk) O::store(dst + (k + kk) * NR + half * L, r[kk]);
    }
  }
  for (; k < kc; ++k) {
    for (int j = 0; j < NR; ++j) dst[k * NR + j] = src[j * lds + k];
  }
}
template void pack_nt_panel(i64, const float*, i64, float*);
template void pack_nt_panel(i64, const double*, i64, double*);

void pack_a_rows(int mr, i64 kc, const float* src, i64 lds, float* dst) {
  i64 k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) {
      r[i] = i < mr ? _mm256_loadu_ps(src + i * lds + k) : _mm256_setzero_ps();
    }
    transpose(r);
    // r[kk] holds column k+kk (mr values, then padding). Stores go in increasing order, so
    // the padding written past column k+kk is overwritten by the later columns; the last
    // columns of dst, where 8 values would run past its end, take only their mr values.
    for (int kk = 0; kk < 8; ++kk) {
      float* d = dst + (k + kk) * mr;
      if ((k + kk) * mr + 8 <= kc * mr) {
        _mm256_storeu_ps(d, r[kk]);
      } else {
        alignas(32) float buf[8];
        _mm256_store_ps(buf, r[kk]);
        for (int i = 0; i < mr; ++i) d[i] = buf[i];
      }
    }
  }
  for (; k < kc; ++k) {
    for (int i = 0; i < mr; ++i) dst[k * mr + i] = src[i * lds + k];
  }
}

float fma_peak_loop(i64 iters, float seed) {
  // 12 independent FMA chains (enough to cover the FMA latency on both pipes), no memory.
  const __m256 m = _mm256_set1_ps(0.999999f);
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + static_cast<float>(i));
  for (i64 it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, m);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

}  // namespace rnnkit::kernels::detail::avx2
