// Internal: how the vector cell passes (lstm_cell_vec.h aside) walk the units of one row:
// a register of units at a time, the row's last units through zero-padded copies, so that
// every unit gets the operations of a full register, hence the same bits. Every function
// here depends on the ISA's operations struct O (kernels_isa.h: no instance may be shared
// between units compiled for different ISAs), and plain arrays carry the pointers.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rnnkit::detail::vec_cells {

using i64 = std::int64_t;

// One buffer of a row pass: p at the row's first unit (nullptr: not used), `blocks`
// blocks of units H apart; `written` ones are copied back from a padded tail.
template <typename T>
struct RowBuffer {
  T* p;
  int blocks;
  bool written;
};
// A buffer the pass only reads (its pointer is never written through).
template <class O>
RowBuffer<typename O::T> read_only(const typename O::T* p, int blocks = 1) {
  return {const_cast<typename O::T*>(p), blocks, false};
}
// A buffer the pass writes (and may read first).
template <class O>
RowBuffer<typename O::T> written(typename O::T* p, int blocks = 1) {
  return {p, blocks, true};
}

// Calls lanes(stride, p) for each register of units [0, n): p[k] is buffer k's pointer
// at the register's first unit (nullptr where buffer k's is), its blocks `stride` apart.
// The last m < L units go through padded copies (blocks L apart, the other lanes 0):
// lane by lane the same operations, so the same bits as a full register.
template <class O, std::size_t K, class Lanes>
void row_pass(i64 n, i64 H, const RowBuffer<typename O::T> (&buf)[K], const Lanes& lanes) {
  using T = typename O::T;
  constexpr int L = O::L;
  T* p[K];
  i64 j = 0;
  for (; j + L <= n; j += L) {
    for (std::size_t k = 0; k < K; ++k) p[k] = buf[k].p != nullptr ? buf[k].p + j : nullptr;
    lanes(H, p);
  }
  if (j == n) return;
  const i64 m = n - j;
  alignas(64) T pad[K][4 * L] = {};  // (blocks, L) per buffer: 4 blocks at most
  for (std::size_t k = 0; k < K; ++k) {
    p[k] = buf[k].p != nullptr ? pad[k] : nullptr;
    if (p[k] == nullptr) continue;
    for (int q = 0; q < buf[k].blocks; ++q) {
      for (i64 u = 0; u < m; ++u) pad[k][q * L + u] = buf[k].p[q * H + j + u];
    }
  }
  lanes(i64(L), p);
  for (std::size_t k = 0; k < K; ++k) {
    if (!buf[k].written || buf[k].p == nullptr) continue;
    for (int q = 0; q < buf[k].blocks; ++q) {
      for (i64 u = 0; u < m; ++u) buf[k].p[q * H + j + u] = pad[k][q * L + u];
    }
  }
}

}  // namespace rnnkit::detail::vec_cells
