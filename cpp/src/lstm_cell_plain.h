// The portable LSTM cell, forward and backward (no SIMD intrinsics: the compiler vectorises
// the loops), the reference that the vector passes (lstm_cell_vec.h, cell_backward_vec.h)
// reproduce bit for bit and what runs at ISA plain; internal, called by lstm.cpp.
#pragma once
#include "cell_common.h"
#include "rnnkit/activations.h"
#include "vector_cells.h"

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

// Units [0, n) of one row of one step of the backward (all pointers at the first unit;
// gate blocks H apart). Restrict-qualified parameters (the buffers never overlap) let the
// compiler vectorise the loop: it gives up on run-time alias checks for this many
// pointers.
//   da (4 blocks) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (n,) read as dL/dh_t from later steps, written 0 (the step's GEMM adds dA W_hh).
//   dc (n,) read as dL/dc_t from later steps, written dL/dc_{t-1}.
//   a (4 blocks) read: [i, f, g, o]. tc (n,) read: tanh(c_t). cp (n,) read: c_{t-1}.
//   dy_out (n,) read: dL/dout_t; not read without kOutput (a projection's dm_t, in dh,
//   already holds it).
template <typename T, bool kOutput>
void lstm_backward_loop(i64 n, i64 H, T* __restrict da, T* __restrict dh, T* __restrict dc,
                        const T* __restrict a, const T* __restrict tc,
                        const T* __restrict cp, const T* __restrict dy_out) {
  for (i64 j = 0; j < n; ++j) {
    const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
    const T dy = kOutput ? dh[j] + dy_out[j] : dh[j];
    const T dct = dc[j] + dy * o * (T(1) - tc[j] * tc[j]);  // total dL/dc_t
    da[j] = dct * g * i * (T(1) - i);
    da[H + j] = dct * cp[j] * f * (T(1) - f);
    da[2 * H + j] = dct * i * (T(1) - g * g);
    da[3 * H + j] = dy * tc[j] * o * (T(1) - o);
    dc[j] = dct * f;
    dh[j] = T(0);
  }
}

// The backward cell at ISA plain (arguments as the vector copies' in vector_cells.h):
// lstm_backward_loop (dy_out nullptr: dh holds all of dL/dh_t), then db += da.
template <typename T>
void lstm_backward_row(Plain, i64 n, i64 H, T* da, T* dh, T* dc, const T* a, const T* tc,
                       const T* cp, const T* dy_out, T* db) {
  if (dy_out != nullptr) {
    lstm_backward_loop<T, true>(n, H, da, dh, dc, a, tc, cp, dy_out);
  } else {
    lstm_backward_loop<T, false>(n, H, da, dh, dc, a, tc, cp, nullptr);
  }
  if (db != nullptr) {
    for (i64 q = 0; q < 4; ++q) add_to(n, db + q * H, da + q * H);
  }
}

}  // namespace rnnkit::detail
