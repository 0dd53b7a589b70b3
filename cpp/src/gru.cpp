// GRU cell, forward and backward, reset_after true (PyTorch) and false (see gru.h).
#include "rnnkit/gru.h"

#include <algorithm>

#include "cell_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"

namespace rnnkit {

using detail::for_each_item;
using detail::i64;
using detail::time_at;

namespace {

// h (H,) updated in place to (1 - z) * n + z * h, and copied to y (H,).
template <typename T>
inline void gru_blend(T* h, T* y, const T* z, const T* n, i64 H) {
  for (i64 j = 0; j < H; ++j) {
    h[j] = (T(1) - z[j]) * n[j] + z[j] * h[j];
    y[j] = h[j];
  }
}

// reset_after = true: one GEMM h W_hh^T per step; b_hn stays inside r * (.).
template <typename T>
void forward_reset_after(T* out, T* h, T* gates, T* h_prev, T* work, const T* x,
                         const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                         const std::int64_t* lengths, const Dims& d) {
  const i64 B = d.B, H = d.H, G = 3 * H;
  // b_hh's r and z blocks go into the projection; its n block is added per step.
  detail::input_projection(gates, x, w_ih, b_ih, b_hh, 2 * H, G, d);  // (T*B, 3H)
  T* hw = work;  // (B, 3H): columns [2H, 3H) hold h W_hn^T (the rest is unused)
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, 3H), packed once for every step
  w_hh_p.pack_nt(G, H, w_hh, H);
  for (i64 n = 0; n < d.T; ++n) {
    const i64 t = time_at(n, d);
    if (h_prev != nullptr) std::copy(h, h + B * H, h_prev + t * B * H);
    T* g_t = gates + t * B * G;
    // The r and z pre-activations accumulate h W_{hr,hz}^T in place (rows of inactive
    // steps too: their gates are never read); h W_hn^T goes to hw.
    kernels::gemm_packed_cols<T>(B, 0, 2 * H, h, H, w_hh_p, g_t, G, true);
    kernels::gemm_packed_cols<T>(B, 2 * H, G, h, H, w_hh_p, hw, G, false);
    T* out_t = out + t * B * d.ldo;
    for_each_item(B, G, [&](i64 b) {
      T* y = out_t + b * d.ldo;
      if (!step_active(lengths, b, t)) {
        std::fill(y, y + H, T(0));  // h keeps its value
        return;
      }
      T* a = g_t + b * G;  // pre-activations, then [r, z, n]
      T* r = hw + b * G;
      kernels::sigmoid(2 * H, a, a);  // r, z
      T* ghn = r + 2 * H;  // (H,): h W_hn^T + b_hn, in place (the backward recomputes it)
      for (i64 j = 0; j < H; ++j) {
        ghn[j] = b_hh != nullptr ? r[2 * H + j] + b_hh[2 * H + j] : r[2 * H + j];
        a[2 * H + j] += a[j] * ghn[j];
      }
      kernels::tanh(H, a + 2 * H, a + 2 * H);
      gru_blend(h + b * H, y, a + H, a + 2 * H, H);
    });
  }
}

// reset_after = false: h W_{hr,hz}^T, then r, then (r * h) W_hn^T per step.
template <typename T>
void forward_reset_before(T* out, T* h, T* gates, T* h_prev, T* extra, T* work, const T* x,
                          const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                          const std::int64_t* lengths, const Dims& d) {
  const i64 B = d.B, H = d.H, G = 3 * H;
  detail::input_projection(gates, x, w_ih, b_ih, b_hh, G, G, d);  // (T*B, 3H)
  T* hw = work;               // (B, 3H): [h W_hr^T, h W_hz^T, (r*h) W_hn^T]
  T* rh_work = work + B * G;  // (B, H): r * h at inference
  kernels::PackedB<T> w_rz_p;  // [W_hr; W_hz]^T (H, 2H), packed once for every step
  w_rz_p.pack_nt(2 * H, H, w_hh, H);
  kernels::PackedB<T> w_n_p;  // W_hn^T (H, H)
  w_n_p.pack_nt(H, H, w_hh + 2 * H * H, H);
  for (i64 n = 0; n < d.T; ++n) {
    const i64 t = time_at(n, d);
    if (h_prev != nullptr) std::copy(h, h + B * H, h_prev + t * B * H);
    T* rh = extra != nullptr ? extra + t * B * H : rh_work;  // (B, H)
    kernels::gemm_packed<T>(B, h, H, w_rz_p, hw, G, false);
    T* g_t = gates + t * B * G;
    T* out_t = out + t * B * d.ldo;
    for_each_item(B, G, [&](i64 b) {
      T* rhb = rh + b * H;
      if (!step_active(lengths, b, t)) {
        std::fill(rhb, rhb + H, T(0));  // read by the GEMMs; must be finite
        return;
      }
      T* a = g_t + b * G;
      const T* r = hw + b * G;
      const T* hb = h + b * H;
      for (i64 j = 0; j < 2 * H; ++j) a[j] += r[j];
      kernels::sigmoid(2 * H, a, a);  // r, z
      for (i64 j = 0; j < H; ++j) rhb[j] = a[j] * hb[j];
    });
    kernels::gemm_packed<T>(B, rh, H, w_n_p, hw + 2 * H, G, false);
    for_each_item(B, G, [&](i64 b) {
      T* y = out_t + b * d.ldo;
      if (!step_active(lengths, b, t)) {
        std::fill(y, y + H, T(0));  // h keeps its value
        return;
      }
      T* a = g_t + b * G;
      const T* r = hw + b * G;
      for (i64 j = 0; j < H; ++j) a[2 * H + j] += r[2 * H + j];
      kernels::tanh(H, a + 2 * H, a + 2 * H);
      gru_blend(h + b * H, y, a + H, a + 2 * H, H);
    });
  }
}

// One row of one step of backward_reset_after. Restrict-qualified parameters (the buffers
// never overlap) let the compiler vectorise the loop: it gives up on run-time alias checks
// for this many pointers.
//   da, dah (3H,) written: dL/d(input side), dL/d(h W_hh^T + b_hh) of [r, z, n].
//   dahn (H,) written: dah's n block again (dah is the step's, dahn the chunk's copy).
//   dh (H,) read as dL/dh_t from later steps, written dy * z (the step's GEMM adds
//   dA_h W_hh). a (3H,) read: [r, z, n]. hp (H,) read: h_{t-1}. ghn (H,) read:
//   h W_hn^T + b_hn. dy_out (H,) read: dL/dout_t.
template <typename T>
void backward_row_reset_after(i64 H, T* __restrict da, T* __restrict dah,
                              T* __restrict dahn, T* __restrict dh, const T* __restrict a,
                              const T* __restrict hp, const T* __restrict ghn,
                              const T* __restrict dy_out) {
  for (i64 j = 0; j < H; ++j) {
    const T r = a[j], z = a[H + j], nn = a[2 * H + j];
    const T dy = dh[j] + dy_out[j];
    const T dan = dy * (T(1) - z) * (T(1) - nn * nn);
    const T dar = dan * ghn[j] * r * (T(1) - r);
    const T daz = dy * (hp[j] - nn) * z * (T(1) - z);
    da[j] = dar;
    da[H + j] = daz;
    da[2 * H + j] = dan;
    dah[j] = dar;
    dah[H + j] = daz;
    dah[2 * H + j] = dan * r;
    dahn[j] = dan * r;
    dh[j] = dy * z;
  }
}

// ghn (rows of chunk c, H) written: h_{t-1} W_hn^T + b_hn of the chunk's rows, the value
// the forward used inside r * (.) (recomputed rather than kept: one GEMM over the chunk's
// rows, not recurrent since h_prev is known). hp (rows of chunk c, H): h_{t-1} of the
// chunk's rows, w_hh (3H, H) read; b_hh (3H,) read or nullptr.
template <typename T>
void hidden_n_projection(T* ghn, const T* hp, const T* w_hh, const T* b_hh,
                         const detail::TimeChunk& c, const Dims& d) {
  const i64 H = d.H, rows = (c.t1 - c.t0) * d.B;
  if (b_hh != nullptr) {  // b_hn first, then the GEMM adds into it: one pass fewer
    const T* b_hn = b_hh + 2 * H;
    for (i64 r = 0; r < rows; ++r) std::copy(b_hn, b_hn + H, ghn + r * H);
  }
  kernels::gemm_nt<T>(rows, H, H, hp, H, w_hh + 2 * H * H, H, ghn, H, b_hh != nullptr);
}

// The states h_{t-1} entering the steps of chunk c, (rows of c, H), row (t - c.t0)*B + b:
// rows of h_prev (T, B, H) when the forward kept it; otherwise gathered into buf (rows of
// c, H) from hs (T, B, ld_hs) (columns [0, H): the forward's output h_t, 0 past each
// sequence's length) shifted by one step, and h0 (B, H) at the step where each sequence
// starts (0 forward; lengths[b]-1 or T-1 reverse); 0 in inactive rows (never used: their
// dA rows are 0). Where that gather would copy whole consecutive rows of hs (forward
// direction, no lengths, hs rows H apart: one direction; the chunk does not hold step 0)
// the rows of hs are returned instead: only the chunk holding step 0 fills (and makes
// resident) rows of buf.
template <typename T>
const T* chunk_h_prev(T* buf, const T* h_prev, const T* hs, i64 ld_hs, const T* h0,
                      const std::int64_t* lengths, const detail::TimeChunk& c,
                      const Dims& d) {
  const i64 B = d.B, H = d.H;
  if (h_prev != nullptr) return h_prev + c.t0 * B * H;
  if (!d.reverse && lengths == nullptr && ld_hs == H && c.t0 >= 1) {
    return hs + (c.t0 - 1) * B * H;
  }
  for (i64 t = c.t0; t < c.t1; ++t) {
    for (i64 b = 0; b < B; ++b) {
      T* dst = buf + ((t - c.t0) * B + b) * H;
      const i64 start = d.reverse ? (lengths == nullptr ? d.T - 1 : lengths[b] - 1) : 0;
      const T* src = nullptr;  // stays nullptr in an inactive row: zeros
      if (step_active(lengths, b, t)) {
        src = t == start ? h0 + b * H : hs + ((d.reverse ? t + 1 : t - 1) * B + b) * ld_hs;
      }
      if (src == nullptr) {
        std::fill(dst, dst + H, T(0));
      } else {
        std::copy(src, src + H, dst);
      }
    }
  }
  return buf;
}

template <typename T>
void backward_reset_after(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates,
                          T* dgates_h, T* work, const T* dout, const T* x, const T* w_ih,
                          const T* w_hh, const T* b_hh, const T* gates, const T* h_prev,
                          const T* hs, i64 ld_hs, const T* h0, const std::int64_t* lengths,
                          const Dims& d, bool accumulate_dx, bool accumulate_dw) {
  const i64 B = d.B, H = d.H, G = 3 * H;
  const i64 steps = detail::backward_chunk_steps(d);
  T* ghn = work;  // (rows of a chunk, H): h_{t-1} W_hn^T + b_hn
  // (B, 3H): the step's dL/d(h W_hh^T + b_hh); its r and z blocks equal dA's, so the chunk
  // keeps only the n block (dgates_h).
  T* dah_t = work + steps * B * H;
  T* hp_buf = dah_t + B * G;  // (rows of a chunk, H): h_{t-1} when h_prev is nullptr
  const T* hp = nullptr;      // (rows of the chunk, H): h_{t-1}
  kernels::PackedB<T> w_hh_p;  // W_hh (3H, H), packed once for every step
  w_hh_p.pack_nn(G, H, w_hh, H);
  for (i64 n = d.T - 1; n >= 0; --n) {
    const i64 t = time_at(n, d);
    const detail::TimeChunk c = detail::chunk_of(n, steps, d);
    if (c.begin) {
      hp = chunk_h_prev(hp_buf, h_prev, hs, ld_hs, h0, lengths, c, d);
      hidden_n_projection(ghn, hp, w_hh, b_hh, c, d);
    }
    T* da_t = dgates + (t - c.t0) * B * G;  // (B, 3H): this step's rows of the chunk
    T* dahn_t = dgates_h + (t - c.t0) * B * H;  // (B, H)
    const T* dout_t = dout + t * B * d.ldo;
    for_each_item(B, G, [&](i64 b) {
      T* da = da_t + b * G;
      T* dah = dah_t + b * G;
      T* dahn = dahn_t + b * H;
      if (!step_active(lengths, b, t)) {
        std::fill(da, da + G, T(0));  // dh passes through unchanged
        std::fill(dah, dah + G, T(0));
        std::fill(dahn, dahn + H, T(0));
        return;
      }
      const i64 row = t * B + b, chunk_row = (t - c.t0) * B + b;
      backward_row_reset_after(H, da, dah, dahn, dh + b * H, gates + row * G,
                               hp + chunk_row * H, ghn + chunk_row * H, dout_t + b * d.ldo);
    });
    kernels::gemm_packed<T>(B, dah_t, G, w_hh_p, dh, H, true);
    if (!c.done) continue;
    // The chunk's dA is complete: its share of dX, dW_ih, db_ih, dW_hh and db_hh (the r
    // and z blocks of dL/d(h W_hh^T) are dA's: dgates; the n block is dgates_h). The
    // first chunk writes the weight gradients unless they are accumulated into.
    const i64 rows = (c.t1 - c.t0) * B;
    const bool first = c.first && !accumulate_dw;
    detail::input_backward_chunk(dx, dw_ih, db_ih, db_hh, 2 * H, dgates, x, w_ih, G, d, c,
                                 first, accumulate_dx);
    kernels::gemm_tn<T>(2 * H, H, rows, dgates, G, hp, H, dw_hh, H, !first);
    kernels::gemm_tn<T>(H, H, rows, dgates_h, H, hp, H, dw_hh + 2 * H * H, H, !first);
    if (db_hh != nullptr) {
      detail::column_sums(db_hh + 2 * H, dgates_h, rows, H, H, !first);
    }
  }
}

template <typename T>
void backward_reset_before(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates,
                           T* work, const T* dout, const T* x, const T* w_ih, const T* w_hh,
                           const T* gates, const T* h_prev, const T* hs, i64 ld_hs,
                           const T* h0, const T* extra, const std::int64_t* lengths,
                           const Dims& d, bool accumulate_dx, bool accumulate_dw) {
  const i64 B = d.B, H = d.H, G = 3 * H;
  T* drh = work;  // (B, H): dL/d(r * h)
  T* hp_buf = work + B * H;  // (rows of a chunk, H): h_{t-1} when h_prev is nullptr
  const T* hp_c = nullptr;   // (rows of the chunk, H): h_{t-1}
  kernels::PackedB<T> w_rz_p;  // [W_hr; W_hz] (2H, H), packed once for every step
  w_rz_p.pack_nn(2 * H, H, w_hh, H);
  kernels::PackedB<T> w_n_p;  // W_hn (H, H)
  w_n_p.pack_nn(H, H, w_hh + 2 * H * H, H);
  const i64 steps = detail::backward_chunk_steps(d);
  for (i64 n = d.T - 1; n >= 0; --n) {
    const i64 t = time_at(n, d);
    const detail::TimeChunk c = detail::chunk_of(n, steps, d);
    if (c.begin) hp_c = chunk_h_prev(hp_buf, h_prev, hs, ld_hs, h0, lengths, c, d);
    T* da_t = dgates + (t - c.t0) * B * G;  // (B, 3H): this step's rows of the chunk
    const T* dout_t = dout + t * B * d.ldo;
    // z and n blocks of dA, and the direct dh term; the r block needs dA_n W_hn first.
    for_each_item(B, G, [&](i64 b) {
      T* da = da_t + b * G;
      if (!step_active(lengths, b, t)) {
        std::fill(da, da + G, T(0));  // dh passes through unchanged
        return;
      }
      const i64 row = t * B + b;
      const T* z = gates + row * G + H;
      const T* nn = gates + row * G + 2 * H;
      const T* hp = hp_c + ((t - c.t0) * B + b) * H;
      const T* dy_out = dout_t + b * d.ldo;
      T* dhb = dh + b * H;
      for (i64 j = 0; j < H; ++j) {
        const T dy = dhb[j] + dy_out[j];
        da[H + j] = dy * (hp[j] - nn[j]) * z[j] * (T(1) - z[j]);
        da[2 * H + j] = dy * (T(1) - z[j]) * (T(1) - nn[j] * nn[j]);
        dhb[j] = dy * z[j];
      }
    });
    kernels::gemm_packed<T>(B, da_t + 2 * H, G, w_n_p, drh, H, false);
    for_each_item(B, G, [&](i64 b) {
      if (!step_active(lengths, b, t)) return;
      const i64 row = t * B + b;
      const T* r = gates + row * G;
      const T* hp = hp_c + ((t - c.t0) * B + b) * H;
      const T* g = drh + b * H;
      T* da = da_t + b * G;
      T* dhb = dh + b * H;
      for (i64 j = 0; j < H; ++j) {
        da[j] = g[j] * hp[j] * r[j] * (T(1) - r[j]);
        dhb[j] += g[j] * r[j];
      }
    });
    kernels::gemm_packed<T>(B, da_t, G, w_rz_p, dh, H, true);
    if (!c.done) continue;
    // The chunk's dA is complete: its share of dX, dW_ih, db_ih, db_hh (the same sums)
    // and dW_hh. The first chunk writes the weight gradients unless they are accumulated.
    const i64 rows = (c.t1 - c.t0) * B, row0 = c.t0 * B;
    const bool first = c.first && !accumulate_dw;
    detail::input_backward_chunk(dx, dw_ih, db_ih, db_hh, G, dgates, x, w_ih, G, d, c, first,
                                 accumulate_dx);
    kernels::gemm_tn<T>(2 * H, H, rows, dgates, G, hp_c, H, dw_hh, H, !first);
    kernels::gemm_tn<T>(H, H, rows, dgates + 2 * H, G, extra + row0 * H, H,
                        dw_hh + 2 * H * H, H, !first);
  }
}

}  // namespace

std::int64_t gru_backward_chunk_rows(const Dims& d) {
  return detail::backward_chunk_steps(d) * d.B;
}

template <typename T>
void gru_forward(T* out, T* h, T* gates, T* h_prev, T* extra, T* work, const T* x,
                 const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                 const std::int64_t* lengths, const Dims& d, bool reset_after) {
  if (reset_after) {
    forward_reset_after(out, h, gates, h_prev, work, x, w_ih, w_hh, b_ih, b_hh, lengths, d);
  } else {
    forward_reset_before(out, h, gates, h_prev, extra, work, x, w_ih, w_hh, b_ih, b_hh,
                         lengths, d);
  }
}

template <typename T>
void gru_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates,
                  T* dgates_h, T* work, const T* dout, const T* x, const T* w_ih,
                  const T* w_hh, const T* b_hh, const T* gates, const T* h_prev,
                  const T* hs, std::int64_t ld_hs, const T* h0, const T* extra,
                  const std::int64_t* lengths, const Dims& d, bool reset_after,
                  bool accumulate_dx, bool accumulate_dw) {
  if (reset_after) {
    backward_reset_after(dx, dw_ih, dw_hh, db_ih, db_hh, dh, dgates, dgates_h, work, dout, x,
                         w_ih, w_hh, b_hh, gates, h_prev, hs, ld_hs, h0, lengths, d,
                         accumulate_dx, accumulate_dw);
  } else {
    backward_reset_before(dx, dw_ih, dw_hh, db_ih, db_hh, dh, dgates, work, dout, x, w_ih,
                          w_hh, gates, h_prev, hs, ld_hs, h0, extra, lengths, d,
                          accumulate_dx, accumulate_dw);
  }
}

#define RNNKIT_INSTANTIATE(T)                                                               \
  template void gru_forward<T>(T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,        \
                               const T*, const T*, const std::int64_t*, const Dims&, bool); \
  template void gru_backward<T>(T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*,     \
                                const T*, const T*, const T*, const T*, const T*, const T*, \
                                std::int64_t, const T*, const T*, const std::int64_t*,      \
                                const Dims&, bool, bool, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
