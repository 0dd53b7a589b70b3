// The GEMM entry points of gemm.h: the edge cases (empty products, K == 0), then the
// split between threads (gemm_threads.cpp) of the ISA's path: the micro-tiles
// (gemm_blocked.cpp) for "avx2" and "avx512", the reference loops (gemm_plain.cpp) for
// "plain".
#include <algorithm>
#include <stdexcept>
#include <string>

#include "gemm_internal.h"
#include "kernels_isa.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"

namespace rnnkit::kernels {

using namespace gemm_detail;

namespace {

template <typename T>
void zero_region(i64 m0, i64 m1, i64 n0, i64 n1, T* C, i64 ldc) {
  for (i64 m = m0; m < m1; ++m) {
    for (i64 n = n0; n < n1; ++n) C[m * ldc + n] = T(0);
  }
}

template <typename T>
void gemm_views(i64 M, i64 N, i64 K, const AView<T>& A, const BView<T>& B, T* C, i64 ldc,
                bool accumulate, Split prefer) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) zero_region(i64(0), M, i64(0), N, C, ldc);
    return;
  }
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (const Isa isa = current_isa(); isa != Isa::plain) {
    const Tiles<T> tk = tiles_for<T>(isa);
    run_split(M, 0, N, K, kNR<T>, Calls::one_off, prefer, [&](i64 m0, i64 m1, i64 n0, i64 n1) {
      blocked_region(tk, m0, m1, n0, n1, K, A, B, C, ldc, accumulate);
    });
    return;
  }
#endif
  run_split(M, 0, N, K, kNR<T>, Calls::one_off, prefer, [&](i64 m0, i64 m1, i64 n0, i64 n1) {
    plain_region(m0, m1, n0, n1, K, A, B, C, ldc, accumulate);
  });
}

}  // namespace

template <typename T>
void gemm_nt(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  gemm_views<T>(M, N, K, AView<T>{A, lda, 1}, BView<T>{B, 1, ldb}, C, ldc, accumulate,
                Split::columns);
}
template <typename T>
void gemm_nn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  gemm_views<T>(M, N, K, AView<T>{A, lda, 1}, BView<T>{B, ldb, 1}, C, ldc, accumulate,
                Split::rows);
}
template <typename T>
void gemm_tn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  gemm_views<T>(M, N, K, AView<T>{A, 1, lda}, BView<T>{B, ldb, 1}, C, ldc, accumulate,
                Split::rows);
}

template <typename T>
void gemm_packed_cols(i64 M, i64 n_begin, i64 n_end, const T* A, i64 lda, const PackedB<T>& Bp,
                      T* C, i64 ldc, bool accumulate) {
  n_begin = std::max<i64>(n_begin, 0);
  n_end = std::min(n_end, Bp.n());
  if (M <= 0 || n_end <= n_begin) return;
  if (Bp.k() <= 0) {
    if (!accumulate) zero_region(i64(0), M, n_begin, n_end, C, ldc);
    return;
  }
  const AView<T> Av{A, lda, 1};
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (const Isa isa = current_isa(); isa != Isa::plain) {
    const Tiles<T> tk = tiles_for<T>(isa);
    const PackedTerm<T> term{Av, &Bp};
    run_split(M, n_begin, n_end, Bp.k(), kNR<T>, Calls::prepacked, Split::columns,
              [&](i64 m0, i64 m1, i64 n0, i64 n1) {
      blocked_region_packed(tk, m0, m1, n0, n1, &term, 1, C, ldc, accumulate);
    });
    return;
  }
#endif
  run_split(M, n_begin, n_end, Bp.k(), kNR<T>, Calls::prepacked, Split::columns,
            [&](i64 m0, i64 m1, i64 n0, i64 n1) {
    plain_region_packed(m0, m1, n0, n1, Av, Bp, C, ldc, accumulate);
  });
}

template <typename T>
void gemm_packed(i64 M, const T* A, i64 lda, const PackedB<T>& Bp, T* C, i64 ldc,
                 bool accumulate) {
  gemm_packed_cols(M, 0, Bp.n(), A, lda, Bp, C, ldc, accumulate);
}

