// The stack's buffer layout: sizes with overflow checks, each cell's dims, and the
// training cache (what a forward keeps, where, and the checks that what it references is
// unchanged); internal, used by stack.cpp.
#pragma once
#include <cstdint>
#include <stdexcept>

#include "rnnkit/cell.h"
#include "rnnkit/cell_kinds.h"
#include "rnnkit/stack.h"

namespace rnnkit::detail {

using i64 = std::int64_t;

// a * b; throws std::length_error when it overflows.
inline i64 checked_mul(i64 a, i64 b) {
  i64 r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    throw std::length_error("rnnkit: buffer sizes overflow 64-bit integers");
  }
  return r;
}

// Hands out consecutive offsets into one buffer, checking for overflow.
class Arena {
 public:
  i64 take(i64 n) {
    const i64 offset = size_;
    if (__builtin_add_overflow(size_, n, &size_)) {
      throw std::length_error("rnnkit: buffer sizes overflow 64-bit integers");
    }
    return offset;
  }
  i64 size() const { return size_; }

 private:
  i64 size_ = 0;
};

// R: the width of h and of each direction's output, P with a projection, else H.
inline i64 h_size(const StackDims& s) { return s.P > 0 ? s.P : s.H; }

// Input features of layer k: I for layer 0, D*R above.
inline i64 layer_input_size(const StackDims& s, i64 k) { return k == 0 ? s.I : s.D * h_size(s); }

// Dims of cell (k, d): outputs of the two directions side by side in rows of D*R.
inline Dims cell_dims(const StackDims& s, i64 k, i64 d) {
  Dims cd;
  cd.T = s.T;
  cd.B = s.B;
  cd.I = layer_input_size(s, k);
  cd.H = s.H;
  cd.P = s.P;
  cd.ldo = s.D * h_size(s);
  cd.reverse = (d == 1) != s.reverse;
  return cd;
}

// Lays out and allocates the cache's storage, copies the lengths, the masks and the h0
// the backward needs, and records x's and the weights' checksums (x and the weights are
// referenced, not copied), and copies the options. Arguments as stack_forward's.
template <typename T>
void prepare_cache(StackCache<T>& cache, const T* x, const T* h0,
                   const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& s,
                   const CellOptions* options);

// References the returned out (T, B, D*R) and records its checksum, when the cell kind's
// backward reads it.
template <typename T>
void record_out(StackCache<T>& cache, const T* out);

// The buffers cell (k, d)'s training forward writes (cell.h StateBuffers), in storage.
template <typename T>
StateBuffers<T*> forward_state(StackCache<T>& cache, i64 k, i64 d);

// What cell (k, d)'s backward reads: the buffers its forward kept and, where it kept no
// gates or no h_prev, the outputs that hold them.
template <typename T>
StateBuffers<const T*> saved_state(const StackCache<T>& cache, i64 k, i64 d);

// Throws std::runtime_error, naming the array, when x, a weight (by its PyTorch name) or
// out, referenced by the cache, no longer has the checksum the forward recorded.
template <typename T>
void check_unchanged(const StackCache<T>& cache);

}  // namespace rnnkit::detail
