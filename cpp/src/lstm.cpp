// LSTM cell, forward and backward (see lstm.h), as the per-step code of the time loops
// of cell_loop.h.
#include "rnnkit/lstm.h"

#include <algorithm>
#include <optional>

#include "by_isa.h"
#include "cell_loop.h"
#include "lstm_cell_plain.h"
#include "lstm_variant_cell.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "vector_cells.h"

namespace rnnkit {

using detail::h_slice;
using detail::i64;
using detail::Slice;
using detail::TimeChunk;

namespace {

// Scratch (lstm_work_size): the forward's second h (B, R <= H) and bias (4H,), then with
// a projection one step's m_t (B, H) at inference; the backward's bias gradient sum (4H,)
// and peephole gradient sum (3H,), then with a projection one step's dm_t (B, H).
std::int64_t lstm_work_size(const Dims& d) {
  return d.B * d.H + 7 * d.H + (d.P > 0 ? d.B * d.H : 0);
}

// Units of a row the portable cell handles per pass (its 4 gate blocks, c, tanh(c) and h
// take 7 x 512 elements: 14 KiB of floats, inside L1); tanh(c) at inference lives in a
// stack buffer of this many elements.
constexpr i64 kChunk = 512;

// Most bytes of packed W_ih^T and W_hh^T for which the input projection runs inside the
// step (LstmForward::project_in_step): the largest size measured faster that way, twice
// a 1 MiB L2; at four times it (8 MiB) the two ways timed the same (docs/performance.md,
// "AVX-512 activations and LSTM cell", its last paragraph).
constexpr i64 kInStepWeightBytes = i64(4) << 20;

// The forward's per-step code. keep.gates (T, B, 4H) is written always (workspace at
// inference); keep.c_prev and keep.tanh_c in training (with keep.h_prev, which the loop
// fills), keep.proj_in with a projection and keep.pre with cell options.
template <typename T>
struct LstmForward {
  static constexpr i64 kGates = 4;
  const ForwardArgs<T>& a;
  const Dims& d;
  T* pre;      // (T, B, 4H): pre-activations, then [i, f, g, o]
  i64 ld_pre;
  T* bias;     // (4H,): b_ih + b_hh, or nullptr
  bool training;
  kernels::Isa cell_isa = kernels::current_isa();  // the cell's: by_isa.h
  detail::PackedOrOwn<T> w_hh_p;  // W_hh^T (R, 4H), packed once for every step
  detail::PackedOrOwn<T> w_hr_p;  // W_hr^T (H, P), with a projection
  T* m_step = nullptr;  // (B, H) in work: m_t at inference with a projection
  std::optional<detail::ProjectionAlongSteps<T>> along;  // B = 1: one_row_step
  // x_t W_ih^T computed in the step, just before h W_hh^T (project_in_step)
  bool in_step = false;
  detail::PackedOrOwn<T> w_ih_p;  // W_ih^T (I, 4H), when in_step

  LstmForward(const ForwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), pre(a.keep.gates), ld_pre(4 * d.H), bias(a.work + d.B * d.H),
        training(a.keep.tanh_c != nullptr) {
    if (!detail::step_bias(bias, a.w.b_ih, a.w.b_hh, 4 * d.H, 4 * d.H)) bias = nullptr;
    const i64 R = h_size(d);
    w_hh_p.pack_nt(a.w.w_hh_packed, 4 * d.H, R, a.w.w_hh, R);
    if (d.P > 0) {
      w_hr_p.pack_nt(a.w.w_hr_packed, d.P, d.H, a.w.w_hr, d.H);
      m_step = a.work + d.B * d.H + 4 * d.H;
    }
    if (d.P == 0 && detail::ProjectionAlongSteps<T>::applies(a.lengths, d)) {
      along.emplace(pre, ld_pre, a.x, a.w.w_ih, a.w.w_ih_packed, 4, d);
    } else if (project_in_step(d)) {
      in_step = true;
      w_ih_p.pack_nt(a.w.w_ih_packed, 4 * d.H, d.I, a.w.w_ih, d.I);
    }
  }