template <typename T>
void gemm_packed_pair_cols(i64 M, i64 n_begin, i64 n_end, const T* A1, i64 lda1,
                           const PackedB<T>& B1, const T* A2, i64 lda2, const PackedB<T>& B2,
                           T* C, i64 ldc) {
  if (B1.n() != B2.n()) {
    throw std::invalid_argument("gemm_packed_pair_cols: B1 and B2 must have the same N, got " +
                                std::to_string(B1.n()) + " and " + std::to_string(B2.n()));
  }
  n_begin = std::max<i64>(n_begin, 0);
  n_end = std::min(n_end, B1.n());
  if (M <= 0 || n_end <= n_begin) return;
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  const Isa isa = current_isa();
  if (isa != Isa::plain && B1.k() > 0 && B2.k() > 0) {
    const Tiles<T> tk = tiles_for<T>(isa);
    const PackedTerm<T> terms[2] = {{AView<T>{A1, lda1, 1}, &B1}, {AView<T>{A2, lda2, 1}, &B2}};
    run_split(M, n_begin, n_end, B1.k() + B2.k(), kNR<T>, Calls::prepacked, Split::columns,
              [&](i64 m0, i64 m1, i64 n0, i64 n1) {
      blocked_region_packed(tk, m0, m1, n0, n1, terms, 2, C, ldc, false);
    });
    return;
  }
#endif
  // ISA plain (each product rounds its own sum before adding it to C) and empty products.
  gemm_packed_cols(M, n_begin, n_end, A1, lda1, B1, C, ldc, false);
  gemm_packed_cols(M, n_begin, n_end, A2, lda2, B2, C, ldc, true);
}

namespace {

// gemv_panels's tile on its own (the ISAs without gemv_panels_tile): the bits of
// gemm_packed's micro-tiles (avx2) or its reference loops (plain).
template <typename T>
void gemv_tile_alone(Isa isa, const GemvTile<T>& t) {
  constexpr i64 NR = kNR<T>;
  const i64 K = t.b->k();
  const T* bt = t.b->data() + t.panel * K * NR;
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (isa != Isa::plain) {
    for (int i0 = 0; i0 < t.rows; i0 += kMR) {
      const int mr = std::min<int>(kMR, t.rows - i0);
      detail::avx2::tile<T>(mr, 1, K, t.a + i0 * t.lda, t.lda, 1, bt, K * NR, t.c + i0 * t.ldc,
                            t.ldc, false);
    }
    return;
  }
#endif
  (void)isa;
  for (int i = 0; i < t.rows; ++i) {
    const T* b[1] = {bt};
    T* c[1] = {t.c + i * t.ldc};
    plain_gemv_panels(1, K, t.a + i * t.lda, b, c, 0u);
  }
}

}  // namespace

template <typename T>
void gemv_panels(const T* x, const PackedB<T>& Bp, int count, const i64* panel, T* const* y,
                 unsigned accumulate, const GemvTile<T>* tile) {
  if (count < 1 || count > kGemvMaxPanels) {
    throw std::invalid_argument("gemv_panels: count must be in [1, " +
                                std::to_string(kGemvMaxPanels) + "], got " +
                                std::to_string(count));
  }
  if (tile != nullptr && (tile->rows < 1 || tile->rows > kGemvTileMaxRows)) {
    throw std::invalid_argument("gemv_panels: tile rows must be in [1, " +
                                std::to_string(kGemvTileMaxRows) + "], got " +
                                std::to_string(tile->rows));
  }
  const i64 K = Bp.k();
  const T* b[kGemvMaxPanels];  // the panels' first elements
  for (int j = 0; j < count; ++j) b[j] = Bp.data() + panel[j] * K * kNR<T>;
  const Isa isa = current_isa();
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (isa == Isa::avx512) {
    if (tile == nullptr) return detail::avx512::gemv_panels(count, K, x, b, y, accumulate);
    const i64 kt = tile->b->k();
    return detail::avx512::gemv_panels_tile(count, K, x, b, y, accumulate, tile->rows, kt,
                                            tile->a, tile->lda,
                                            tile->b->data() + tile->panel * kt * kNR<T>,
                                            tile->c, tile->ldc);
  }
#endif
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (isa != Isa::plain) {
    detail::avx2::gemv_panels(count, K, x, b, y, accumulate);
    if (tile != nullptr) gemv_tile_alone(isa, *tile);
    return;
  }
#endif
  plain_gemv_panels(count, K, x, b, y, accumulate);
  if (tile != nullptr) gemv_tile_alone(isa, *tile);
}

#define RNNKIT_INSTANTIATE(T)                                                                \
  template void gemm_nt<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_nn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_tn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_packed<T>(i64, const T*, i64, const PackedB<T>&, T*, i64, bool);       \
  template void gemm_packed_cols<T>(i64, i64, i64, const T*, i64, const PackedB<T>&, T*, i64, \
                                    bool);                                                   \
  template void gemm_packed_pair_cols<T>(i64, i64, i64, const T*, i64, const PackedB<T>&,     \
                                         const T*, i64, const PackedB<T>&, T*, i64);         \
  template void gemv_panels<T>(const T*, const PackedB<T>&, int, const i64*, T* const*,   \
                               unsigned, const GemvTile<T>*);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels
