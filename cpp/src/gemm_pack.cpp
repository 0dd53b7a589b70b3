// Packing for the micro-tiles (gemm_internal.h): op(B) into panels of NR columns
// (pack_b, also behind PackedB), op(A) into k-major row blocks (pack_a). Pure data
// movement: the packed values are the same bits as the operands.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "gemm_internal.h"
#include "kernels_isa.h"

namespace rnnkit::kernels {
namespace gemm_detail {

template <typename T>
void pack_b(const BView<T>& B, i64 k0, i64 kc, i64 n0, i64 nc, T* dst) {
  constexpr i64 NR = kNR<T>;
  if (B.ns == 1) {
    // op(B) rows contiguous (gemm_nn, gemm_tn): read each row once, left to right, and
    // deal it out to the panels (reading a panel at a time would touch a new page on
    // every row when rows are long).
    for (i64 k = 0; k < kc; ++k) {
      const T* s = B.p + (k0 + k) * B.ks + n0;
      for (i64 j = 0; j < nc; j += NR) {
        const i64 w = std::min(NR, nc - j);
        T* dk = dst + (j / NR) * kc * NR + k * NR;
        if (w == NR) {
          std::memcpy(dk, s + j, sizeof(T) * NR);
        } else {
          for (i64 jj = 0; jj < w; ++jj) dk[jj] = s[j + jj];
          for (i64 jj = w; jj < NR; ++jj) dk[jj] = T(0);
        }
      }
    }
    return;
  }
  // op(B) columns contiguous (gemm_nt: B is N x K): transpose NR rows at a time (with
  // in-register transposes when AVX2 is there: pure data movement, the same bits).
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  const bool avx2 = B.ks == 1 && isa_available(Isa::avx2);
#endif
  for (i64 j = 0; j < nc; j += NR) {
    const i64 w = std::min(NR, nc - j);
    T* d = dst + (j / NR) * kc * NR;
#ifdef RNNKIT_HAVE_AVX2_KERNELS
    if (avx2 && w == NR) {
      detail::avx2::pack_nt_panel(kc, B.p + (n0 + j) * B.ns + k0, B.ns, d);
      continue;
    }
#endif
    if (w < NR) std::memset(d, 0, sizeof(T) * static_cast<std::size_t>(kc * NR));
    for (i64 jj = 0; jj < w; ++jj) {
      const T* s = B.p + (n0 + j + jj) * B.ns + k0 * B.ks;
      for (i64 k = 0; k < kc; ++k) d[k * NR + jj] = s[k * B.ks];
    }
  }
}

template void pack_b<float>(const BView<float>&, i64, i64, i64, i64, float*);
template void pack_b<double>(const BView<double>&, i64, i64, i64, i64, double*);

#ifdef RNNKIT_HAVE_AVX2_KERNELS
template <typename T>
void pack_a(const AView<T>& A, i64 i0, i64 k0, i64 kc, const RowBlocks& rb, T* dst) {
  for (int b = 0; b < rb.count; ++b) {
    const int mr = rb.mr[b];
    T* d = dst + rb.off[b] * kc;
    const i64 ib = i0 + rb.off[b];
    if constexpr (std::is_same_v<T, float>) {  // in-register transposes: same values
      detail::avx2::pack_a_rows(mr, kc, A.p + ib * A.rs + k0, A.rs, d);
      continue;
    }
    for (int i = 0; i < mr; ++i) {
      const T* s = A.p + (ib + i) * A.rs + k0;
      for (i64 k = 0; k < kc; ++k) d[k * mr + i] = s[k];
    }
  }
}

template void pack_a<float>(const AView<float>&, i64, i64, i64, const RowBlocks&, float*);
template void pack_a<double>(const AView<double>&, i64, i64, i64, const RowBlocks&, double*);
#endif  // RNNKIT_HAVE_AVX2_KERNELS

}  // namespace gemm_detail

using gemm_detail::BView;
using gemm_detail::i64;

template <typename T>
void PackedB<T>::resize(i64 N, i64 K) {
  n_ = std::max<i64>(N, 0);
  k_ = std::max<i64>(K, 0);
  const i64 panels = (n_ + kPanel - 1) / kPanel;
  data_.resize(static_cast<std::size_t>(panels * k_ * kPanel));
}

template <typename T>
void PackedB<T>::pack_nt(i64 N, i64 K, const T* B, i64 ldb) {
  resize(N, K);
  if (n_ > 0 && k_ > 0) gemm_detail::pack_b(BView<T>{B, 1, ldb}, 0, k_, 0, n_, data_.data());
}

template <typename T>
void PackedB<T>::pack_nn(i64 K, i64 N, const T* B, i64 ldb) {
  resize(N, K);
  if (n_ > 0 && k_ > 0) gemm_detail::pack_b(BView<T>{B, ldb, 1}, 0, k_, 0, n_, data_.data());
}

template class PackedB<float>;
template class PackedB<double>;

}  // namespace rnnkit::kernels