  // Whether the input projection runs inside each step (x_t W_ih^T, then h W_hh^T added
  // in place: every element the same FMA chain as the projection before the loop) rather
  // than in chunks before the steps: the step's pre-activations then stay in L1/L2 from
  // the products to the cell, the two products share one pass (gemm_packed_pair_cols),
  // and at inference one step's rows of `pre` serve every step. Where the weights are
  // large, W_ih read at every step instead of once a chunk costs what that saves.
  static bool project_in_step(const Dims& d) {
    const i64 bytes = (d.I + h_size(d)) * 4 * d.H * i64(sizeof(T));
    return d.P == 0 && d.I >= 1 && bytes <= kInStepWeightBytes;
  }

  template <class Barrier>
  void step(Slice s, i64 t, i64 rows, const T* hp, T* hn, const Barrier& barrier) const {
    const i64 B = d.B, H = d.H, G = 4 * H, R = h_size(d), u0 = s.u0, w = s.u1 - s.u0;
    T* g_t = pre + (in_step && !training ? 0 : t) * B * G;  // (B, 4H)
    T* out_t = a.out + t * B * d.ldo;
    if (along) {
      one_row_step(s, t, hp, hn);
      return;
    }
    // Pre-activations of this thread's units: h W_hh^T added in place (or, with the
    // projection in the step, x_t W_ih^T + h W_hh^T in one pass) on the first `rows` rows
    // (inactive rows there too: their gates are never read).
    const T* x_t = a.x + t * B * d.I;  // (B, I)
    auto product = [&](i64 n0, i64 n1) {
      if (in_step) {
        kernels::gemm_packed_pair_cols<T>(rows, n0, n1, x_t, d.I, w_ih_p, hp, R, w_hh_p, g_t, G);
      } else {
        kernels::gemm_packed_cols<T>(rows, n0, n1, hp, R, w_hh_p, g_t, G, true);
      }
    };
    if (w == H) {  // one slice: one call (the same bits as four)
      product(0, G);
    } else {
      for (i64 q = 0; q < 4; ++q) product(q * H + u0, q * H + s.u1);
    }
    if (d.P > 0) {
      projected_step(s, t, rows, hp, hn, barrier);
      return;
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
      cell_row(t, b, u0, w, g_t + b * G + u0, cb, hnb, y);
    }
  }

  // Step t of the one row (detail::one_row_step): the cell after its units' products.
  void one_row_step(Slice s, i64 t, const T* hp, T* hn) const {
    const i64 H = d.H;
    T* g_t = pre + t * 4 * H;  // (4H,)
    T* out_t = a.out + t * d.ldo;
    if (training) std::copy(a.c + s.u0, a.c + s.u1, a.keep.c_prev + t * H + s.u0);
    T* const outs[4] = {g_t, g_t + H, g_t + 2 * H, g_t + 3 * H};
    detail::one_row_step<T>(s, t, hp, w_hh_p, H, 4, outs, 0xFu, *along, [&](i64 u, i64 n) {
      cell_row(t, 0, u, n, g_t + u, a.c + u, hn + u, out_t + u);
    });
  }

