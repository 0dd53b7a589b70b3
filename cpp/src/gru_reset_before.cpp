// GRU cell with reset_after = false (the original GRU), forward and backward (see gru.h),
// as the per-step code of the time loops of cell_loop.h: per step h W_{hr,hz}^T, then r,
// then (r * h) W_hn^T, so each step meets at a second barrier (r * h must be complete
// before (r * h) W_hn^T, and dA_n before dA_n W_hn).
#include <algorithm>

#include "by_isa.h"
#include "cell_loop.h"
#include "cell_variants.h"
#include "gru_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/gru.h"
#include "rnnkit/isa.h"
#include "vector_cells.h"

namespace rnnkit {

using detail::i64;
using detail::Slice;
using detail::TimeChunk;

namespace {

// The forward's per-step code. keep.gates (T, B, 3H) is written always (workspace at
// inference); keep.reset_h in training.
template <typename T>
struct GruResetBeforeForward {
  static constexpr i64 kGates = 3;
  const ForwardArgs<T>& a;
  const Dims& d;
  T* pre;      // (T, B, 3H): pre-activations, then [r, z, n]
  i64 ld_pre;
  T* hw;       // (B, 3H) in work: [h W_hr^T, h W_hz^T, (r*h) W_hn^T]
  T* rh_work;  // (B, H) in work: r * h at inference
  T* h_spare;  // (B, H) in work: the second h buffer of the loop
  T* bias;     // (3H,) in work: b_ih + b_hh, or nullptr
  // the fused cells' (by_isa.h); plain with cell options (they run the portable loops)
  kernels::Isa cell_isa = kernels::Isa::plain;
  kernels::PackedB<T> w_rz_p;  // [W_hr; W_hz]^T (H, 2H), packed once for every step
  kernels::PackedB<T> w_n_p;   // W_hn^T (H, H)

  GruResetBeforeForward(const ForwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), pre(a.keep.gates), ld_pre(3 * d.H), hw(a.work),
        rh_work(a.work + d.B * 3 * d.H), h_spare(a.work + d.B * 4 * d.H),
        bias(a.work + d.B * 5 * d.H) {
    const i64 H = d.H;
    if (!detail::step_bias(bias, a.w.b_ih, a.w.b_hh, 3 * H, 3 * H)) bias = nullptr;
    w_rz_p.pack_nt(2 * H, H, a.w.w_hh, H);
    w_n_p.pack_nt(H, H, a.w.w_hh + 2 * H * H, H);
    if (a.options == nullptr) cell_isa = kernels::current_isa();
  }

  // Cell options: row t*B + b of keep.pre at unit u0 (3 blocks H apart), or nullptr.
  T* pre_row(i64 t, i64 b, i64 u0) const {
    if (a.keep.pre == nullptr) return nullptr;
    return a.keep.pre + (t * d.B + b) * a.keep.ld_pre + u0;
  }

