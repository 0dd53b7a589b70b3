// GRU cell with reset_after = true (PyTorch's), forward and backward (see gru.h), as the
// per-step code of the time loops of cell_loop.h: one GEMM h W_hh^T per step; b_hn stays
// inside r * (.).
#include "rnnkit/gru.h"

#include <algorithm>
#include <optional>

#include "by_isa.h"
#include "cell_loop.h"
#include "cell_variants.h"
#include "gru_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "vector_cells.h"

namespace rnnkit {

using detail::i64;
using detail::Slice;
using detail::TimeChunk;

namespace {

// The activations of one row with cell options o (cell_options.h), units [0, n): act (3
// blocks H apart) read as pre-activations with the biases (n's without r * (.)), written
// [r, z, n]; ghn (n,) read as h W_hn^T, written + b_hn (b_hn (n,) read, or nullptr); pre
// (3 blocks H apart) written: the pre-activations before clip, or nullptr.
template <typename T>
void variant_gates(const CellOptions& o, i64 n, i64 H, T* act, T* ghn, const T* b_hn, T* pre) {
  auto pre_block = [&](i64 q) { return pre != nullptr ? pre + q * H : nullptr; };
  detail::activate_gate(o.act[0], o.clip, n, act, pre_block(0));      // r
  detail::activate_gate(o.act[0], o.clip, n, act + H, pre_block(1));  // z
  for (i64 j = 0; j < n; ++j) {
    if (b_hn != nullptr) ghn[j] += b_hn[j];
    act[2 * H + j] += act[j] * ghn[j];
  }
  detail::activate_gate(o.act[1], o.clip, n, act + 2 * H, pre_block(2));  // n
}

// The forward's per-step code. keep.gates (T, B, 3H) is written always (workspace at
// inference); keep.h_w_hn (T, B, H) in training, for the backward.
template <typename T>
struct GruForward {
  static constexpr i64 kGates = 3;
  const ForwardArgs<T>& a;
  const Dims& d;
  T* pre;      // (T, B, 3H): pre-activations, then [r, z, n]
  i64 ld_pre;
  T* hw;       // (B, 3H) in work: columns [2H, 3H) hold h W_hn^T (the rest is unused)
  T* h_spare;  // (B, H) in work: the second h buffer of the loop
  T* bias;     // (3H,) in work: b_ih + b_hh on r and z, b_ih on n, or nullptr
  // the fused cell's (by_isa.h); plain with cell options (they run the portable loops)
  kernels::Isa cell_isa = kernels::Isa::plain;
  detail::PackedOrOwn<T> w_hh_p;  // W_hh^T (H, 3H), packed once for every step
  std::optional<detail::ProjectionAlongSteps<T>> along;  // B = 1: one_row_step

  GruForward(const ForwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), pre(a.keep.gates), ld_pre(3 * d.H), hw(a.work),
        h_spare(a.work + d.B * 3 * d.H), bias(a.work + d.B * 4 * d.H) {
    if (!detail::step_bias(bias, a.w.b_ih, a.w.b_hh, 2 * d.H, 3 * d.H)) bias = nullptr;
    w_hh_p.pack_nt(a.w.w_hh_packed, 3 * d.H, d.H, a.w.w_hh, d.H);
    if (a.options == nullptr) cell_isa = kernels::current_isa();
    if (detail::ProjectionAlongSteps<T>::applies(a.lengths, d)) {
      along.emplace(pre, ld_pre, a.x, a.w.w_ih, a.w.w_ih_packed, 3, d);
    }
  }

  template <class Barrier>
  void step(Slice s, i64 t, i64 rows, const T* hp, T* hn, const Barrier&) const {
    const i64 B = d.B, H = d.H, G = 3 * H, u0 = s.u0, u1 = s.u1, w = u1 - u0;
    T* g_t = pre + t * B * G;
    if (along) {
      one_row_step(s, t, hp, hn);
      return;
    }
    // The r and z pre-activations accumulate h W_{hr,hz}^T in place, on the first `rows`
    // rows (inactive rows there too: their gates are never read); h W_hn^T goes to hw.
    if (w == H) {  // r and z side by side: one call (the same bits as two)
      kernels::gemm_packed_cols<T>(rows, 0, 2 * H, hp, H, w_hh_p, g_t, G, true);
    } else {
      kernels::gemm_packed_cols<T>(rows, u0, u1, hp, H, w_hh_p, g_t, G, true);
      kernels::gemm_packed_cols<T>(rows, H + u0, H + u1, hp, H, w_hh_p, g_t, G, true);
    }
    kernels::gemm_packed_cols<T>(rows, 2 * H + u0, 2 * H + u1, hp, H, w_hh_p, hw, G, false);
    detail::gru_finish_rows(a.out, a.lengths, d, s, t, g_t, hp, hn,
                            [&](i64 b, T* act, const T* hpb, T* hnb, T* y) {
                              cell_row(t, b, u0, w, act, hpb, hnb, y);
                            });
  }

  // Step t of the one row (detail::one_row_step): the cell after its units' products
  // (r and z accumulated into the gates, h W_hn^T into hw).
  void one_row_step(Slice s, i64 t, const T* hp, T* hn) const {
    const i64 H = d.H;
    T* g_t = pre + t * 3 * H;  // (3H,)
    T* const outs[3] = {g_t, g_t + H, hw + 2 * H};
    detail::one_row_step<T>(s, t, hp, w_hh_p, H, 3, outs, 0x3u, *along, [&](i64 u, i64 n) {
      detail::gru_finish_rows(a.out, a.lengths, d, Slice{u, u + n}, t, g_t, hp, hn,
                              [&](i64 b, T* act, const T* hpb, T* hnb, T* y) {
                                cell_row(t, b, u, n, act, hpb, hnb, y);
                              });
    });
  }

