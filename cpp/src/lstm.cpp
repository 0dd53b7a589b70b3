// LSTM cell, forward and backward (see lstm.h), as the per-step code of the time loops
// of cell_loop.h.
#include "rnnkit/lstm.h"

#include <algorithm>

#include "cell_loop.h"
#include "cells_avx2.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"

namespace rnnkit {

using detail::i64;
using detail::Slice;
using detail::TimeChunk;

namespace {

// Scratch (lstm_work_size): the forward's second h (B, H) and bias (4H,); the backward's
// bias gradient sum (4H,).
std::int64_t lstm_work_size(const Dims& d) { return d.B * d.H + 4 * d.H; }

// Units of a row the portable cell handles per pass (its 4 gate blocks, c, tanh(c) and h
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

// The forward's per-step code. keep.gates (T, B, 4H) is written always (workspace at
// inference); keep.c_prev and keep.tanh_c in training (with keep.h_prev, which the loop
// fills).
template <typename T>
struct LstmForward {
  static constexpr i64 kGates = 4;
  const ForwardArgs<T>& a;
  const Dims& d;
  T* pre;      // (T, B, 4H): pre-activations, then [i, f, g, o]
  i64 ld_pre;
  T* bias;     // (4H,): b_ih + b_hh, or nullptr
  bool training;
  bool fused_cell = false;     // one pass over AVX2 registers: cells_avx2.h
  detail::PackedOrOwn<T> w_hh_p;  // W_hh^T (H, 4H), packed once for every step

  LstmForward(const ForwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), pre(a.keep.gates), ld_pre(4 * d.H), bias(a.work + d.B * d.H),
        training(a.keep.tanh_c != nullptr) {
    if (!detail::step_bias(bias, a.w.b_ih, a.w.b_hh, 4 * d.H, 4 * d.H)) bias = nullptr;
    w_hh_p.pack_nt(a.w.w_hh_packed, 4 * d.H, d.H, a.w.w_hh, d.H);
#ifdef RNNKIT_HAVE_AVX2_KERNELS
    fused_cell = kernels::uses_avx2(kernels::current_isa());
#endif
  }

  template <class Barrier>
  void step(Slice s, i64 t, i64 rows, const T* hp, T* hn, const Barrier&) const {
    const i64 B = d.B, H = d.H, G = 4 * H, u0 = s.u0, w = s.u1 - s.u0;
    T tc_local[kChunk];  // tanh(c_t) of one chunk at inference
    T* g_t = pre + t * B * G;  // (B, 4H)
    T* out_t = a.out + t * B * d.ldo;
    // Pre-activations of this thread's units accumulate h W_hh^T in place, on the first
    // `rows` rows (inactive rows there too: their gates are never read).
    if (w == H) {  // one slice: one call (the same bits as four)
      kernels::gemm_packed<T>(rows, hp, H, w_hh_p, g_t, G, true);
    } else {
      for (i64 q = 0; q < 4; ++q) {
        kernels::gemm_packed_cols<T>(rows, q * H + u0, q * H + s.u1, hp, H, w_hh_p, g_t, G,
                                     true);
      }
    }
    for (i64 b = 0; b < B; ++b) {
      const T* hpb = hp + b * H + u0;
      T* hnb = hn + b * H + u0;
      T* cb = a.c + b * H + u0;
      T* y = out_t + b * d.ldo + u0;
      if (training) std::copy(cb, cb + w, a.keep.c_prev + (t * B + b) * H + u0);
      if (!step_active(a.lengths, b, t)) {
        std::copy(hpb, hpb + w, hnb);  // h and c keep their values
        std::fill(y, y + w, T(0));
        continue;
      }
      T* act = g_t + b * G + u0;
      T* tcb = training ? a.keep.tanh_c + (t * B + b) * H + u0 : nullptr;
      const T* bias_u = bias != nullptr ? bias + u0 : nullptr;
#ifdef RNNKIT_HAVE_AVX2_KERNELS
      if (fused_cell) {
        detail::avx2::lstm_cell(w, H, act, bias_u, cb, tcb, hnb, y, training);
        continue;
      }
#endif
      for (i64 j = 0; j < w; j += kChunk) {
        const i64 m = std::min(kChunk, w - j);
        cell_chunk(m, H, act + j, bias_u != nullptr ? bias_u + j : nullptr, cb + j,
                   training ? tcb + j : tc_local, hnb + j, y + j);
      }
    }
  }
};

template <typename T>
void forward(const ForwardArgs<T>& a, const Dims& d) {
  const LstmForward<T> cell(a, d);
  detail::forward_loop(cell, a, a.work, d);
}

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

// The backward's per-step code. The bias gradient is summed inside the time loop, step
// by step, while each step's dA is still in cache (db_sum); b_ih and b_hh enter the same
// pre-activations, so both gradients are that sum.
template <typename T>
struct LstmBackward {
  static constexpr i64 kGates = 4;
  const BackwardArgs<T>& a;
  const Dims& d;
  T* db_ih = nullptr;  // no chunk bias sums: see db_sum
  T* db_hh = nullptr;
  i64 hh_cols = 0;
  T* db_sum = nullptr;         // (4H,) in work: the bias gradient, or nullptr (no bias)
  kernels::PackedB<T> w_hh_p;  // W_hh (4H, H), packed once for every step