  template <class Barrier>
  void step(Slice s, i64 t, i64 rows, const T* hp, T* hn, const Barrier& barrier) const {
    const i64 B = d.B, H = d.H, G = 3 * H, u0 = s.u0, u1 = s.u1, w = u1 - u0;
    T* rh = a.keep.reset_h != nullptr ? a.keep.reset_h + t * B * H : rh_work;  // (B, H)
    // The step's GEMMs run on the first `rows` rows (ActiveRows); inactive rows' hw is
    // not read.
    kernels::gemm_packed_cols<T>(rows, u0, u1, hp, H, w_rz_p, hw, G, false);
    kernels::gemm_packed_cols<T>(rows, H + u0, H + u1, hp, H, w_rz_p, hw, G, false);
    T* g_t = pre + t * B * G;
    for (i64 b = 0; b < B; ++b) {
      T* rhb = rh + b * H + u0;
      if (!step_active(a.lengths, b, t)) {
        std::fill(rhb, rhb + w, T(0));  // read by the GEMMs; must be finite
        continue;
      }
      T* act = g_t + b * G + u0;
      const T* r = hw + b * G + u0;
      const T* hpb = hp + b * H + u0;
      // The fused cells (vector_cells.h) add n's bias in the second half, where the loops
      // add it here: the same sum, (pre-activation + bias) + (r * h) W_hn^T.
      const T* bias_u = bias != nullptr ? bias + u0 : nullptr;
      if (detail::by_vector_isa(cell_isa, [&](auto isa) {
            detail::gru_before_gates(isa, w, H, act, bias_u, r, hpb, rhb);
          })) {
        continue;
      }
      if (bias_u != nullptr) {
        for (i64 q = 0; q < 3; ++q) detail::add_to(w, act + q * H, bias_u + q * H);
      }
      for (i64 j = 0; j < w; ++j) {
        act[j] += r[j];
        act[H + j] += r[H + j];
      }
      if (a.options != nullptr) {
        T* pre = pre_row(t, b, u0);
        detail::activate_gate(a.options->act[0], a.options->clip, w, act, pre);  // r
        detail::activate_gate(a.options->act[0], a.options->clip, w, act + H,
                              pre != nullptr ? pre + H : nullptr);  // z
      } else {
        kernels::sigmoid(w, act, act);          // r
        kernels::sigmoid(w, act + H, act + H);  // z
      }
      for (i64 j = 0; j < w; ++j) rhb[j] = act[j] * hpb[j];
    }
    barrier();  // r * h is complete
    kernels::gemm_packed_cols<T>(rows, u0, u1, rh, H, w_n_p, hw + 2 * H, G, false);
    auto finish = [&](i64 b, T* act, const T* hpb, T* hnb, T* y) {
      const T* r = hw + b * G + u0;
      const T* bias_n = bias != nullptr ? bias + 2 * H + u0 : nullptr;
      if (detail::by_vector_isa(cell_isa, [&](auto isa) {
            detail::gru_before_finish(isa, w, H, act, bias_n, r + 2 * H, hpb, hnb, y);
          })) {
        return;
      }
      for (i64 j = 0; j < w; ++j) act[2 * H + j] += r[2 * H + j];
      if (a.options != nullptr) {
        T* pre = pre_row(t, b, u0);
        detail::activate_gate(a.options->act[1], a.options->clip, w, act + 2 * H,
                              pre != nullptr ? pre + 2 * H : nullptr);  // n
      } else {
        kernels::tanh(w, act + 2 * H, act + 2 * H);
      }
      detail::gru_blend(w, hnb, y, act + H, act + 2 * H, hpb);
    };
    detail::gru_finish_rows(a.out, a.lengths, d, s, t, g_t, hp, hn, finish);
  }
};

template <typename T>
void forward(const ForwardArgs<T>& a, const Dims& d) {
  const GruResetBeforeForward<T> cell(a, d);
  detail::forward_loop(cell, a, cell.h_spare, d);
}

// The two elementwise passes of a row of the backward at ISA plain, the references of the
// vector copies (vector_cells.h; arguments as there). Restrict-qualified parameters (the
// buffers never overlap) let the compiler vectorise the loops.
// z and n, before dL/d(r * h) = da_n W_hn is known:
template <typename T>
void gru_reset_before_backward_zn(detail::Plain, i64 n, i64 H, T* __restrict da,
                                  T* __restrict dh, const T* __restrict a,
                                  const T* __restrict hp, const T* __restrict dy_out) {
  const T* z = a + H;
  const T* nn = a + 2 * H;
  for (i64 j = 0; j < n; ++j) {
    const T dy = dh[j] + dy_out[j];
    da[H + j] = dy * (hp[j] - nn[j]) * z[j] * (T(1) - z[j]);
    da[2 * H + j] = dy * (T(1) - z[j]) * (T(1) - nn[j] * nn[j]);
    dh[j] = dy * z[j];
  }
}
// r, from g = dL/d(r * h):
template <typename T>
void gru_reset_before_backward_r(detail::Plain, i64 n, T* __restrict dar, T* __restrict dh,
                                 const T* __restrict r, const T* __restrict hp,
                                 const T* __restrict g) {
  for (i64 j = 0; j < n; ++j) {
    dar[j] = g[j] * hp[j] * r[j] * (T(1) - r[j]);
    dh[j] += g[j] * r[j];
  }
}

// The backward's per-step code: per step the z and n blocks of dA for this thread's
// units and the direct dh term; barrier (dA_n complete); its units of dL/d(r*h) =
// dA_n W_hn, then the r block and the r * h term of dh; then (step_dh, after the loop's
// barrier: dA_r complete) dh += dA_{r,z} W_{hr,hz}. The next step touches only the
// thread's own units of dh and drh and writes another step's rows of dgates.
template <typename T>
struct GruResetBeforeBackward {
  static constexpr i64 kGates = 3;
  const BackwardArgs<T>& a;
  const Dims& d;
  T* db_ih;  // the chunk's bias sums: all of b_hh shares b_ih's pre-activations
  T* db_hh;
  i64 hh_cols;
  T* drh;     // (B, H) in work: dL/d(r * h)
  T* hp_buf;  // (chunk rows, H) in work: h_{t-1} gathered when h_prev is not kept
  const T* hp_c = nullptr;     // (chunk rows, H): h_{t-1} of the current chunk
  kernels::PackedB<T> w_rz_p;  // [W_hr; W_hz] (2H, H), packed once for every step
  kernels::PackedB<T> w_n_p;   // W_hn (H, H)
  kernels::Isa isa = kernels::current_isa();  // the elementwise passes': by_isa.h

  GruResetBeforeBackward(const BackwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), db_ih(a.g.db_ih), db_hh(a.g.db_hh), hh_cols(3 * d.H),
        drh(a.work), hp_buf(a.work + d.B * d.H) {
    const i64 H = d.H;
    w_rz_p.pack_nn(2 * H, H, a.w.w_hh, H);
    w_n_p.pack_nn(H, H, a.w.w_hh + 2 * H * H, H);
  }

  void begin_chunk(const TimeChunk& c) {
    hp_c = detail::chunk_h_prev(hp_buf, a.saved, a.lengths, c, d);
  }

