// GEMM kernels. They know nothing of RNNs.
//
// All matrices are row-major with a leading dimension (the stride between rows, in
// elements). Each routine computes, for the M x N output C:
//
//   C = (accumulate ? C : 0) + op(A) * op(B)
//
//   gemm_nt: A (M x K, lda), B (N x K, ldb): C += A * B^T   e.g. gates = x @ W^T
//   gemm_nn: A (M x K, lda), B (K x N, ldb): C += A * B     e.g. dh = dgates @ W
//   gemm_tn: A (K x M, lda), B (K x N, ldb): C += A^T * B   e.g. dW = dgates^T @ x
//
// Pointers: A and B are read, C is written (accumulated when `accumulate`). C must not
// alias A or B. M, N or K may be 0 (K == 0 with accumulate=false writes zeros).
//
// Determinism: every element of C is reduced over K in an order that depends only on
// (M, N, K) and the selected ISA, never on the thread count.
#pragma once
#include <cstdint>

namespace rnnkit::kernels {

template <typename T>
void gemm_nt(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T* C, std::int64_t ldc, bool accumulate);
template <typename T>
void gemm_nn(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T* C, std::int64_t ldc, bool accumulate);
template <typename T>
void gemm_tn(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T* C, std::int64_t ldc, bool accumulate);

// The plain triple loops: documentation of the semantics and the portable fallback.
namespace plain {
template <typename T>
void gemm_nt(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T* C, std::int64_t ldc, bool accumulate);
template <typename T>
void gemm_nn(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T* C, std::int64_t ldc, bool accumulate);
template <typename T>
void gemm_tn(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T* C, std::int64_t ldc, bool accumulate);
}  // namespace plain

}  // namespace rnnkit::kernels
