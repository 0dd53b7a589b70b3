// Pieces shared by the two GRU kinds (gru.cpp, gru_reset_before.cpp); internal.
#pragma once
#include <algorithm>

#include "cell_common.h"
#include "rnnkit/dims.h"

namespace rnnkit::detail {

// Scratch elements of both GRU kinds: the forward's (B, 3H) step products, (B, H) r * h,
// a second h (B, H) (h is double buffered across steps) and the step's biases (3H,); the
// reset-after backward's h W_hn^T + b_hn of one chunk (chunk rows, H) and two steps'
// dL/d(h W_hh^T) (B, 3H) each; the reset-before backward's (B, H) dL/d(r * h); and, both,
// h_{t-1} of one chunk (chunk rows, H) when h_prev is not kept.
inline std::int64_t gru_work_size(const Dims& d) {
  const std::int64_t step = d.B * 5 * d.H + 3 * d.H;
  const std::int64_t chunk = 2 * backward_chunk_steps(d) * d.B * d.H + 2 * d.B * 3 * d.H;
  return step > chunk ? step : chunk;
}

// hn (n,) written: (1 - z) * nn + z * hp, and copied to y (n,); z, nn, hp (n,) read.
template <typename T>
inline void gru_blend(i64 n, T* __restrict hn, T* __restrict y, const T* __restrict z,
                      const T* __restrict nn, const T* __restrict hp) {
  for (i64 j = 0; j < n; ++j) {
    hn[j] = (T(1) - z[j]) * nn[j] + z[j] * hp[j];
    y[j] = hn[j];
  }
}

// Inactive row (this thread's units, n of them): h keeps its value, out is 0.
template <typename T>
inline void gru_hold(i64 n, T* hn, T* y, const T* hp) {
  std::copy(hp, hp + n, hn);
  std::fill(y, y + n, T(0));
}

}  // namespace rnnkit::detail