  LstmBackward(const BackwardArgs<T>& args, const Dims& dims) : a(args), d(dims) {
    w_hh_p.pack_nn(4 * d.H, d.H, a.w.w_hh, d.H);
    if (a.g.db_ih != nullptr) {
      db_sum = a.work;
      std::fill(db_sum, db_sum + 4 * d.H, T(0));
    }
  }

  void begin_chunk(const TimeChunk&) {}

  // This thread's units for every row: reads and zeroes its units of dh, updates its
  // units of dc, writes its units' 4 gate columns of dA_t and adds them into db_sum (its
  // own columns, rows in visit order).
  template <class Barrier>
  void step_da(Slice s, i64, i64 t, i64, const TimeChunk& c, const Barrier&) const {
    const i64 B = d.B, H = d.H, G = 4 * H, u0 = s.u0, w = s.u1 - s.u0;
    T* da_t = a.dgates + (t - c.t0) * B * G;  // (B, 4H): this step's rows of the chunk
    const T* dout_t = a.dout + t * B * d.ldo;
    for (i64 b = 0; b < B; ++b) {
      T* da = da_t + b * G + u0;
      if (!step_active(a.lengths, b, t)) {
        detail::zero_gate_units(w, H, 4, da);
        continue;  // dh, dc pass through unchanged (the GEMM adds 0 * W_hh)
      }
      const i64 row = t * B + b;
      backward_row(w, H, da, a.dh + b * H + u0, a.dc + b * H + u0, a.saved.gates + row * G + u0,
                   a.saved.tanh_c + row * H + u0, a.saved.c_prev + row * H + u0,
                   dout_t + b * d.ldo + u0);
      if (db_sum != nullptr) {
        for (i64 q = 0; q < 4; ++q) detail::add_to(w, db_sum + q * H + u0, da + q * H);
      }
    }
  }

  void step_dh(Slice s, i64, i64 t, i64 rows, const TimeChunk& c) const {
    const T* da_t = a.dgates + (t - c.t0) * d.B * 4 * d.H;
    kernels::gemm_packed_cols<T>(rows, s.u0, s.u1, da_t, 4 * d.H, w_hh_p, a.dh, d.H, true);
  }

  void end_chunk(const TimeChunk& c, bool first, const detail::ActiveRows& active) {
    const i64 G = 4 * d.H;
    const T* hp = detail::chunk_h_prev<T>(nullptr, a.saved, a.lengths, c, d);  // kept
    detail::chunk_gemm_tn<T>(G, d.H, a.dgates, G, hp, d.H, a.g.dw_hh, d.H, !first, c, d,
                             active);
  }

  // db_ih and db_hh written, or added to, from db_sum.
  void finish() const {
    if (db_sum == nullptr) return;
    const i64 G = 4 * d.H;
    if (a.accumulate_dw) {
      detail::add_to(G, a.g.db_ih, db_sum);
      detail::add_to(G, a.g.db_hh, db_sum);
    } else {
      std::copy(db_sum, db_sum + G, a.g.db_ih);
      std::copy(db_sum, db_sum + G, a.g.db_hh);
    }
  }
};

template <typename T>
void backward(const BackwardArgs<T>& a, const Dims& d) {
  LstmBackward<T> cell(a, d);
  detail::backward_loop(cell, a, d);
  cell.finish();
}

}  // namespace

template <typename T>
CellOps<T> lstm_ops() {
  return {&forward<T>, &backward<T>, &lstm_work_size};
}

template CellOps<float> lstm_ops<float>();
template CellOps<double> lstm_ops<double>();

}  // namespace rnnkit
