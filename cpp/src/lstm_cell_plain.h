// The portable LSTM forward cell (no SIMD intrinsics: the compiler vectorises its loops), the
// reference the vector cells (lstm_cell_vec.h) reproduce bit for bit and their fallback on a
// CPU without AVX2; internal, called by lstm.cpp.
#pragma once
#include "cell_common.h"
#include "rnnkit/activations.h"

namespace rnnkit::detail {

// Loops of lstm_cell_plain. Restrict-qualified parameters (the buffers never overlap) let the
// compiler vectorise them without run-time alias checks.
//   c (n,) read as c_{t-1}, written as c_t = f * c_{t-1} + i * g; i, f, g (n,) read.
template <typename T>
void update_c(i64 n, T* __restrict c, const T* __restrict i, const T* __restrict f,
              const T* __restrict g) {
  for (i64 j = 0; j < n; ++j) c[j] = f[j] * c[j] + i[j] * g[j];
}
//   h, y (n,) written: o * tc; o, tc (n,) read.
template <typename T>
void update_h(i64 n, T* __restrict h, T* __restrict y, const T* __restrict o,
              const T* __restrict tc) {
  for (i64 j = 0; j < n; ++j) {
    const T v = o[j] * tc[j];
    h[j] = v;
    y[j] = v;
  }
}
//   m (n,) written: o * tc (the projection's input; no output row).
template <typename T>
void update_m(i64 n, T* __restrict m, const T* __restrict o, const T* __restrict tc) {
  for (i64 j = 0; j < n; ++j) m[j] = o[j] * tc[j];
}

// The cell for units [0, n) of one active row (all pointers at the chunk's first unit):
//   a (gates row, 4 blocks H apart) read as pre-activations, written as [i, f, g, o].
//   bias (4 blocks H apart) read, or nullptr.  c read as c_{t-1}, written as c_t.
//   tc written: tanh(c_t).  h, y written: h_t = o * tc (y nullptr: h only, a projection's
//   m_t).
// The arithmetic of every element is the one-row-at-a-time formula's (the same bits).
template <typename T>
void lstm_cell_plain(i64 n, i64 H, T* a, const T* bias, T* c, T* tc, T* h, T* y) {
  if (bias != nullptr) {
    for (i64 q = 0; q < 4; ++q) add_to(n, a + q * H, bias + q * H);
  }
  if (n == H) {
    kernels::sigmoid(2 * n, a, a);  // i, f side by side: one call
  } else {
    kernels::sigmoid(n, a, a);          // i
    kernels::sigmoid(n, a + H, a + H);  // f
  }
  kernels::tanh(n, a + 2 * H, a + 2 * H);     // g
  kernels::sigmoid(n, a + 3 * H, a + 3 * H);  // o
  update_c(n, c, a, a + H, a + 2 * H);
  kernels::tanh(n, c, tc);
  if (y == nullptr) {
    update_m(n, h, a + 3 * H, tc);
  } else {
    update_h(n, h, y, a + 3 * H, tc);
  }
}

}  // namespace rnnkit::detail