  // The cell for this thread's units [u0, u0 + w) of active row b of step t: act (its
  // gates row at unit u0) read as pre-activations, written as [i, f, g, o]; cb (its c at
  // u0) updated; h and y written (y nullptr: h only, a projection's m_t).
  void cell_row(i64 t, i64 b, i64 u0, i64 w, T* act, T* cb, T* h, T* y) const {
    const i64 H = d.H;
    T tc_local[kChunk];  // tanh(c_t) (h(c_t) with options) of one chunk at inference
    T* tcb = training ? a.keep.tanh_c + (t * d.B + b) * H + u0 : nullptr;
    const T* bias_u = bias != nullptr ? bias + u0 : nullptr;
    if (a.options != nullptr) {
      T* pre_row = nullptr;  // (5 blocks H apart) this row's pre-activations and c_t
      if (a.keep.pre != nullptr) pre_row = a.keep.pre + (t * d.B + b) * a.keep.ld_pre + u0;
      const T* ph = a.w.w_ph != nullptr ? a.w.w_ph + u0 : nullptr;
      detail::for_each_variant_chunk(w, [&](i64 j, i64 m) {
        detail::lstm_variant_cell(m, H, act + j, bias_u != nullptr ? bias_u + j : nullptr,
                                  cb + j, training ? tcb + j : tc_local, h + j,
                                  y != nullptr ? y + j : nullptr,
                                  ph != nullptr ? ph + j : nullptr,
                                  pre_row != nullptr ? pre_row + j : nullptr, *a.options);
      });
      return;
    }
    if (detail::by_vector_isa(cell_isa, [&](auto isa) {
          detail::lstm_cell(isa, w, H, act, bias_u, cb, tcb, h, y != nullptr ? y : h);
        })) {
      return;
    }
    for (i64 j = 0; j < w; j += kChunk) {
      const i64 m = std::min(kChunk, w - j);
      detail::lstm_cell_plain(m, H, act + j, bias_u != nullptr ? bias_u + j : nullptr, cb + j,
                 training ? tcb + j : tc_local, h + j, y != nullptr ? y + j : nullptr);
    }
  }

  // The rest of a step with a projection, after the recurrent GEMM: the cell writes this
  // thread's units of m_t (B, H) (0 in inactive rows); after a barrier (m_t complete) the
  // thread computes its columns [p0, p1) of h_t = m_t W_hr^T into hn (B, P) and out on the
  // first `rows` rows (ActiveRows), where inactive rows keep h_{t-1} and output 0.
  template <class Barrier>
  void projected_step(Slice s, i64 t, i64 rows, const T* hp, T* hn,
                      const Barrier& barrier) const {
    const i64 B = d.B, H = d.H, G = 4 * H, P = d.P, u0 = s.u0, w = s.u1 - s.u0;
    T* g_t = pre + t * B * G;
    T* m_t = training ? a.keep.proj_in + t * B * H : m_step;  // (B, H)
    for (i64 b = 0; b < B; ++b) {
      T* cb = a.c + b * H + u0;
      T* mb = m_t + b * H + u0;
      if (training) std::copy(cb, cb + w, a.keep.c_prev + (t * B + b) * H + u0);
      if (!step_active(a.lengths, b, t)) {
        std::fill(mb, mb + w, T(0));  // c keeps its value; dW_hr reads this row
        continue;
      }
      cell_row(t, b, u0, w, g_t + b * G + u0, cb, mb, nullptr);
    }
    barrier();
    const Slice ps = h_slice(s, d);
    if (ps.u0 == ps.u1) return;
    kernels::gemm_packed_cols<T>(rows, ps.u0, ps.u1, m_t, H, w_hr_p, hn, P, false);
    T* out_t = a.out + t * B * d.ldo;
    for (i64 b = 0; b < B; ++b) {
      T* hnb = hn + b * P;
      T* y = out_t + b * d.ldo;
      if (step_active(a.lengths, b, t)) {
        std::copy(hnb + ps.u0, hnb + ps.u1, y + ps.u0);
      } else {
        std::copy(hp + b * P + ps.u0, hp + b * P + ps.u1, hnb + ps.u0);
        std::fill(y + ps.u0, y + ps.u1, T(0));
      }
    }
  }
};

template <typename T>
void forward(const ForwardArgs<T>& a, const Dims& d) {
  const LstmForward<T> cell(a, d);
  i64 projected_steps = -1;  // all, before the loop
  if (cell.along) projected_steps = cell.along->rows_before_loop();
  if (cell.in_step) projected_steps = 0;
  detail::forward_loop(cell, a, a.work, d, projected_steps);
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
  T* dph_sum = nullptr;        // (3H,) in work: the peepholes' gradient, or nullptr
  kernels::PackedB<T> w_hh_p;  // W_hh (4H, R), packed once for every step
  kernels::PackedB<T> w_hr_p;  // W_hr (P, H), with a projection
  T* dm = nullptr;             // (B, H) in work: dm_t = dy_t W_hr, with a projection
  kernels::Isa isa = kernels::current_isa();  // the cell's: by_isa.h

  LstmBackward(const BackwardArgs<T>& args, const Dims& dims) : a(args), d(dims) {
    w_hh_p.pack_nn(4 * d.H, h_size(d), a.w.w_hh, h_size(d));
    if (d.P > 0) {
      w_hr_p.pack_nn(d.P, d.H, a.w.w_hr, d.H);
      dm = a.work + 7 * d.H;
    }
    if (a.g.db_ih != nullptr) {
      db_sum = a.work;
      std::fill(db_sum, db_sum + 4 * d.H, T(0));
    }
    if (a.g.dw_ph != nullptr) {
      dph_sum = a.work + 4 * d.H;
      std::fill(dph_sum, dph_sum + 3 * d.H, T(0));
    }
  }

  void begin_chunk(const TimeChunk&) {}

  // This thread's units for every row: reads and zeroes its units of dh, updates its
  // units of dc, writes its units' 4 gate columns of dA_t and adds them into db_sum (its
  // own columns, rows in visit order).
  template <class Barrier>
  void step_da(Slice s, i64, i64 t, i64 rows, const TimeChunk& c,
               const Barrier& barrier) const {
    if (d.P > 0) {
      projected_step_da(s, t, rows, c, barrier);
      return;
    }
    const i64 B = d.B, H = d.H, ld = a.ld_dgates, u0 = s.u0, w = s.u1 - s.u0;
    T* da_t = a.dgates + (t - c.t0) * B * ld;  // (B, ld): this step's rows of the chunk
    const T* dout_t = a.dout + t * B * d.ldo;
    for (i64 b = 0; b < B; ++b) {
      T* da = da_t + b * ld + u0;
      if (!step_active(a.lengths, b, t)) {
        detail::zero_gate_units(w, H, 4, da);
        continue;  // dh, dc pass through unchanged (the GEMM adds 0 * W_hh)
      }
      row_backward(t, b, u0, w, da, a.dh + b * H + u0, dout_t + b * d.ldo + u0);
    }
  }

  // The cell's derivative for this thread's units [u0, u0 + w) of active row b of step t
  // (lstm_backward_row's arguments at unit u0, vector_cells.h; dy_out nullptr: dh holds the
  // whole dL/dh_t, a projection's dm_t); adds da into db_sum (and the peepholes' gradient
  // into dph_sum).
  void row_backward(i64 t, i64 b, i64 u0, i64 w, T* da, T* dh, const T* dy_out) const {
    const i64 H = d.H, row = t * d.B + b;
    T* dc = a.dc + b * H + u0;
    const T* gates = a.saved.gates + row * 4 * H + u0;
    const T* tc = a.saved.tanh_c + row * H + u0;
    const T* cp = a.saved.c_prev + row * H + u0;
    if (a.options == nullptr) {  // db_sum is added to in the same pass
      detail::by_isa(isa, [&](auto isa_tag) {
        lstm_backward_row(isa_tag, w, H, da, dh, dc, gates, tc, cp, dy_out,
                          db_sum != nullptr ? db_sum + u0 : nullptr);
      });
      return;
    }
    const T* pre = a.saved.pre + row * a.saved.ld_pre + u0;
    const T* ph = a.w.w_ph != nullptr ? a.w.w_ph + u0 : nullptr;
    T* dph = dph_sum != nullptr ? dph_sum + u0 : nullptr;
    detail::for_each_variant_chunk(w, [&](i64 j, i64 m) {
      detail::lstm_variant_backward_row(m, H, da + j, dh + j, dc + j, gates + j, tc + j,
                                        cp + j, dy_out != nullptr ? dy_out + j : nullptr,
                                        pre + j, ph != nullptr ? ph + j : nullptr,
                                        dph != nullptr ? dph + j : nullptr, *a.options);
    });
    if (db_sum != nullptr) {
      for (i64 q = 0; q < 4; ++q) detail::add_to(w, db_sum + q * H + u0, da + q * H);
    }
  }

  // step_da with a projection. This thread's columns [p0, p1) of dy_t = dh + dout_t
  // (0 in inactive rows) go into the chunk's rows of dh_rows, and dh of active rows is
  // zeroed (step_dh adds dA W_hh; inactive rows pass dh through). After a barrier (dy_t
  // complete): dm_t = dy_t W_hr for this thread's units, then the cell's derivative with
  // dm_t as the gradient reaching h = o * tanh(c). The dm_t product runs on the first
  // `rows` rows (ActiveRows): the others' dm_t is not read.
  template <class Barrier>
  void projected_step_da(Slice s, i64 t, i64 rows, const TimeChunk& c,
                         const Barrier& barrier) const {
    const i64 B = d.B, H = d.H, ld = a.ld_dgates, P = d.P, u0 = s.u0, w = s.u1 - s.u0;
    const Slice ps = h_slice(s, d);
    T* dy_t = a.dh_rows + (t - c.t0) * B * P;  // (B, P)
    const T* dout_t = a.dout + t * B * d.ldo;
    for (i64 b = 0; b < B; ++b) {
      T* dy = dy_t + b * P;
      T* dhb = a.dh + b * P;
      if (!step_active(a.lengths, b, t)) {
        std::fill(dy + ps.u0, dy + ps.u1, T(0));
        continue;
      }
      const T* dob = dout_t + b * d.ldo;
      for (i64 p = ps.u0; p < ps.u1; ++p) {
        dy[p] = dhb[p] + dob[p];
        dhb[p] = T(0);
      }
    }
    barrier();
    T* da_t = a.dgates + (t - c.t0) * B * ld;  // (B, ld)
    kernels::gemm_packed_cols<T>(rows, u0, s.u1, dy_t, P, w_hr_p, dm, H, false);
    for (i64 b = 0; b < B; ++b) {
      T* da = da_t + b * ld + u0;
      if (!step_active(a.lengths, b, t)) {
        detail::zero_gate_units(w, H, 4, da);
        continue;
      }
      row_backward(t, b, u0, w, da, dm + b * H + u0, nullptr);
    }
  }

  void step_dh(Slice s, i64, i64 t, i64 rows, const TimeChunk& c) const {
    const T* da_t = a.dgates + (t - c.t0) * d.B * a.ld_dgates;
    const Slice hs = h_slice(s, d);
    kernels::gemm_packed_cols<T>(rows, hs.u0, hs.u1, da_t, a.ld_dgates, w_hh_p, a.dh, h_size(d),
                                 true);
  }

  // The hidden side's weight gradients of chunk c: dW_hh (4H, R) from h_{t-1} (kept) and,
  // with a projection, dW_hr (P, H) = dy^T m over the chunk's rows; both on the active rows
  // (chunk_gemm_tn: dA and dy are 0 in the rows it leaves out).
  void end_chunk(const TimeChunk& c, bool first, const detail::ActiveRows& active) {
    const i64 G = 4 * d.H, R = h_size(d);
    const T* hp = a.saved.h_prev + c.t0 * d.B * R;
    detail::chunk_gemm_tn<T>(G, R, a.dgates, a.ld_dgates, hp, R, a.g.dw_hh, R, !first, c, d,
                             active);
    if (d.P > 0) {
      const T* m = a.saved.proj_in + c.t0 * d.B * d.H;
      detail::chunk_gemm_tn<T>(d.P, d.H, a.dh_rows, d.P, m, d.H, a.g.dw_hr, d.H, !first, c, d,
                               active);
    }
  }

  // db_ih and db_hh (and dw_ph) written, or added to, from db_sum (dph_sum).
  void finish() const {
    if (dph_sum != nullptr) {
      if (a.accumulate_dw) {
        detail::add_to(3 * d.H, a.g.dw_ph, dph_sum);
      } else {
        std::copy(dph_sum, dph_sum + 3 * d.H, a.g.dw_ph);
      }
    }
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
