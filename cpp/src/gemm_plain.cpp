// ISA "plain": the portable GEMM, and the readable statement of its arithmetic (gemm.h).
// Per element of C:
//   s = 0; for k = 0..K-1: s = s + round(a_k * b_k); C = accumulate ? C + s : s
// (compiled with -ffp-contract=off, so the product is rounded before the add).
//
// The loops run over strips of columns with one row of sums at a time, so that the
// innermost loop walks a contiguous row of op(B) and the compiler can vectorise it across
// columns (each sum still adds its products one by one in k order). A strip of op(B)
// whose rows are not contiguous (gemm_nt) is first copied out, K x strip, to a
// per-thread buffer.
#include <algorithm>

#include "gemm_internal.h"

namespace rnnkit::kernels::gemm_detail {

template <typename T>
void plain_region(i64 m0, i64 m1, i64 n0, i64 n1, i64 K, const AView<T>& A,
                  const BView<T>& B, T* C, i64 ldc, bool accumulate) {
  constexpr i64 kStrip = 256;
  T sum[kStrip];
  for (i64 j0 = n0; j0 < n1; j0 += kStrip) {
    const i64 w = std::min(kStrip, n1 - j0);
    const T* bs = B.p + j0 * B.ns;  // op(B)(k, j0 + j) at bs[k*ks + j]
    i64 ks = B.ks;
    if (B.ns != 1) {
      T* buf = grow(scratch<T>().b, K * w);
      for (i64 k = 0; k < K; ++k) {
        for (i64 j = 0; j < w; ++j) buf[k * w + j] = B.p[k * B.ks + (j0 + j) * B.ns];
      }
      bs = buf;
      ks = w;
    }
    for (i64 m = m0; m < m1; ++m) {
      for (i64 j = 0; j < w; ++j) sum[j] = T(0);
      for (i64 k = 0; k < K; ++k) {
        const T a = A.p[m * A.rs + k * A.cs];
        const T* b = bs + k * ks;
        for (i64 j = 0; j < w; ++j) sum[j] = sum[j] + a * b[j];
      }
      T* c = C + m * ldc + j0;
      for (i64 j = 0; j < w; ++j) c[j] = accumulate ? c[j] + sum[j] : sum[j];
    }
  }
}

template <typename T>
void plain_region_packed(i64 m0, i64 m1, i64 n0, i64 n1, const AView<T>& A,
                         const PackedB<T>& Bp, T* C, i64 ldc, bool accumulate) {
  constexpr i64 NR = kNR<T>;
  const i64 K = Bp.k();
  for (i64 p = n0 / NR; p * NR < n1; ++p) {
    // Within panel p, op(B)(k, n) = data[p*K*NR + k*NR + (n - p*NR)].
    const BView<T> B{Bp.data() + p * K * NR - p * NR, NR, 1};
    plain_region(m0, m1, std::max(n0, p * NR), std::min(n1, (p + 1) * NR), K, A, B, C, ldc,
                 accumulate);
  }
}

template <typename T>
void plain_gemv_panels(int np, i64 K, const T* x, const T* const* b, T* const* y,
                       unsigned accumulate) {
  constexpr i64 NR = kNR<T>;
  for (int p = 0; p < np; ++p) {
    T sum[NR] = {};
    for (i64 k = 0; k < K; ++k) {
      for (i64 j = 0; j < NR; ++j) sum[j] = sum[j] + x[k] * b[p][k * NR + j];
    }
    const bool acc = (accumulate >> p) & 1u;
    for (i64 j = 0; j < NR; ++j) y[p][j] = acc ? y[p][j] + sum[j] : sum[j];
  }
}

#define RNNKIT_INSTANTIATE(T)                                                             \
  template void plain_region<T>(i64, i64, i64, i64, i64, const AView<T>&, const BView<T>&, \
                                T*, i64, bool);                                           \
  template void plain_region_packed<T>(i64, i64, i64, i64, const AView<T>&,               \
                                       const PackedB<T>&, T*, i64, bool);         \
  template void plain_gemv_panels<T>(int, i64, const T*, const T* const*, T* const*, unsigned);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels::gemm_detail