  // The cell for units [u0, u0 + w) of active row b of step t: act (its gates row at unit
  // u0) read as pre-activations, written [r, z, n]; hpb (h_{t-1} at u0) read; hnb and y
  // (at u0) written h_t.
  void cell_row(i64 t, i64 b, i64 u0, i64 w, T* act, const T* hpb, T* hnb, T* y) const {
    const i64 B = d.B, H = d.H, G = 3 * H;
    const T* b_hh = a.w.b_hh;
    // h W_hn^T, then + b_hn in place; training keeps the sum for the backward
    T* ghn = hw + b * G + 2 * H + u0;
    T* kept_ghn = a.keep.h_w_hn != nullptr ? a.keep.h_w_hn + (t * B + b) * H + u0 : nullptr;
    // The fused cell leaves ghn as it is: only kept_ghn, if any, receives + b_hn.
    const T* bias_u = bias != nullptr ? bias + u0 : nullptr;
    const T* b_hn = b_hh != nullptr ? b_hh + 2 * H + u0 : nullptr;
    if (detail::by_vector_isa(cell_isa, [&](auto isa) {
          detail::gru_cell(isa, w, H, act, bias_u, ghn, b_hn, kept_ghn, hpb, hnb, y);
        })) {
      return;
    }
    if (bias_u != nullptr) {
      for (i64 q = 0; q < 3; ++q) detail::add_to(w, act + q * H, bias_u + q * H);
    }
    if (a.options != nullptr) {
      T* pre_row = a.keep.pre != nullptr ? a.keep.pre + (t * B + b) * a.keep.ld_pre + u0 : nullptr;
      variant_gates(*a.options, w, H, act, ghn, b_hn, pre_row);
    } else {
      kernels::sigmoid(w, act, act);          // r
      kernels::sigmoid(w, act + H, act + H);  // z
      for (i64 j = 0; j < w; ++j) {
        if (b_hn != nullptr) ghn[j] += b_hn[j];
        act[2 * H + j] += act[j] * ghn[j];
      }
      kernels::tanh(w, act + 2 * H, act + 2 * H);
    }
    if (kept_ghn != nullptr) std::copy(ghn, ghn + w, kept_ghn);
    detail::gru_blend(w, hnb, y, act + H, act + 2 * H, hpb);
  }
};

template <typename T>
void forward(const ForwardArgs<T>& a, const Dims& d) {
  const GruForward<T> cell(a, d);
  detail::forward_loop(cell, a, cell.h_spare, d,
                       cell.along ? cell.along->rows_before_loop() : -1);
}

// Units [0, n) of one row of one step of the backward at ISA plain, the reference of the
// vector copies (vector_cells.h; all pointers at the first unit; blocks of [r, z, n] H
// apart). Restrict-qualified parameters (the buffers never overlap)
// let the compiler vectorise the loop: it gives up on run-time alias checks for this many
// pointers.
//   da, dah (3 blocks) written: dL/d(input side), dL/d(h W_hh^T + b_hh) of [r, z, n].
//   dahn (n,) written: dah's n block again (dah is the step's, dahn the chunk's copy).
//   dh (n,) read as dL/dh_t from later steps, written dy * z (the step's GEMM adds
//   dA_h W_hh). a (3 blocks) read: [r, z, n]. hp (n,) read: h_{t-1}. ghn (n,) read:
//   h W_hn^T + b_hn, as the forward kept it. dy_out (n,) read: dL/dout_t.
template <typename T>
void gru_backward_row(detail::Plain, i64 n, i64 H, T* __restrict da, T* __restrict dah,
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

// gru_backward_row with cell options o, units [0, n), n <= kVariantChunk: arguments as
// gru_backward_row's, plus pre (3 blocks H apart, the forward's pre-activations before clip).
template <typename T>
void variant_backward_row(i64 n, i64 H, T* da, T* dah, T* dahn, T* dh, const T* a,
                          const T* hp, const T* ghn, const T* dy_out, const T* pre,
                          const CellOptions& o) {
  const T *r = a, *z = a + H, *nn = a + 2 * H;
  T tmp[detail::kVariantChunk];
  for (i64 j = 0; j < n; ++j) {
    const T dy = dh[j] + dy_out[j];
    da[H + j] = dy * (hp[j] - nn[j]);      // dL/dz
    da[2 * H + j] = dy * (T(1) - z[j]);  // dL/dn
    dh[j] = dy * z[j];
  }
  detail::backprop_gate(o.act[1], o.clip, n, pre + 2 * H, nn, da + 2 * H, da + 2 * H, tmp);
  for (i64 j = 0; j < n; ++j) da[j] = da[2 * H + j] * ghn[j];  // dL/dr
  detail::backprop_gate(o.act[0], o.clip, n, pre, r, da, da, tmp);
  detail::backprop_gate(o.act[0], o.clip, n, pre + H, z, da + H, da + H, tmp);
  for (i64 j = 0; j < n; ++j) {
    dah[j] = da[j];
    dah[H + j] = da[H + j];
    dah[2 * H + j] = da[2 * H + j] * r[j];
    dahn[j] = dah[2 * H + j];
  }
}

// The backward's per-step code. It reads h_{t-1} W_hn^T + b_hn, the value the forward
// used inside r * (.), from saved.h_w_hn. The r and z blocks of dL/d(h W_hh^T) equal
// dA's (dgates); the chunk keeps only the n block (dgates_h).
template <typename T>
struct GruBackward {
  static constexpr i64 kGates = 3;
  const BackwardArgs<T>& a;
  const Dims& d;
  T* db_ih;    // the chunk's bias sums: b_hh's r and z blocks share b_ih's sums
  T* db_hh;
  i64 hh_cols;
  // (B, 3H) twice in work: the step's dL/d(h W_hh^T + b_hh), double buffered so that one
  // barrier per step suffices (step n's GEMM reads all of dah[n % 2] while the next step
  // writes the other).
  T* dah[2];
  T* hp_buf;   // (chunk rows, H) in work: h_{t-1} gathered when h_prev is not kept
  const T* hp = nullptr;       // (chunk rows, H): h_{t-1} of the current chunk
  kernels::PackedB<T> w_hh_p;  // W_hh (3H, H), packed once for every step
  // The rows each step computes: with sorted lengths, rows past a step's active prefix
  // are neither written nor read (dgates, dgates_h and dah alike).
  const detail::ActiveRows active;
  kernels::Isa isa = kernels::current_isa();  // the elementwise pass's: by_isa.h

  GruBackward(const BackwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), db_ih(a.g.db_ih), db_hh(a.g.db_hh), hh_cols(2 * d.H),
        active(a.lengths, d) {
    dah[0] = a.work;
    dah[1] = dah[0] + d.B * 3 * d.H;
    hp_buf = dah[1] + d.B * 3 * d.H;
    w_hh_p.pack_nn(3 * d.H, d.H, a.w.w_hh, d.H);
  }

  void begin_chunk(const TimeChunk& c) {
    hp = detail::chunk_h_prev(hp_buf, a.saved, a.lengths, c, d);
  }

  template <class Barrier>
  void step_da(Slice s, i64 n, i64 t, i64 rows, const TimeChunk& c, const Barrier&) const {
    const i64 B = d.B, H = d.H, G = 3 * H, ld = a.ld_dgates, u0 = s.u0, w = s.u1 - s.u0;
    T* da_t = a.dgates + (t - c.t0) * B * ld;     // (B, ld): this step's rows of the chunk
    T* dahn_t = a.dgates_h + (t - c.t0) * B * H;  // (B, H)
    T* dah_t = dah[n % 2];                        // (B, 3H)
    const T* dout_t = a.dout + t * B * d.ldo;
    // Rows past `rows` (finished sequences, sorted lengths) are left as they are: nothing
    // reads them, and dh passes through them unchanged.
    for (i64 b = 0; b < rows; ++b) {
      T* dahnb = dahn_t + b * H + u0;
      if (!step_active(a.lengths, b, t)) {
        detail::zero_gate_units(w, H, 3, da_t + b * ld + u0);  // dh passes through
        detail::zero_gate_units(w, H, 3, dah_t + b * G + u0);
        std::fill(dahnb, dahnb + w, T(0));
        continue;
      }
      const i64 row = t * B + b, chunk_row = (t - c.t0) * B + b;
      const T* ghn = a.saved.h_w_hn + row * H + u0;  // h_{t-1} W_hn^T + b_hn
      if (a.options != nullptr) {
        const T* pre = a.saved.pre + row * a.saved.ld_pre + u0;
        detail::for_each_variant_chunk(w, [&](i64 j, i64 m) {
          variant_backward_row(m, H, da_t + b * ld + u0 + j, dah_t + b * G + u0 + j, dahnb + j,
                               a.dh + b * H + u0 + j, a.saved.gates + row * G + u0 + j,
                               hp + chunk_row * H + u0 + j, ghn + j,
                               dout_t + b * d.ldo + u0 + j, pre + j, *a.options);
        });
        continue;
      }
      detail::by_isa(isa, [&](auto isa_tag) {
        gru_backward_row(isa_tag, w, H, da_t + b * ld + u0, dah_t + b * G + u0, dahnb,
                         a.dh + b * H + u0, a.saved.gates + row * G + u0,
                         hp + chunk_row * H + u0, ghn, dout_t + b * d.ldo + u0);
      });
    }
  }

  void step_dh(Slice s, i64 n, i64, i64 rows, const TimeChunk&) const {
    kernels::gemm_packed_cols<T>(rows, s.u0, s.u1, dah[n % 2], 3 * d.H, w_hh_p, a.dh, d.H,
                                 true);
  }

  void end_chunk(const TimeChunk& c, bool first, const detail::ActiveRows&) {
    const i64 H = d.H;
    detail::chunk_gemm_tn<T>(2 * H, H, a.dgates, a.ld_dgates, hp, H, a.g.dw_hh, H, !first, c, d,
                             active);
    detail::chunk_gemm_tn<T>(H, H, a.dgates_h, H, hp, H, a.g.dw_hh + 2 * H * H, H, !first, c,
                             d, active);
    if (a.g.db_hh != nullptr) {
      detail::chunk_column_sums(a.g.db_hh + 2 * H, a.dgates_h, H, H, !first, c, d, active);
    }
  }
};

template <typename T>
void backward(const BackwardArgs<T>& a, const Dims& d) {
  GruBackward<T> cell(a, d);
  detail::backward_loop(cell, a, d);
}

}  // namespace

template <typename T>
CellOps<T> gru_ops() {
  return {&forward<T>, &backward<T>, &detail::gru_work_size};
}

template CellOps<float> gru_ops<float>();
template CellOps<double> gru_ops<double>();

}  // namespace rnnkit
