// GEMM entry points (see gemm.h). For now they run the plain loops; the fast packed
// kernels and their run-time ISA selection plug in here.
#include "rnnkit/gemm.h"

namespace rnnkit::kernels {

using i64 = std::int64_t;

template <typename T>
void gemm_nt(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  plain::gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}
template <typename T>
void gemm_nn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  plain::gemm_nn(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}
template <typename T>
void gemm_tn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  plain::gemm_tn(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

#define RNNKIT_INSTANTIATE(T)                                                              \
  template void gemm_nt<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool); \
  template void gemm_nn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool); \
  template void gemm_tn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels
