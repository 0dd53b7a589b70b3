// The LSTM forward cell over vector registers (see vector_cells.h), for any vector ISA: a
// template over the ISA's operations struct O (vector_math.h), instantiated by
// vector_cells_avx2.cpp and vector_cells_avx512.cpp. Every lane runs the same operations
// in the same order, so the bits do not depend on O.
#pragma once
#include <cstdint>

#include "vector_math.h"

namespace rnnkit::detail::vec_cells {

using i64 = std::int64_t;

// The cell's two halves on one register of units (O::L lanes), gate blocks H apart; the
// arithmetic of lstm_cell_plain.h's lstm_cell_plain, each value rounded as there.
// Gates: a read as pre-activations (plus bias, or nullptr), written as [i, f, g, o].
template <class O>
inline void lstm_gate_lanes(i64 H, typename O::T* a, const typename O::T* bias) {
  using V = typename O::V;
  using kernels::detail::vec_math::sigmoid_v;
  using kernels::detail::vec_math::tanh_v;
  V pre[4];
  for (int q = 0; q < 4; ++q) {
    pre[q] = O::load(a + q * H);
    if (bias != nullptr) pre[q] = O::add(pre[q], O::load(bias + q * H));
  }
  O::store(a, sigmoid_v<O>(pre[0]));
  O::store(a + H, sigmoid_v<O>(pre[1]));
  O::store(a + 2 * H, tanh_v<O>(pre[2]));
  O::store(a + 3 * H, sigmoid_v<O>(pre[3]));
}
// State: a read as [i, f, g, o]; c read as c_{t-1}, written as c_t = f*c + i*g; tc
// written tanh(c_t) (or nullptr); h, y written o * tanh(c_t).
template <class O>
inline void lstm_state_lanes(i64 H, const typename O::T* a, typename O::T* c,
                             typename O::T* tc, typename O::T* h, typename O::T* y) {
  using V = typename O::V;
  using kernels::detail::vec_math::tanh_v;
  const V i = O::load(a), f = O::load(a + H), g = O::load(a + 2 * H), o = O::load(a + 3 * H);
  const V cn = O::add(O::mul(f, O::load(c)), O::mul(i, g));
  O::store(c, cn);
  const V t = tanh_v<O>(cn);
  if (tc != nullptr) O::store(tc, t);
  const V hv = O::mul(o, t);
  O::store(h, hv);
  O::store(y, hv);
}

// The cell for units [0, n) of one row (arguments as in vector_cells.h).
template <class O>
void lstm_cell(i64 n, i64 H, typename O::T* a, const typename O::T* bias, typename O::T* c,
               typename O::T* tc, typename O::T* h, typename O::T* y) {
  using T = typename O::T;
  constexpr int L = O::L;
  // Two passes over the row, the gates then the state: each register's work in a pass is
  // a short dependency chain independent of the next register's, so the CPU overlaps
  // several registers (one pass per register was bound by the chain from the gates
  // through tanh(c_t)).
  const i64 full = n / L * L;
  for (i64 j = 0; j < full; j += L) {
    lstm_gate_lanes<O>(H, a + j, bias != nullptr ? bias + j : nullptr);
  }
  for (i64 j = 0; j < full; j += L) {
    lstm_state_lanes<O>(H, a + j, c + j, tc != nullptr ? tc + j : nullptr, h + j, y + j);
  }
  const i64 j = full;
  if (j == n) return;
  // The last m < L units go through one padded register (gate blocks L apart), as the
  // activation kernels do with their tails: the same bits as a full register.
  const i64 m = n - j;
  alignas(64) T ta[4 * L] = {}, tb[4 * L] = {}, tcv[L] = {}, ttc[L], th[L], ty[L];
  for (i64 k = 0; k < m; ++k) {
    for (int q = 0; q < 4; ++q) {
      ta[q * L + k] = a[q * H + j + k];
      if (bias != nullptr) tb[q * L + k] = bias[q * H + j + k];
    }
    tcv[k] = c[j + k];
  }
  lstm_gate_lanes<O>(L, ta, bias != nullptr ? tb : nullptr);
  lstm_state_lanes<O>(L, ta, tcv, ttc, th, ty);
  for (i64 k = 0; k < m; ++k) {
    for (int q = 0; q < 4; ++q) a[q * H + j + k] = ta[q * L + k];
    c[j + k] = tcv[k];
    if (tc != nullptr) tc[j + k] = ttc[k];
    h[j + k] = th[k];
    y[j + k] = ty[k];
  }
}

}  // namespace rnnkit::detail::vec_cells

// Defines vector_cells.h's lstm_cell for the ISA tag TAG, element type T and its
// operations struct O, in the enclosing namespace (vector_cells_avx2.cpp, _avx512.cpp).
#define RNNKIT_DEFINE_LSTM_CELL(TAG, T, O)                                               \
  void lstm_cell(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias, T* c, T* tc, \
                 T* h, T* y) {                                                           \
    vec_cells::lstm_cell<O>(n, H, a, bias, c, tc, h, y);                                 \
  }
