// AVX-512F GEMM micro-tiles (see kernels_isa.h for the contract). Compiled with
// -mavx512f -mavx2 -mfma -ffp-contract=off; called only when the CPU has all three.
//
// A panel of PackedB (16 floats / 8 doubles) is one 512-bit register, so a tile keeps
// mr x np accumulators: at most 24 of the 32 zmm registers (6 x 4: 6 rows x 64 float
// columns), leaving room for the broadcast A values and a B vector. Per k a 6 x 4 tile
// loads 4 B vectors and broadcasts 6 A values for 24 FMAs, where the AVX2 6 x 16 tile
// needs 2 loads and 6 broadcasts for 12: fewer instructions and loads per FMA, the same
// FMA throughput where the CPU splits a 512-bit FMA in two (Zen 4).
//
// Every accumulator is one FMA chain over k in increasing order, starting from 0 or C, as
// in the AVX2 tiles: the two ISAs give the same bits for every element.
#include <immintrin.h>

#include "kernels_isa.h"

namespace rnnkit::kernels::detail::avx512 {

namespace {

// One 512-bit register of T (Zmm<float>, Zmm<double>): the float and double intrinsics
// differ only in their suffix (ps, pd).
template <typename T>
struct Zmm;
#define RNNKIT_ZMM_OPS(TYPE, VEC, SUFFIX)                                    \
  template <>                                                                \
  struct Zmm<TYPE> {                                                         \
    using T = TYPE;                                                          \
    using V = VEC;                                                           \
    static V load(const T* p) { return _mm512_loadu_##SUFFIX(p); }           \
    static void store(T* p, V v) { _mm512_storeu_##SUFFIX(p, v); }           \
    static V bcast(const T* p) { return _mm512_set1_##SUFFIX(*p); }          \
    static V fma(V a, V b, V c) { return _mm512_fmadd_##SUFFIX(a, b, c); }   \
    static V zero() { return _mm512_setzero_##SUFFIX(); }                    \
  };
RNNKIT_ZMM_OPS(float, __m512, ps)
RNNKIT_ZMM_OPS(double, __m512d, pd)
#undef RNNKIT_ZMM_OPS

// acc[i][p] continues its FMA chain over k < kc: a: MR x kc (element (i, k) at
// a[i*ars + k*acs]), b: NP panels (stride bps) of kc x NR, NR = one register of lanes.
template <class O, int MR, int NP>
inline void fma_chain(typename O::V (&acc)[MR][NP], i64 kc, const typename O::T* a, i64 ars,
                      i64 acs, const typename O::T* b, i64 bps) {
  constexpr int NR = 64 / sizeof(typename O::T);
  const typename O::T* arow[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) arow[i] = a + i * ars;
#pragma GCC unroll 2
  for (i64 k = 0; k < kc; ++k) {
    const typename O::T* bk = b + k * NR;
    const i64 ak = k * acs;
    typename O::V ai[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ai[i] = O::bcast(arow[i] + ak);
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) {
      const typename O::V bp = O::load(bk + p * bps);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][p] = O::fma(ai[i], bp, acc[i][p]);
    }
  }
}

// The tile over one product t1, or with kPair over t1 then t2 back to back in the same
// accumulators (kernels_isa.h: tile, tile_pair); c: MR x NP*NR (ldc).
template <class O, int MR, int NP, bool kPair>
void tile_impl(const TileOperand<typename O::T>& t1, const TileOperand<typename O::T>& t2,
               typename O::T* c, i64 ldc, bool load_c) {
  constexpr int NR = 64 / sizeof(typename O::T);
  typename O::V acc[MR][NP];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) acc[i][p] = load_c ? O::load(c + i * ldc + p * NR) : O::zero();
  }
  fma_chain<O, MR, NP>(acc, t1.kc, t1.a, t1.ars, t1.acs, t1.b, t1.bps);
  if constexpr (kPair) fma_chain<O, MR, NP>(acc, t2.kc, t2.a, t2.ars, t2.acs, t2.b, t2.bps);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) O::store(c + i * ldc + p * NR, acc[i][p]);
  }
}

// One instance of tile_impl per (mr, np) that max_panels allows.
template <typename T, bool kPair>
void tile_dispatch(int mr, int np, const TileOperand<T>& t1, const TileOperand<T>& t2, T* c,
                   i64 ldc, bool load_c) {
  using O = Zmm<T>;
  switch (mr * 16 + np) {
#define RNNKIT_TILE(MR, NP) \
  case MR * 16 + NP:        \
    return tile_impl<O, MR, NP, kPair>(t1, t2, c, ldc, load_c);
#define RNNKIT_TILES_4(MR) RNNKIT_TILE(MR, 1) RNNKIT_TILE(MR, 2) RNNKIT_TILE(MR, 3) RNNKIT_TILE(MR, 4)
#define RNNKIT_TILES_6(MR) RNNKIT_TILES_4(MR) RNNKIT_TILE(MR, 5) RNNKIT_TILE(MR, 6)
    RNNKIT_TILES_4(6)
    RNNKIT_TILES_4(5)
    RNNKIT_TILES_6(4)
    RNNKIT_TILES_6(3)
    RNNKIT_TILES_4(2)
    RNNKIT_TILES_4(1)
#undef RNNKIT_TILES_6
#undef RNNKIT_TILES_4
#undef RNNKIT_TILE
    default:
      return;  // unreachable: gemm_blocked.cpp only asks for the shapes above (max_panels)
  }
}

}  // namespace

template <typename T>
void tile(int mr, int np, i64 kc, const T* a, i64 ars, i64 acs, const T* b, i64 bps, T* c,
          i64 ldc, bool load_c) {
  const TileOperand<T> t{kc, a, ars, acs, b, bps};
  tile_dispatch<T, false>(mr, np, t, t, c, ldc, load_c);
}
template <typename T>
void tile_pair(int mr, int np, const TileOperand<T>& t1, const TileOperand<T>& t2, T* c,
               i64 ldc) {
  tile_dispatch<T, true>(mr, np, t1, t2, c, ldc, false);
}
template void tile(int, int, i64, const float*, i64, i64, const float*, i64, float*, i64, bool);
template void tile(int, int, i64, const double*, i64, i64, const double*, i64, double*, i64,
                   bool);
template void tile_pair(int, int, const TileOperand<float>&, const TileOperand<float>&, float*,
                        i64);
template void tile_pair(int, int, const TileOperand<double>&, const TileOperand<double>&,
                        double*, i64);

namespace {

// x: kc values, b: NP panels of kc x NR, y: NP rows of NR; with MR > 0 also the MR x
// 1-panel tile of a (MR x kt) and bt (kt x NR) into c (kernels_isa.h: gemv_panels_tile).
template <class O, int NP, int MR>
void gemv_tile_impl(i64 kc, const typename O::T* x, const typename O::T* const* b,
                    typename O::T* const* y, unsigned load_c, i64 kt, const typename O::T* a,
                    i64 lda, const typename O::T* bt, typename O::T* c, i64 ldc) {
  constexpr int NR = 64 / sizeof(typename O::T);
  typename O::V acc[NP], tacc[MR > 0 ? MR : 1];
  const typename O::T* bp[NP];
#pragma GCC unroll 4
  for (int p = 0; p < NP; ++p) {
    acc[p] = (load_c >> p) & 1u ? O::load(y[p]) : O::zero();
    bp[p] = b[p];
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) tacc[i] = O::zero();
  const i64 both = MR == 0 ? 0 : (kc < kt ? kc : kt);
  auto row_step = [&](i64 k) {
    const typename O::V xk = O::bcast(x + k);
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) acc[p] = O::fma(xk, O::load(bp[p] + k * NR), acc[p]);
  };
  auto tile_step = [&](i64 k) {
    if constexpr (MR > 0) {
      const typename O::V bk = O::load(bt + k * NR);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) tacc[i] = O::fma(O::bcast(a + i * lda + k), bk, tacc[i]);
    }
  };
  i64 k = 0;
#pragma GCC unroll 2
  for (; k < both; ++k) {
    row_step(k);
    tile_step(k);
  }
  for (i64 k1 = k; k1 < kc; ++k1) row_step(k1);
  if constexpr (MR > 0) {
    for (i64 k1 = k; k1 < kt; ++k1) tile_step(k1);
  }
#pragma GCC unroll 4
  for (int p = 0; p < NP; ++p) O::store(y[p], acc[p]);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) O::store(c + i * ldc, tacc[i]);
}

