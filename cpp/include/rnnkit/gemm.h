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
// (M, N, K) and the selected ISA (isa.h), never on the thread count, the cache blocking
// or which tile computed it:
//   plain:          s = 0; for k = 0..K-1: s = s + round(a_k * b_k); C = accumulate ? C + s : s
//   avx2 and avx512: s = accumulate ? C : 0; for k = 0..K-1: s = fma(a_k, b_k, s); C = s
// gemm_nt, gemm_nn, gemm_tn and gemm_packed give the same bits for the same products.
//
// Threads: with OpenMP the work is split over blocks of rows/columns of C (never over K)
// using rnnkit::get_num_threads() threads, only when the product is large enough and the
// call is not already inside a parallel region. Packing buffers are per-thread and grow
// once: repeated calls of the same size do not allocate.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "rnnkit/memory_pool.h"

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

// Allocator giving 64-byte aligned storage (one cache line, one AVX-512 register), large
// blocks from the memory pool (memory_pool.h: packed weights are made on every call).
// Elements a vector adds are default-initialised, not zeroed: every buffer using it is
// written before it is read, so zeroing would be a whole extra pass over each buffer.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    std::size_t capacity = 0;
    return static_cast<T*>(pool_acquire(n * sizeof(T), &capacity));
  }
  void deallocate(T* p, std::size_t n) { pool_release(p, pool_capacity(n * sizeof(T))); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialisation: no zeroing
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};

// The B operand packed once into the micro-kernels' layout, for reuse over many GEMMs
// with different A (e.g. W_hh across all time steps).
//
// Logically it holds op(B) as a K x N matrix. Layout (the same for every ISA, so a
// PackedB stays valid after set_isa): ceil(N / kPanel) panels of kPanel columns; panel p
// is K rows of kPanel values, data[p*K*kPanel + k*kPanel + j] = op(B)[k][p*kPanel + j],
// columns past N are zero.
template <typename T>
class PackedB {
 public:
  // Panel width: 16 floats or 8 doubles (two 256-bit registers).
  static constexpr std::int64_t kPanel = sizeof(T) == 4 ? 16 : 8;

  PackedB() = default;

  // Pack gemm_nt's B: B is N x K (row n at B + n*ldb, ldb >= K), read; op(B) = B^T.
  void pack_nt(std::int64_t N, std::int64_t K, const T* B, std::int64_t ldb);
  // Pack gemm_nn's B: B is K x N (row k at B + k*ldb, ldb >= N), read; op(B) = B.
  void pack_nn(std::int64_t K, std::int64_t N, const T* B, std::int64_t ldb);

  std::int64_t n() const { return n_; }
  std::int64_t k() const { return k_; }
  const T* data() const { return data_.data(); }

 private:
  void resize(std::int64_t N, std::int64_t K);
  std::int64_t n_ = 0;
  std::int64_t k_ = 0;
  std::vector<T, AlignedAllocator<T>> data_;  // (ceil(N/kPanel), K, kPanel)
};

// C = (accumulate ? C : 0) + A * op(B) with op(B) packed in Bp (K x N, K = Bp.k(),
// N = Bp.n()). A: M x K (row i at A + i*lda, lda >= K), read. C: M x N (ldc >= N),
// written or accumulated. Same bits as gemm_nt / gemm_nn on the unpacked B.
template <typename T>
void gemm_packed(std::int64_t M, const T* A, std::int64_t lda, const PackedB<T>& Bp, T* C,
                 std::int64_t ldc, bool accumulate);

// The same for the columns n_begin <= n < n_end of C only (0 <= n_begin <= n_end <=
// Bp.n()); C still points at column 0. For callers that split the columns between their
// own threads: each column's result is the same bits as from gemm_packed.
template <typename T>
void gemm_packed_cols(std::int64_t M, std::int64_t n_begin, std::int64_t n_end, const T* A,
                      std::int64_t lda, const PackedB<T>& Bp, T* C, std::int64_t ldc,
                      bool accumulate);

// C = A1 op(B1) + A2 op(B2) on the columns n_begin <= n < n_end of C (C at column 0;
// B1 and B2 of the same N, their K may differ): the same bits as gemm_packed_cols of A1
// and B1 followed by gemm_packed_cols of A2 and B2 accumulated, in one pass over C (a
// product whose operand is the concatenation [A1 A2] of two buffers).
template <typename T>
void gemm_packed_pair_cols(std::int64_t M, std::int64_t n_begin, std::int64_t n_end,
                           const T* A1, std::int64_t lda1, const PackedB<T>& B1, const T* A2,
                           std::int64_t lda2, const PackedB<T>& B2, T* C, std::int64_t ldc);

// The most panels one gemv_panels call takes, and the most rows of its tile.
constexpr int kGemvMaxPanels = 4;
constexpr int kGemvTileMaxRows = 8;

// A tile of a second product that gemv_panels computes in the same pass over k:
//   c (rows, kPanel) = a (rows, K2) op(B)[:, columns of panel `panel` of b]   (K2 = b->k())
// a: row i at a + i*lda, read; c: row i at c + i*ldc, written, every column of the panel.
// 1 <= rows <= kGemvTileMaxRows. Same bits as gemm_packed(rows, a, lda, *b, ...) without
// accumulate gives those columns.
template <typename T>
struct GemvTile {
  const T* a;
  std::int64_t lda;
  int rows;
  const PackedB<T>* b;
  std::int64_t panel;
  T* c;
  std::int64_t ldc;
};

// One row x times `count` panels of Bp, for a caller that uses each panel's outputs right
// away (a one-row product fused with the work that follows it): for j < count,
//   y[j][0, kPanel) = (bit j of accumulate ? y[j] : 0) + x op(B)[:, columns of panel[j]]
// x (K,) read, K = Bp.k(). panel[j]: a panel index, 0 <= panel[j] < ceil(N / kPanel).
// y[j] (kPanel,) written (read too when accumulated): every column of the panel, those
// past N included (Bp holds zeros there). 1 <= count <= kGemvMaxPanels. Each column gets
// the same bits as from gemm_packed(1, x, K, Bp, ...). With `tile`, also computes that
// tile, interleaved with the row's products: a row's product waits on loading Bp (each
// element is used once), and the tile's multiply-adds fill those waits. One thread, no
// allocation.
template <typename T>
void gemv_panels(const T* x, const PackedB<T>& Bp, int count, const std::int64_t* panel,
                 T* const* y, unsigned accumulate, const GemvTile<T>* tile = nullptr);

}  // namespace rnnkit::kernels