  template <class Barrier>
  void step_da(Slice s, i64, i64 t, i64 rows, const TimeChunk& c,
               const Barrier& barrier) const {
    const i64 B = d.B, H = d.H, G = 3 * H, ld = a.ld_dgates, u0 = s.u0, u1 = s.u1, w = u1 - u0;
    const T* gates = a.saved.gates;
    T* da_t = a.dgates + (t - c.t0) * B * ld;  // (B, ld): this step's rows of the chunk
    const T* dout_t = a.dout + t * B * d.ldo;
    // Rows past `rows` (finished sequences, sorted lengths) are left as they are: nothing
    // reads them, and dh passes through them unchanged.
    for (i64 b = 0; b < rows; ++b) {
      T* da = da_t + b * ld + u0;
      if (!step_active(a.lengths, b, t)) {
        detail::zero_gate_units(w, H, 3, da);  // dh passes through unchanged
        continue;
      }
      const i64 row = t * B + b;
      const T* z = gates + row * G + H + u0;
      const T* nn = gates + row * G + 2 * H + u0;
      const T* hp = hp_c + ((t - c.t0) * B + b) * H + u0;
      const T* dy_out = dout_t + b * d.ldo + u0;
      T* dhb = a.dh + b * H + u0;
      if (a.options != nullptr) {
        const T* pre = a.saved.pre + row * a.saved.ld_pre + u0;
        const CellOptions& o = *a.options;
        for (i64 j = 0; j < w; ++j) {
          const T dy = dhb[j] + dy_out[j];
          da[H + j] = dy * (hp[j] - nn[j]);      // dL/dz
          da[2 * H + j] = dy * (T(1) - z[j]);  // dL/dn
          dhb[j] = dy * z[j];
        }
        detail::for_each_variant_chunk(w, [&](i64 j, i64 m) {
          T tmp[detail::kVariantChunk];
          detail::backprop_gate(o.act[0], o.clip, m, pre + H + j, z + j, da + H + j,
                                da + H + j, tmp);
          detail::backprop_gate(o.act[1], o.clip, m, pre + 2 * H + j, nn + j, da + 2 * H + j,
                                da + 2 * H + j, tmp);
        });
        continue;
      }
      detail::by_isa(isa, [&](auto isa_tag) {
        gru_reset_before_backward_zn(isa_tag, w, H, da, dhb, gates + row * G + u0, hp, dy_out);
      });
    }
    barrier();
    kernels::gemm_packed_cols<T>(rows, u0, u1, da_t + 2 * H, ld, w_n_p, drh, H, false);
    for (i64 b = 0; b < rows; ++b) {
      if (!step_active(a.lengths, b, t)) continue;
      const i64 row = t * B + b;
      const T* r = gates + row * G + u0;
      const T* hp = hp_c + ((t - c.t0) * B + b) * H + u0;
      const T* g = drh + b * H + u0;
      T* da = da_t + b * ld + u0;
      T* dhb = a.dh + b * H + u0;
      if (a.options != nullptr) {
        const T* pre = a.saved.pre + row * a.saved.ld_pre + u0;
        for (i64 j = 0; j < w; ++j) {
          da[j] = g[j] * hp[j];  // dL/dr
          dhb[j] += g[j] * r[j];
        }
        detail::for_each_variant_chunk(w, [&](i64 j, i64 m) {
          T tmp[detail::kVariantChunk];
          detail::backprop_gate(a.options->act[0], a.options->clip, m, pre + j, r + j, da + j,
                                da + j, tmp);
        });
        continue;
      }
      detail::by_isa(isa, [&](auto isa_tag) {
        gru_reset_before_backward_r(isa_tag, w, da, dhb, r, hp, g);
      });
    }
  }

  void step_dh(Slice s, i64, i64 t, i64 rows, const TimeChunk& c) const {
    const T* da_t = a.dgates + (t - c.t0) * d.B * a.ld_dgates;
    kernels::gemm_packed_cols<T>(rows, s.u0, s.u1, da_t, a.ld_dgates, w_rz_p, a.dh, d.H, true);
  }

  void end_chunk(const TimeChunk& c, bool first, const detail::ActiveRows& active) {
    const i64 H = d.H, row0 = c.t0 * d.B;
    detail::chunk_gemm_tn<T>(2 * H, H, a.dgates, a.ld_dgates, hp_c, H, a.g.dw_hh, H, !first, c, d,
                             active);
    detail::chunk_gemm_tn<T>(H, H, a.dgates + 2 * H, a.ld_dgates, a.saved.reset_h + row0 * H, H,
                             a.g.dw_hh + 2 * H * H, H, !first, c, d, active);
  }
};

template <typename T>
void backward(const BackwardArgs<T>& a, const Dims& d) {
  GruResetBeforeBackward<T> cell(a, d);
  detail::backward_loop(cell, a, d);
}

}  // namespace

template <typename T>
CellOps<T> gru_reset_before_ops() {
  return {&forward<T>, &backward<T>, &detail::gru_work_size};
}

template CellOps<float> gru_reset_before_ops<float>();
template CellOps<double> gru_reset_before_ops<double>();

}  // namespace rnnkit
