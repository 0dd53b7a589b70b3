// The LSTM cell with cell options (cell_options.h: other activations, clip, peepholes,
// input_forget), forward and backward side by side, for units [0, n) of one row,
// n <= kVariantChunk; internal, called by lstm.cpp only when given options. All pointers
// are at the chunk's first unit; gate blocks are H apart.
#pragma once
#include <algorithm>

#include "cell_variants.h"

namespace rnnkit::detail {

// Forward, arguments as lstm_cell_plain.h's lstm_cell_plain:
//   a (4 blocks) read as pre-activations, written as [i, f, g, o].
//   bias (4 blocks) read, or nullptr.  c read as c_{t-1}, written as c_t.
//   tc written: h(c_t).  h written: o * h(c_t); y written likewise, or nullptr (h only:
//   a projection's m_t, which has no output row).
//   ph (3 blocks: the peepholes [p_i, p_f, p_o]) read, or nullptr.
//   pre (5 blocks: a_i, a_f, a_g, a_o before clip, c_t) written, or nullptr (inference).
template <typename T>
void lstm_variant_cell(i64 n, i64 H, T* a, const T* bias, T* c, T* tc, T* h, T* y,
                       const T* ph, T* pre, const CellOptions& o) {
  T* ai = a;
  T* af = a + H;
  T* ag = a + 2 * H;
  T* ao = a + 3 * H;
  auto pre_block = [&](i64 q) { return pre != nullptr ? pre + q * H : nullptr; };
  if (bias != nullptr) {
    for (i64 q = 0; q < 4; ++q) add_to(n, a + q * H, bias + q * H);
  }
  if (ph != nullptr) {
    for (i64 j = 0; j < n; ++j) {
      ai[j] += ph[j] * c[j];
      af[j] += ph[H + j] * c[j];
    }
  }
  activate_gate(o.act[0], o.clip, n, ai, pre_block(0));
  if (o.input_forget) {
    if (pre != nullptr) std::copy(af, af + n, pre_block(1));  // unused, kept finite
    for (i64 j = 0; j < n; ++j) af[j] = T(1) - ai[j];
  } else {
    activate_gate(o.act[0], o.clip, n, af, pre_block(1));
  }
  activate_gate(o.act[1], o.clip, n, ag, pre_block(2));
  for (i64 j = 0; j < n; ++j) c[j] = af[j] * c[j] + ai[j] * ag[j];
  if (ph != nullptr) {
    for (i64 j = 0; j < n; ++j) ao[j] += ph[2 * H + j] * c[j];
  }
  activate_gate(o.act[0], o.clip, n, ao, pre_block(3));
  if (pre != nullptr) std::copy(c, c + n, pre_block(4));
  kernels::activate(o.act[2], n, c, tc);
  for (i64 j = 0; j < n; ++j) h[j] = ao[j] * tc[j];
  if (y != nullptr) std::copy(h, h + n, y);
}

// Backward, arguments as lstm.cpp's backward_row:
//   da (4 blocks) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (n,) read as dL/dh_t from later steps (with a projection: the whole dm_t), written 0.
//   dc (n,) read as dL/dc_t from later steps, written dL/dc_{t-1}.
//   a (4 blocks) read: [i, f, g, o]. tc (n,) read: h(c_t). cp (n,) read: c_{t-1}.
//   dy_out (n,) read: dL/dout_t, or nullptr (a projection's dm_t, in dh, holds it).
//   pre (5 blocks) read: the forward's. ph (3 blocks) read, or nullptr.
//   dph (3 blocks) added to: dL/d[p_i, p_f, p_o] of this row, or nullptr.
template <typename T>
void lstm_variant_backward_row(i64 n, i64 H, T* da, T* dh, T* dc, const T* a, const T* tc,
                               const T* cp, const T* dy_out, const T* pre, const T* ph,
                               T* dph, const CellOptions& o) {
  const T *i = a, *f = a + H, *g = a + 2 * H, *og = a + 3 * H, *ct = pre + 4 * H;
  T *dai = da, *daf = da + H, *dag = da + 2 * H, *dao = da + 3 * H;
  T dy[kVariantChunk], dct[kVariantChunk], tmp[kVariantChunk];
  for (i64 j = 0; j < n; ++j) {
    dy[j] = dy_out != nullptr ? dh[j] + dy_out[j] : dh[j];
    dao[j] = dy[j] * tc[j];  // dL/do
    dct[j] = dy[j] * og[j];  // dL/d h(c_t)
    dh[j] = T(0);
  }
  backprop_gate(o.act[0], o.clip, n, pre + 3 * H, og, dao, dao, tmp);
  kernels::activation_backprop(o.act[2], n, ct, tc, dct, dct);
  for (i64 j = 0; j < n; ++j) {
    dct[j] += dc[j];  // total dL/dc_t
    if (ph != nullptr) dct[j] += dao[j] * ph[2 * H + j];
    dai[j] = dct[j] * g[j];
    daf[j] = dct[j] * cp[j];
    dag[j] = dct[j] * i[j];
    if (o.input_forget) {  // f = 1 - i: f's gradient goes to i, a_f gets none
      dai[j] -= daf[j];
      daf[j] = T(0);
    }
  }
  backprop_gate(o.act[0], o.clip, n, pre, i, dai, dai, tmp);
  if (!o.input_forget) backprop_gate(o.act[0], o.clip, n, pre + H, f, daf, daf, tmp);
  backprop_gate(o.act[1], o.clip, n, pre + 2 * H, g, dag, dag, tmp);
  for (i64 j = 0; j < n; ++j) {
    dc[j] = dct[j] * f[j];
    if (ph != nullptr) {
      dc[j] += dai[j] * ph[j] + daf[j] * ph[H + j];
      dph[j] += dai[j] * cp[j];
      dph[H + j] += daf[j] * cp[j];
      dph[2 * H + j] += dao[j] * ct[j];
    }
  }
}

}  // namespace rnnkit::detail
