// Pieces shared by the two GRU kinds (gru.cpp, gru_reset_before.cpp); internal.
#pragma once
#include <algorithm>

#include "cell_common.h"
#include "rnnkit/dims.h"
#include "team.h"

namespace rnnkit::detail {

// Scratch elements of both GRU kinds: the forward's (B, 3H) step products, (B, H) r * h,
// a second h (B, H) (h is double buffered across steps) and the step's biases (3H,); the
// reset-after backward's two steps' dL/d(h W_hh^T) (B, 3H) each; the reset-before
// backward's (B, H) dL/d(r * h); and, both, h_{t-1} of one chunk (chunk rows, H) when
// h_prev is not kept.
inline std::int64_t gru_work_size(const Dims& d) {
  const std::int64_t step = d.B * 5 * d.H + 3 * d.H;
  const std::int64_t chunk = backward_chunk_steps(d) * d.B * d.H + 2 * d.B * 3 * d.H;
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

// The forward step's last pass over the rows of step t, for this thread's units
// [s.u0, s.u1): an inactive row keeps h (hn = hp) and writes 0 to out; an active row
// calls finish(b, act, hp_b, hn_b, y), which leaves n in the n block of its gates row act
// (3 blocks H apart, at the thread's first unit) and blends h_t = (1 - z) * n + z *
// h_{t-1} (hp_b, read) into hn_b and y (gru_blend; the vector cells do both in one pass).
//   out (T, B, ldo) written: step t's rows.  g_t (B, 3H): step t's gate rows.
//   hp (B, H) read: h_{t-1}.  hn (B, H) written: h_t.
template <typename T, class Finish>
void gru_finish_rows(T* out, const std::int64_t* lengths, const Dims& d, Slice s, i64 t,
                     T* g_t, const T* hp, T* hn, const Finish& finish) {
  const i64 B = d.B, H = d.H, u0 = s.u0, w = s.u1 - s.u0;
  T* out_t = out + t * B * d.ldo;
  for (i64 b = 0; b < B; ++b) {
    T* y = out_t + b * d.ldo + u0;
    const T* hpb = hp + b * H + u0;
    T* hnb = hn + b * H + u0;
    if (!step_active(lengths, b, t)) {
      std::copy(hpb, hpb + w, hnb);
      std::fill(y, y + w, T(0));
      continue;
    }
    finish(b, g_t + b * 3 * H + u0, hpb, hnb, y);
  }
}

}  // namespace rnnkit::detail
