// The plain GEMM loops (see gemm.h). Each output element is one dot product over k in
// increasing order.
#include "rnnkit/gemm.h"

namespace rnnkit::kernels::plain {

using i64 = std::int64_t;

template <typename T>
void gemm_nt(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  for (i64 m = 0; m < M; ++m) {
    for (i64 n = 0; n < N; ++n) {
      T sum = 0;
      for (i64 k = 0; k < K; ++k) sum += A[m * lda + k] * B[n * ldb + k];
      C[m * ldc + n] = accumulate ? C[m * ldc + n] + sum : sum;
    }
  }
}

template <typename T>
void gemm_nn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  for (i64 m = 0; m < M; ++m) {
    for (i64 n = 0; n < N; ++n) {
      T sum = 0;
      for (i64 k = 0; k < K; ++k) sum += A[m * lda + k] * B[k * ldb + n];
      C[m * ldc + n] = accumulate ? C[m * ldc + n] + sum : sum;
    }
  }
}

template <typename T>
void gemm_tn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  for (i64 m = 0; m < M; ++m) {
    for (i64 n = 0; n < N; ++n) {
      T sum = 0;
      for (i64 k = 0; k < K; ++k) sum += A[k * lda + m] * B[k * ldb + n];
      C[m * ldc + n] = accumulate ? C[m * ldc + n] + sum : sum;
    }
  }
}

#define RNNKIT_INSTANTIATE(T)                                                              \
  template void gemm_nt<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool); \
  template void gemm_nn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool); \
  template void gemm_tn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels::plain
