// LSTM cell, forward and backward (see lstm.h).
//
// Threads: one team per time loop (team.h). Per step a thread computes its units' 4 gate
// column ranges of the GEMM (one per gate block), the cell for its units of every row,
// and meets the others at one barrier.
#include "rnnkit/lstm.h"

#include <algorithm>

#include "cell_common.h"
#include "cells_avx2.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "team.h"

namespace rnnkit {

using detail::copy_units;
using detail::i64;
using detail::run_team;
using detail::Slice;
using detail::team_size;
using detail::time_at;

namespace {

// Units of a row the fused cell handles per pass (its 4 gate blocks, c, tanh(c) and h
// take 7 x 512 elements: 14 KiB of floats, inside L1); tanh(c) at inference lives in a
// stack buffer of this many elements.
constexpr i64 kChunk = 512;

// Loops of cell_chunk. Restrict-qualified parameters (the buffers never overlap) let the
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

// The cell for units [0, n) of one active row (all pointers at the chunk's first unit):
//   a (gates row, 4 blocks H apart) read as pre-activations, written as [i, f, g, o].
//   bias (4 blocks H apart) read, or nullptr.  c read as c_{t-1}, written as c_t.
//   tc written: tanh(c_t).  h, y written: h_t.
// The arithmetic of every element is the one-row-at-a-time formula's (the same bits).
template <typename T>
void cell_chunk(i64 n, i64 H, T* a, const T* bias, T* c, T* tc, T* h, T* y) {
  if (bias != nullptr) {
    for (i64 q = 0; q < 4; ++q) detail::add_to(n, a + q * H, bias + q * H);
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
  update_h(n, h, y, a + 3 * H, tc);
}

}  // namespace

template <typename T>
void lstm_forward(T* out, T* h, T* c, T* gates, T* h_prev, T* c_prev, T* tanh_c, T* work,
                  const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                  const std::int64_t* lengths, const Dims& d) {
  const i64 B = d.B, H = d.H, G = 4 * H, T_ = d.T;
  const bool training = h_prev != nullptr;
  const detail::InputProjection<T> projection(gates, G, x, w_ih, 4, d);  // (T*B, 4H)
  // h is double buffered so that one barrier per step suffices: step n's GEMM reads all
  // units of hbuf[n % 2] (h_{t-1}) while each thread writes its units of h_t into
  // hbuf[(n + 1) % 2]; the barrier then orders those writes before step n+1's GEMM, and
  // nobody writes hbuf[n % 2] again before the next barrier.
  T* hbuf[2] = {h, work};      // (B, H) each: the caller's h and work's first B*H
  T* bias = work + B * H;      // (4H,): b_ih + b_hh, or unused
  const bool has_bias = detail::step_bias(bias, b_ih, b_hh, G, G);
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, 4H), packed once for every step
  w_hh_p.pack_nt(G, H, w_hh, H);
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  const bool fused_cell = kernels::uses_avx2(kernels::current_isa());  // one pass: cells_avx2.h
#endif
  run_team<T>(team_size<T>(B, 4 * H, H), H, [&](Slice s, auto barrier) {
    const i64 u0 = s.u0, w = s.u1 - s.u0;  // this thread's units
    T tc_local[kChunk];                    // tanh(c_t) of one chunk at inference
    for (i64 n = 0; n < T_; ++n) {
      const i64 t = time_at(n, d);
      const T* hp = hbuf[n % 2];  // (B, H) read: h_{t-1}
      T* hn = hbuf[(n + 1) % 2];  // (B, H) written (this thread's units): h_t
      T* g_t = gates + t * B * G;  // (B, 4H)
      T* out_t = out + t * B * d.ldo;
      projection.before_step(n, u0, s.u1);  // x W_ih^T of this thread's units
      // Pre-activations of this thread's units accumulate h W_hh^T in place (rows of
      // inactive steps too: their gates are never read). Inside the team the GEMM runs
      // on the calling thread.
      if (w == H) {  // one slice: one call (the same bits as four)
        kernels::gemm_packed<T>(B, hp, H, w_hh_p, g_t, G, true);
      } else {
        for (i64 q = 0; q < 4; ++q) {
          kernels::gemm_packed_cols<T>(B, q * H + u0, q * H + s.u1, hp, H, w_hh_p, g_t, G, true);
        }
      }
      for (i64 b = 0; b < B; ++b) {
        const T* hpb = hp + b * H + u0;
        T* hnb = hn + b * H + u0;
        T* cb = c + b * H + u0;
        T* y = out_t + b * d.ldo + u0;
        if (training) {  // the state entering step t
          std::copy(hpb, hpb + w, h_prev + (t * B + b) * H + u0);
          std::copy(cb, cb + w, c_prev + (t * B + b) * H + u0);
        }
        if (!step_active(lengths, b, t)) {
          std::copy(hpb, hpb + w, hnb);  // h and c keep their values
          std::fill(y, y + w, T(0));
          continue;
        }
        T* a = g_t + b * G + u0;
        T* tcb = training ? tanh_c + (t * B + b) * H + u0 : nullptr;
#ifdef RNNKIT_HAVE_AVX2_KERNELS
        if (fused_cell) {
          detail::avx2::lstm_cell(w, H, a, has_bias ? bias + u0 : nullptr, cb, tcb, hnb, y,
                                  training);
          continue;
        }
#endif
        for (i64 j = 0; j < w; j += kChunk) {
          const i64 m = std::min(kChunk, w - j);
          cell_chunk(m, H, a + j, has_bias ? bias + u0 + j : nullptr, cb + j,
                     training ? tcb + j : tc_local, hnb + j, y + j);
        }
      }
      barrier();
    }
    // After an odd number of steps h_n is in work: copy this thread's units back (it
    // wrote them itself, so no barrier is needed).
    if (T_ % 2 == 1) copy_units(B, H, s, work, h);
  });
}

namespace {

// Units [0, n) of one row of one step of the backward (all pointers at the first unit;
// gate blocks H apart). Restrict-qualified parameters (the buffers never overlap) let the
// compiler vectorise the loop: it gives up on run-time alias checks for this many
// pointers.
//   da (4 blocks) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (n,) read as dL/dh_t from later steps, written 0 (the step's GEMM adds dA W_hh).
//   dc (n,) read as dL/dc_t from later steps, written dL/dc_{t-1}.
//   a (4 blocks) read: [i, f, g, o]. tc (n,) read: tanh(c_t). cp (n,) read: c_{t-1}.
//   dy_out (n,) read: dL/dout_t.
template <typename T>
void backward_row(i64 n, i64 H, T* __restrict da, T* __restrict dh, T* __restrict dc,
                  const T* __restrict a, const T* __restrict tc, const T* __restrict cp,
                  const T* __restrict dy_out) {
  for (i64 j = 0; j < n; ++j) {
    const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
    const T dy = dh[j] + dy_out[j];
    const T dct = dc[j] + dy * o * (T(1) - tc[j] * tc[j]);  // total dL/dc_t
    da[j] = dct * g * i * (T(1) - i);
    da[H + j] = dct * cp[j] * f * (T(1) - f);
    da[2 * H + j] = dct * i * (T(1) - g * g);
    da[3 * H + j] = dy * tc[j] * o * (T(1) - o);
    dc[j] = dct * f;
    dh[j] = T(0);
  }
}

}  // namespace

std::int64_t lstm_backward_chunk_rows(const Dims& d) {
  return detail::backward_chunk_steps(d) * d.B;
}

template <typename T>
void lstm_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dc, T* dgates,
                   const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                   const T* h_prev, const T* c_prev, const T* tanh_c,
                   const std::int64_t* lengths, const Dims& d, bool accumulate_dx) {
  const i64 B = d.B, H = d.H, G = 4 * H;
  kernels::PackedB<T> w_hh_p;  // W_hh (4H, H), packed once for every step
  w_hh_p.pack_nn(G, H, w_hh, H);
  // The bias gradient is summed inside the time loop, step by step, while each step's
  // dA is still in cache.
  if (db_ih != nullptr) std::fill(db_ih, db_ih + G, T(0));
  // Chunk after chunk of time steps, in the order the backward visits them: the chunk's
  // steps on one team, then its share of dX, dW_ih and dW_hh while its dA is in cache.
  const i64 steps = detail::backward_chunk_steps(d);
  for (i64 n_hi = d.T - 1; n_hi >= 0;) {
    const detail::TimeChunk c = detail::chunk_of(n_hi, steps, d);
    const i64 n_lo = n_hi - (c.t1 - c.t0) + 1;
    // Per step each thread (units [u0, u1)) first runs the elementwise derivative of its
    // units for every row: it reads and zeroes its units of dh, updates its units of dc,
    // writes its units' 4 gate columns of da_t and adds them into db_ih. Barrier: da_t is
    // complete. Then it adds da_t W_hh[:, u0:u1] into its units of dh (columns of dh are
    // hidden units). One barrier per step suffices: the next step's elementwise touches
    // only this thread's own units of dh, dc and db_ih (which only this thread wrote) and
    // writes da_{t-1}, a different buffer from the da_t that slower threads may still be
    // reading; no thread reads da_{t-1} before the next barrier. The region's end orders
    // everything before the chunk's GEMMs below.
    run_team<T>(team_size<T>(B, 4 * H, H), H, [&](Slice s, auto barrier) {
      const i64 u0 = s.u0, w = s.u1 - s.u0;
      for (i64 n = n_hi; n >= n_lo; --n) {
        const i64 t = time_at(n, d);
        T* da_t = dgates + (t - c.t0) * B * G;  // (B, 4H): this step's rows of the chunk
        const T* dout_t = dout + t * B * d.ldo;
        for (i64 b = 0; b < B; ++b) {
          T* da = da_t + b * G + u0;
          if (!step_active(lengths, b, t)) {
            for (i64 q = 0; q < 4; ++q) std::fill(da + q * H, da + q * H + w, T(0));
            continue;  // dh, dc pass through unchanged (the GEMM adds 0 * W_hh)
          }
          const i64 row = t * B + b;
          backward_row(w, H, da, dh + b * H + u0, dc + b * H + u0, gates + row * G + u0,
                       tanh_c + row * H + u0, c_prev + row * H + u0, dout_t + b * d.ldo + u0);
          if (db_ih != nullptr) {  // this thread's columns, rows in visit order
            for (i64 q = 0; q < 4; ++q) detail::add_to(w, db_ih + q * H + u0, da + q * H);
          }
        }
        barrier();
        kernels::gemm_packed_cols<T>(B, u0, s.u1, da_t, G, w_hh_p, dh, H, true);
      }
    });
    // The chunk's dA is complete. The first chunk writes the weight gradients, the
    // others add into them.
    const i64 rows = (c.t1 - c.t0) * B;
    detail::input_backward_chunk(dx, dw_ih, static_cast<T*>(nullptr), static_cast<T*>(nullptr),
                                 0, dgates, x, w_ih, G, d, c, c.first, accumulate_dx);
    kernels::gemm_tn<T>(G, H, rows, dgates, G, h_prev + c.t0 * B * H, H, dw_hh, H, !c.first);
    n_hi = n_lo - 1;
  }
  detail::copy_bias_grad(db_hh, db_ih, G);
}

#define RNNKIT_INSTANTIATE(T)                                                                \
  template void lstm_forward<T>(T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*,          \
                                const T*, const T*, const T*, const std::int64_t*,           \
                                const Dims&);                                                \
  template void lstm_backward<T>(T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*,         \
                                 const T*, const T*, const T*, const T*, const T*, const T*, \
                                 const std::int64_t*, const Dims&, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