template <class O, int NP>
void gemv_tile_rows(int mr, i64 kc, const typename O::T* x, const typename O::T* const* b,
                    typename O::T* const* y, unsigned load_c, i64 kt, const typename O::T* a,
                    i64 lda, const typename O::T* bt, typename O::T* c, i64 ldc) {
  switch (mr) {
#define RNNKIT_GEMV_TILE(MR) \
  case MR:                   \
    return gemv_tile_impl<O, NP, MR>(kc, x, b, y, load_c, kt, a, lda, bt, c, ldc);
    RNNKIT_GEMV_TILE(0)
    RNNKIT_GEMV_TILE(1)
    RNNKIT_GEMV_TILE(2)
    RNNKIT_GEMV_TILE(3)
    RNNKIT_GEMV_TILE(4)
    RNNKIT_GEMV_TILE(5)
    RNNKIT_GEMV_TILE(6)
    RNNKIT_GEMV_TILE(7)
    RNNKIT_GEMV_TILE(8)
#undef RNNKIT_GEMV_TILE
    default:
      return;  // unreachable: gemm.cpp checks mr <= kGemvTileMaxRows
  }
}

}  // namespace

template <typename T>
void gemv_panels_tile(int np, i64 kc, const T* x, const T* const* b, T* const* y,
                      unsigned load_c, int mr, i64 kt, const T* a, i64 lda, const T* bt, T* c,
                      i64 ldc) {
  using O = Zmm<T>;
  switch (np) {
    case 1:
      return gemv_tile_rows<O, 1>(mr, kc, x, b, y, load_c, kt, a, lda, bt, c, ldc);
    case 2:
      return gemv_tile_rows<O, 2>(mr, kc, x, b, y, load_c, kt, a, lda, bt, c, ldc);
    case 3:
      return gemv_tile_rows<O, 3>(mr, kc, x, b, y, load_c, kt, a, lda, bt, c, ldc);
    case 4:
      return gemv_tile_rows<O, 4>(mr, kc, x, b, y, load_c, kt, a, lda, bt, c, ldc);
    default:
      return;  // unreachable: gemm.cpp checks 1 <= np <= kGemvMaxPanels
  }
}
template void gemv_panels_tile(int, i64, const float*, const float* const*, float* const*,
                               unsigned, int, i64, const float*, i64, const float*, float*,
                               i64);
template void gemv_panels_tile(int, i64, const double*, const double* const*, double* const*,
                               unsigned, int, i64, const double*, i64, const double*, double*,
                               i64);

template <typename T>
void gemv_panels(int np, i64 kc, const T* x, const T* const* b, T* const* y, unsigned load_c) {
  gemv_panels_tile<T>(np, kc, x, b, y, load_c, 0, 0, nullptr, 0, nullptr, nullptr, 0);
}
template void gemv_panels(int, i64, const float*, const float* const*, float* const*, unsigned);
template void gemv_panels(int, i64, const double*, const double* const*, double* const*,
                          unsigned);

}  // namespace rnnkit::kernels::detail::avx512
