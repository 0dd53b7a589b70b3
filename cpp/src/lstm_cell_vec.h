// The LSTM forward cell in one pass over vector registers (see cells_avx2.h), for any
// vector ISA: a template over the ISA's operations struct O (vector_math.h), instantiated
// by lstm_cell_avx2.cpp and lstm_cell_avx512.cpp. Every lane runs the same operations in
// the same order, so the bits do not depend on O.
#pragma once
#include <cstdint>

#include "vector_math.h"

namespace rnnkit::detail::vec_cells {

using i64 = std::int64_t;

// One register of units (O::L lanes) at a, bias, c, tc, h, y; gate blocks H apart. The
// arithmetic of lstm.cpp's cell_chunk: a + bias, the activations, f*c + i*g, o*tanh(c),
// each rounded as there.
template <class O>
inline void lstm_lanes(i64 H, typename O::T* a, const typename O::T* bias, typename O::T* c,
                       typename O::T* tc, typename O::T* h, typename O::T* y,
                       bool keep_gates) {
  using V = typename O::V;
  using kernels::detail::vec_math::sigmoid_v;
  using kernels::detail::vec_math::tanh_v;
  V pre[4];
  for (int q = 0; q < 4; ++q) {
    pre[q] = O::load(a + q * H);
    if (bias != nullptr) pre[q] = O::add(pre[q], O::load(bias + q * H));
  }
  const V i = sigmoid_v<O>(pre[0]);
  const V f = sigmoid_v<O>(pre[1]);
  const V g = tanh_v<O>(pre[2]);
  const V o = sigmoid_v<O>(pre[3]);
  if (keep_gates) {
    O::store(a, i);
    O::store(a + H, f);
    O::store(a + 2 * H, g);
    O::store(a + 3 * H, o);
  }
  const V cn = O::add(O::mul(f, O::load(c)), O::mul(i, g));
  O::store(c, cn);
  const V t = tanh_v<O>(cn);
  if (tc != nullptr) O::store(tc, t);
  const V hv = O::mul(o, t);
  O::store(h, hv);
  O::store(y, hv);
}

// The cell for units [0, n) of one row (arguments as in cells_avx2.h).
template <class O>
void lstm_cell(i64 n, i64 H, typename O::T* a, const typename O::T* bias, typename O::T* c,
               typename O::T* tc, typename O::T* h, typename O::T* y, bool keep_gates) {
  using T = typename O::T;
  constexpr int L = O::L;
  i64 j = 0;
  for (; j + L <= n; j += L) {
    lstm_lanes<O>(H, a + j, bias != nullptr ? bias + j : nullptr, c + j,
                  tc != nullptr ? tc + j : nullptr, h + j, y + j, keep_gates);
  }
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
  lstm_lanes<O>(L, ta, bias != nullptr ? tb : nullptr, tcv, ttc, th, ty, keep_gates);
  for (i64 k = 0; k < m; ++k) {
    if (keep_gates) {
      for (int q = 0; q < 4; ++q) a[q * H + j + k] = ta[q * L + k];
    }
    c[j + k] = tcv[k];
    if (tc != nullptr) tc[j + k] = ttc[k];
    h[j + k] = th[k];
    y[j + k] = ty[k];
  }
}

}  // namespace rnnkit::detail::vec_cells
