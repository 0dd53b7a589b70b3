// The GEMM entry points of gemm.h: the edge cases (empty products, K == 0), then the
// split between threads (gemm_threads.cpp) of the ISA's path: the micro-tiles
// (gemm_blocked.cpp) for "avx2" and "avx512", the reference loops (gemm_plain.cpp) for
// "plain".
#include <algorithm>

#include "gemm_internal.h"
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
    run_split(M, n_begin, n_end, Bp.k(), kNR<T>, Calls::prepacked, Split::columns,
              [&](i64 m0, i64 m1, i64 n0, i64 n1) {
      blocked_region_packed(tk, m0, m1, n0, n1, Av, Bp, C, ldc, accumulate);
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

#define RNNKIT_INSTANTIATE(T)                                                                \
  template void gemm_nt<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_nn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_tn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_packed<T>(i64, const T*, i64, const PackedB<T>&, T*, i64, bool);       \
  template void gemm_packed_cols<T>(i64, i64, i64, const T*, i64, const PackedB<T>&, T*, i64, \
                                    bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels
