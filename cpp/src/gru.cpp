// GRU cell, forward and backward, reset_after true (PyTorch) and false (see gru.h).
//
// Threads: one team per time loop, in the backward one per chunk of steps (team.h). Per
// step a thread computes its units' columns of each GEMM (one per gate block) and the
// cell of its units for every row; it meets the others at one barrier per step
// (reset_after) or two (reset_before: r * h must be complete before (r * h) W_hn^T, and
// dA_n before dA_n W_hn).
#include "rnnkit/gru.h"

#include <algorithm>

#include "cell_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "team.h"

namespace rnnkit {

using detail::copy_units;
using detail::i64;
using detail::run_team;
using detail::Slice;
using detail::team_size;
using detail::time_at;

namespace {

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

// reset_after = true: one GEMM h W_hh^T per step; b_hn stays inside r * (.).
template <typename T>
void forward_reset_after(T* out, T* h, T* gates, T* h_prev, T* work, const T* x,
                         const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                         const std::int64_t* lengths, const Dims& d) {
  const i64 B = d.B, H = d.H, G = 3 * H;
  const detail::InputProjection<T> projection(gates, G, x, w_ih, 3, d);  // (T*B, 3H)
  T* hw = work;  // (B, 3H): columns [2H, 3H) hold h W_hn^T (the rest is unused)
  // h is double buffered so that one barrier per step suffices: step n's GEMMs read all
  // units of hbuf[n % 2] (h_{t-1}) while each thread writes its units of h_t into
  // hbuf[(n + 1) % 2].
  T* hbuf[2] = {h, work + B * G};  // (B, H) each
  // (3H,): b_ih + b_hh on r and z, b_ih on n (b_hn stays inside r * (.)), or unused.
  T* bias = work + B * (G + H);
  const bool has_bias = detail::step_bias(bias, b_ih, b_hh, 2 * H, G);
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, 3H), packed once for every step
  w_hh_p.pack_nt(G, H, w_hh, H);
  run_team<T>(team_size<T>(B, G, H), H, [&](Slice s, auto barrier) {
    const i64 u0 = s.u0, u1 = s.u1, w = u1 - u0;  // this thread's units
    for (i64 n = 0; n < d.T; ++n) {
      const i64 t = time_at(n, d);
      projection.before_step(n, u0, u1);  // x W_ih^T of this thread's units
      const T* hp = hbuf[n % 2];  // (B, H) read: h_{t-1}
      T* hn = hbuf[(n + 1) % 2];  // (B, H) written (this thread's units): h_t
      if (h_prev != nullptr) copy_units(B, H, s, hp, h_prev + t * B * H);  // the state entering t
      T* g_t = gates + t * B * G;
      // The r and z pre-activations accumulate h W_{hr,hz}^T in place (rows of inactive
      // steps too: their gates are never read); h W_hn^T goes to hw.
      if (w == H) {  // r and z side by side: one call (the same bits as two)
        kernels::gemm_packed_cols<T>(B, 0, 2 * H, hp, H, w_hh_p, g_t, G, true);
      } else {
        kernels::gemm_packed_cols<T>(B, u0, u1, hp, H, w_hh_p, g_t, G, true);
        kernels::gemm_packed_cols<T>(B, H + u0, H + u1, hp, H, w_hh_p, g_t, G, true);
      }
      kernels::gemm_packed_cols<T>(B, 2 * H + u0, 2 * H + u1, hp, H, w_hh_p, hw, G, false);
      T* out_t = out + t * B * d.ldo;
      for (i64 b = 0; b < B; ++b) {
        T* y = out_t + b * d.ldo + u0;
        const T* hpb = hp + b * H + u0;
        T* hnb = hn + b * H + u0;
        if (!step_active(lengths, b, t)) {
          gru_hold(w, hnb, y, hpb);
          continue;
        }
        T* a = g_t + b * G + u0;  // pre-activations, then [r, z, n] (blocks H apart)
        T* ghn = hw + b * G + 2 * H + u0;  // h W_hn^T, then + b_hn in place (the
                                           // backward recomputes it)
        if (has_bias) {
          for (i64 q = 0; q < 3; ++q) detail::add_to(w, a + q * H, bias + q * H + u0);
        }
        kernels::sigmoid(w, a, a);          // r
        kernels::sigmoid(w, a + H, a + H);  // z
        for (i64 j = 0; j < w; ++j) {
          if (b_hh != nullptr) ghn[j] += b_hh[2 * H + u0 + j];
          a[2 * H + j] += a[j] * ghn[j];
        }
        kernels::tanh(w, a + 2 * H, a + 2 * H);
        gru_blend(w, hnb, y, a + H, a + 2 * H, hpb);
      }
      barrier();
    }
    // After an odd number of steps h_n is in hbuf[1]: copy this thread's units back.
    if (d.T % 2 == 1) copy_units(B, H, s, hbuf[1], h);
  });
}

// reset_after = false: h W_{hr,hz}^T, then r, then (r * h) W_hn^T per step.
template <typename T>
void forward_reset_before(T* out, T* h, T* gates, T* h_prev, T* extra, T* work, const T* x,
                          const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                          const std::int64_t* lengths, const Dims& d) {
  const i64 B = d.B, H = d.H, G = 3 * H;
  const detail::InputProjection<T> projection(gates, G, x, w_ih, 3, d);  // (T*B, 3H)
  T* hw = work;               // (B, 3H): [h W_hr^T, h W_hz^T, (r*h) W_hn^T]
  T* rh_work = work + B * G;  // (B, H): r * h at inference
  // h double buffered as in forward_reset_after.
  T* hbuf[2] = {h, work + B * (G + H)};  // (B, H) each
  T* bias = work + B * (G + 2 * H);      // (3H,): b_ih + b_hh, or unused
  const bool has_bias = detail::step_bias(bias, b_ih, b_hh, G, G);
  kernels::PackedB<T> w_rz_p;  // [W_hr; W_hz]^T (H, 2H), packed once for every step
  w_rz_p.pack_nt(2 * H, H, w_hh, H);
  kernels::PackedB<T> w_n_p;  // W_hn^T (H, H)
  w_n_p.pack_nt(H, H, w_hh + 2 * H * H, H);
  run_team<T>(team_size<T>(B, G, H), H, [&](Slice s, auto barrier) {
    const i64 u0 = s.u0, u1 = s.u1, w = u1 - u0;  // this thread's units
    for (i64 n = 0; n < d.T; ++n) {
      const i64 t = time_at(n, d);
      projection.before_step(n, u0, u1);  // x W_ih^T of this thread's units
      const T* hp = hbuf[n % 2];  // (B, H) read: h_{t-1}
      T* hn = hbuf[(n + 1) % 2];  // (B, H) written (this thread's units): h_t
      if (h_prev != nullptr) copy_units(B, H, s, hp, h_prev + t * B * H);  // the state entering t
      T* rh = extra != nullptr ? extra + t * B * H : rh_work;  // (B, H)
      kernels::gemm_packed_cols<T>(B, u0, u1, hp, H, w_rz_p, hw, G, false);
      kernels::gemm_packed_cols<T>(B, H + u0, H + u1, hp, H, w_rz_p, hw, G, false);
      T* g_t = gates + t * B * G;
      for (i64 b = 0; b < B; ++b) {
        T* rhb = rh + b * H + u0;
        if (!step_active(lengths, b, t)) {
          std::fill(rhb, rhb + w, T(0));  // read by the GEMMs; must be finite
          continue;
        }
        T* a = g_t + b * G + u0;
        const T* r = hw + b * G + u0;
        const T* hpb = hp + b * H + u0;
        if (has_bias) {
          for (i64 q = 0; q < 3; ++q) detail::add_to(w, a + q * H, bias + q * H + u0);
        }
        for (i64 j = 0; j < w; ++j) {
          a[j] += r[j];
          a[H + j] += r[H + j];
        }
        kernels::sigmoid(w, a, a);          // r
        kernels::sigmoid(w, a + H, a + H);  // z
        for (i64 j = 0; j < w; ++j) rhb[j] = a[j] * hpb[j];
      }
      barrier();  // r * h is complete
      kernels::gemm_packed_cols<T>(B, u0, u1, rh, H, w_n_p, hw + 2 * H, G, false);
      T* out_t = out + t * B * d.ldo;
      for (i64 b = 0; b < B; ++b) {
        T* y = out_t + b * d.ldo + u0;
        const T* hpb = hp + b * H + u0;
        T* hnb = hn + b * H + u0;
        if (!step_active(lengths, b, t)) {
          gru_hold(w, hnb, y, hpb);
          continue;
        }
        T* a = g_t + b * G + u0;
        const T* r = hw + b * G + u0;
        for (i64 j = 0; j < w; ++j) a[2 * H + j] += r[2 * H + j];
        kernels::tanh(w, a + 2 * H, a + 2 * H);
        gru_blend(w, hnb, y, a + H, a + 2 * H, hpb);
      }
      barrier();  // h_t is complete
    }
    if (d.T % 2 == 1) copy_units(B, H, s, hbuf[1], h);
  });
}

// Units [0, n) of one row of one step of backward_reset_after (all pointers at the first
// unit; blocks of [r, z, n] H apart). Restrict-qualified parameters (the buffers never
// overlap) let the compiler vectorise the loop: it gives up on run-time alias checks for
// this many pointers.
//   da, dah (3 blocks) written: dL/d(input side), dL/d(h W_hh^T + b_hh) of [r, z, n].
//   dahn (n,) written: dah's n block again (dah is the step's, dahn the chunk's copy).
//   dh (n,) read as dL/dh_t from later steps, written dy * z (the step's GEMM adds
//   dA_h W_hh). a (3 blocks) read: [r, z, n]. hp (n,) read: h_{t-1}. ghn (n,) read:
//   h W_hn^T + b_hn. dy_out (n,) read: dL/dout_t.
template <typename T>
void backward_row_reset_after(i64 n, i64 H, T* __restrict da, T* __restrict dah,
                              T* __restrict dahn, T* __restrict dh, const T* __restrict a,
                              const T* __restrict hp, const T* __restrict ghn,
                              const T* __restrict dy_out) {
  for (i64 j = 0; j < n; ++j) {
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

// Zeroes units [0, n) of the 3 gate blocks (H apart) of a row.
template <typename T>
void zero_gate_units(i64 n, i64 H, T* row) {
  for (i64 q = 0; q < 3; ++q) std::fill(row + q * H, row + q * H + n, T(0));
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
  // (B, 3H) twice: the step's dL/d(h W_hh^T + b_hh), double buffered so that one barrier
  // per step suffices (step n's GEMM reads all of dah[n % 2] while the next step writes
  // the other); its r and z blocks equal dA's, so the chunk keeps only the n block
  // (dgates_h).
  T* dah[2] = {work + steps * B * H, work + steps * B * H + B * G};
  T* hp_buf = dah[1] + B * G;  // (rows of a chunk, H): h_{t-1} when h_prev is nullptr
  kernels::PackedB<T> w_hh_p;  // W_hh (3H, H), packed once for every step
  w_hh_p.pack_nn(G, H, w_hh, H);
  // Chunk after chunk of time steps, in the order the backward visits them: the chunk's
  // steps on one team, then its non-recurrent products.
  for (i64 n_hi = d.T - 1; n_hi >= 0;) {
    const detail::TimeChunk c = detail::chunk_of(n_hi, steps, d);
    const i64 n_lo = n_hi - (c.t1 - c.t0) + 1;
    const T* hp = chunk_h_prev(hp_buf, h_prev, hs, ld_hs, h0, lengths, c, d);  // (rows, H)
    hidden_n_projection(ghn, hp, w_hh, b_hh, c, d);
    // Per step each thread computes its units of dA, dA_h and dh for every row, meets
    // the others (dA_h is complete), then adds dA_h W_hh[:, u0:u1] into its units of dh.
    run_team<T>(team_size<T>(B, G, H), H, [&](Slice s, auto barrier) {
      const i64 u0 = s.u0, w = s.u1 - s.u0;
      for (i64 n = n_hi; n >= n_lo; --n) {
        const i64 t = time_at(n, d);
        T* da_t = dgates + (t - c.t0) * B * G;      // (B, 3H): this step's rows of the chunk
        T* dahn_t = dgates_h + (t - c.t0) * B * H;  // (B, H)
        T* dah_t = dah[n % 2];                      // (B, 3H)
        const T* dout_t = dout + t * B * d.ldo;
        for (i64 b = 0; b < B; ++b) {
          T* dahnb = dahn_t + b * H + u0;
          if (!step_active(lengths, b, t)) {
            zero_gate_units(w, H, da_t + b * G + u0);  // dh passes through unchanged
            zero_gate_units(w, H, dah_t + b * G + u0);
            std::fill(dahnb, dahnb + w, T(0));
            continue;
          }
          const i64 row = t * B + b, chunk_row = (t - c.t0) * B + b;
          backward_row_reset_after(w, H, da_t + b * G + u0, dah_t + b * G + u0, dahnb,
                                   dh + b * H + u0, gates + row * G + u0,
                                   hp + chunk_row * H + u0, ghn + chunk_row * H + u0,
                                   dout_t + b * d.ldo + u0);
        }
        barrier();
        kernels::gemm_packed_cols<T>(B, u0, s.u1, dah_t, G, w_hh_p, dh, H, true);
      }
    });
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
    n_hi = n_lo - 1;
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
  kernels::PackedB<T> w_rz_p;  // [W_hr; W_hz] (2H, H), packed once for every step
  w_rz_p.pack_nn(2 * H, H, w_hh, H);
  kernels::PackedB<T> w_n_p;  // W_hn (H, H)
  w_n_p.pack_nn(H, H, w_hh + 2 * H * H, H);
  const i64 steps = detail::backward_chunk_steps(d);
  for (i64 n_hi = d.T - 1; n_hi >= 0;) {
    const detail::TimeChunk c = detail::chunk_of(n_hi, steps, d);
    const i64 n_lo = n_hi - (c.t1 - c.t0) + 1;
    const T* hp_c = chunk_h_prev(hp_buf, h_prev, hs, ld_hs, h0, lengths, c, d);  // (rows, H)
    // Per step: the z and n blocks of dA for this thread's units and the direct dh term;
    // barrier (dA_n complete); its units of dL/d(r*h) = dA_n W_hn, then the r block and
    // the r * h term of dh; barrier (dA_r complete); dh += dA_{r,z} W_{hr,hz} for its
    // units. The next step touches only the thread's own units of dh and drh and writes
    // another step's rows of dgates.
    run_team<T>(team_size<T>(B, G, H), H, [&](Slice s, auto barrier) {
      const i64 u0 = s.u0, u1 = s.u1, w = u1 - u0;
      for (i64 n = n_hi; n >= n_lo; --n) {
        const i64 t = time_at(n, d);
        T* da_t = dgates + (t - c.t0) * B * G;  // (B, 3H): this step's rows of the chunk
        const T* dout_t = dout + t * B * d.ldo;
        for (i64 b = 0; b < B; ++b) {
          T* da = da_t + b * G + u0;
          if (!step_active(lengths, b, t)) {
            zero_gate_units(w, H, da);  // dh passes through unchanged
            continue;
          }
          const i64 row = t * B + b;
          const T* z = gates + row * G + H + u0;
          const T* nn = gates + row * G + 2 * H + u0;
          const T* hp = hp_c + ((t - c.t0) * B + b) * H + u0;
          const T* dy_out = dout_t + b * d.ldo + u0;
          T* dhb = dh + b * H + u0;
          for (i64 j = 0; j < w; ++j) {
            const T dy = dhb[j] + dy_out[j];
            da[H + j] = dy * (hp[j] - nn[j]) * z[j] * (T(1) - z[j]);
            da[2 * H + j] = dy * (T(1) - z[j]) * (T(1) - nn[j] * nn[j]);
            dhb[j] = dy * z[j];
          }
        }
        barrier();
        kernels::gemm_packed_cols<T>(B, u0, u1, da_t + 2 * H, G, w_n_p, drh, H, false);
        for (i64 b = 0; b < B; ++b) {
          if (!step_active(lengths, b, t)) continue;
          const i64 row = t * B + b;
          const T* r = gates + row * G + u0;
          const T* hp = hp_c + ((t - c.t0) * B + b) * H + u0;
          const T* g = drh + b * H + u0;
          T* da = da_t + b * G + u0;
          T* dhb = dh + b * H + u0;
          for (i64 j = 0; j < w; ++j) {
            da[j] = g[j] * hp[j] * r[j] * (T(1) - r[j]);
            dhb[j] += g[j] * r[j];
          }
        }
        barrier();
        kernels::gemm_packed_cols<T>(B, u0, u1, da_t, G, w_rz_p, dh, H, true);
      }
    });
    // The chunk's dA is complete: its share of dX, dW_ih, db_ih, db_hh (the same sums)
    // and dW_hh. The first chunk writes the weight gradients unless they are accumulated.
    const i64 rows = (c.t1 - c.t0) * B, row0 = c.t0 * B;
    const bool first = c.first && !accumulate_dw;
    detail::input_backward_chunk(dx, dw_ih, db_ih, db_hh, G, dgates, x, w_ih, G, d, c, first,
                                 accumulate_dx);
    kernels::gemm_tn<T>(2 * H, H, rows, dgates, G, hp_c, H, dw_hh, H, !first);
    kernels::gemm_tn<T>(H, H, rows, dgates + 2 * H, G, extra + row0 * H, H,
                        dw_hh + 2 * H * H, H, !first);
    n_hi = n_lo - 1;
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
