// Elman RNN cell, forward and backward (see rnn.h), as the per-step code of the time
// loops of cell_loop.h.
#include "rnnkit/rnn.h"

#include <algorithm>

#include "by_isa.h"
#include "cell_loop.h"
#include "cell_variants.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "vector_cells.h"

namespace rnnkit {

using detail::i64;
using detail::Slice;
using detail::TimeChunk;

namespace {

// Scratch (rnn_work_size): the forward's second h (B, H) and bias (H,); the backward's
// dA and h0 rows of the sequences that start in a chunk, (B, H) each.
std::int64_t rnn_work_size(const Dims& d) { return 2 * d.B * d.H + d.H; }

// The forward's per-step code. The pre-activations, then h_t, are in keep.gates (ld H)
// and copied to out, or in out itself when no gates are kept.
template <typename T, bool kRelu>
struct RnnForward {
  static constexpr i64 kGates = 1;
  const ForwardArgs<T>& a;
  const Dims& d;
  T* pre;      // (T, B, ld_pre): pre-activations, then h_t
  i64 ld_pre;
  T* bias;     // (H,): b_ih + b_hh, or nullptr
  // the fused cell's (by_isa.h); plain with cell options (they run the portable loops)
  kernels::Isa cell_isa = kernels::Isa::plain;
  detail::PackedOrOwn<T> w_hh_p;  // W_hh^T (H, H), packed once for every step

  RnnForward(const ForwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), pre(a.keep.gates != nullptr ? a.keep.gates : a.out),
        ld_pre(a.keep.gates != nullptr ? d.H : d.ldo), bias(a.work + d.B * d.H) {
    if (!detail::step_bias(bias, a.w.b_ih, a.w.b_hh, d.H, d.H)) bias = nullptr;
    w_hh_p.pack_nt(a.w.w_hh_packed, d.H, d.H, a.w.w_hh, d.H);
    if (a.options == nullptr) cell_isa = kernels::current_isa();
  }

  template <class Barrier>
  void step(Slice s, i64 t, i64 rows, const T* hp, T* hn, const Barrier&) const {
    const i64 B = d.B, H = d.H, u0 = s.u0, w = s.u1 - s.u0;
    T* g_t = pre + t * B * ld_pre;
    // The pre-activations of this thread's units accumulate h W_hh^T in place, on the
    // first `rows` rows (inactive rows there too: they are zeroed below).
    kernels::gemm_packed_cols<T>(rows, u0, s.u1, hp, H, w_hh_p, g_t, ld_pre, true);
    T* out_t = a.out + t * B * d.ldo;
    for (i64 b = 0; b < B; ++b) {
      T* y = out_t + b * d.ldo + u0;
      T* act = g_t + b * ld_pre + u0;  // pre-activation, then h_t
      const T* hpb = hp + b * H + u0;
      T* hnb = hn + b * H + u0;
      if (!step_active(a.lengths, b, t)) {
        std::copy(hpb, hpb + w, hnb);  // h keeps its value
        std::fill(act, act + w, T(0));  // the backward reads act as h_{t-1}
        if (act != y) std::fill(y, y + w, T(0));
        continue;
      }
      const T* bias_u = bias != nullptr ? bias + u0 : nullptr;
      if (detail::by_vector_isa(cell_isa, [&](auto isa) {
            detail::rnn_cell(isa, w, act, bias_u, kRelu, hnb, y);
          })) {
        continue;
      }
      if (bias_u != nullptr) detail::add_to(w, act, bias_u);
      if (a.options != nullptr) {
        T* pre = a.keep.pre != nullptr ? a.keep.pre + (t * B + b) * a.keep.ld_pre + u0 : nullptr;
        detail::activate_gate(a.options->act[0], a.options->clip, w, act, pre);
      } else if (kRelu) {
        for (i64 j = 0; j < w; ++j) act[j] = act[j] < T(0) ? T(0) : act[j];  // NaN propagates
      } else {
        kernels::tanh(w, act, act);
      }
      std::copy(act, act + w, hnb);
      if (act != y) std::copy(act, act + w, y);
    }
  }
};

template <typename T, bool kRelu>
void forward(const ForwardArgs<T>& a, const Dims& d) {
  const RnnForward<T, kRelu> cell(a, d);
  detail::forward_loop(cell, a, a.work, d);
}

// dw_hh (H, H) written (accumulate = false) or added to: the chunk c's share of
// sum_t dA_t^T h_{t-1}. dgates (rows of c, ld_dgates) read, columns [0, H): dA of the
// chunk. hs (T, B, ld_hs) read, columns [0, H): h_t of every step, 0 in inactive rows.
// h0 (B, H) read. work (2*B*H) scratch.
//
// The state entering step t of sequence b is h at the previous step visited (t-1 forward,
// t+1 reverse) or h0 at the step where b starts (0 forward; lengths[b]-1 or T-1 reverse).
// Unlike the other cells (cell_loop.h chunk_h_prev) the RNN keeps no h_{t-1} and gathers
// none: one GEMM pairs every row of the chunk with hs shifted by one step (in the reverse
// direction a sequence's start row then meets an inactive row (0), which contributes
// nothing, and rows of inactive steps have dA = 0), and a second GEMM adds the start rows
// times h0 (gathered when lengths make the reverse starts differ).
template <typename T>
void hidden_weight_grad(T* dw_hh, bool accumulate, const T* dgates, i64 ld_dgates,
                        const T* hs, i64 ld_hs, const T* h0, T* work,
                        const std::int64_t* lengths, const Dims& d, const TimeChunk& c) {
  const i64 B = d.B, H = d.H;
  // Rows t in [s0, s1) of the chunk with an h_{t-1} in hs at row t + shift.
  const i64 shift = d.reverse ? 1 : -1;
  const i64 s0 = d.reverse ? c.t0 : std::max<i64>(c.t0, 1);
  const i64 s1 = d.reverse ? std::min(c.t1, d.T - 1) : c.t1;
  if (s1 > s0) {
    kernels::gemm_tn<T>(H, H, (s1 - s0) * B, dgates + (s0 - c.t0) * B * ld_dgates, ld_dgates,
                        hs + (s0 + shift) * B * ld_hs, ld_hs, dw_hh, H, accumulate);
    accumulate = true;
  }
  if (!d.reverse || lengths == nullptr) {  // every sequence starts at the same step
    const i64 start = d.reverse ? d.T - 1 : 0;
    if (start >= c.t0 && start < c.t1) {
      kernels::gemm_tn<T>(H, H, B, dgates + (start - c.t0) * B * ld_dgates, ld_dgates, h0, H,
                          dw_hh, H, accumulate);
    } else if (!accumulate) {
      std::fill(dw_hh, dw_hh + H * H, T(0));
    }
    return;
  }
  T* da_start = work;          // (B, H): dA at the start rows in this chunk
  T* h0_start = work + B * H;  // (B, H): h0 of those sequences
  i64 count = 0;
  for (i64 b = 0; b < B; ++b) {
    const i64 start = lengths[b] - 1;
    if (start < c.t0 || start >= c.t1) continue;
    const T* da = dgates + ((start - c.t0) * B + b) * ld_dgates;
    std::copy(da, da + H, da_start + count * H);
    std::copy(h0 + b * H, h0 + (b + 1) * H, h0_start + count * H);
    ++count;
  }
  if (count > 0) {
    kernels::gemm_tn<T>(H, H, count, da_start, H, h0_start, H, dw_hh, H, accumulate);
  } else if (!accumulate) {
    std::fill(dw_hh, dw_hh + H * H, T(0));
  }
}

// Units [0, n) of one row of one step of the backward at ISA plain, the reference of the
// vector copies (vector_cells.h; arguments as there). Restrict-qualified parameters (the
// buffers never overlap) let the compiler vectorise the loop. relu: the gradient is
// selected, not multiplied by a 0/1 mask, as torch's threshold_backward does: a NaN/Inf
// dy at a closed unit gives 0, a NaN output passes dy.
template <typename T>
void rnn_backward_row(detail::Plain, i64 n, bool relu, T* __restrict da, T* __restrict dh,
                      const T* __restrict y, const T* __restrict dy_out) {
  if (relu) {
    for (i64 j = 0; j < n; ++j) {
      da[j] = y[j] <= T(0) ? T(0) : dh[j] + dy_out[j];
      dh[j] = T(0);
    }
    return;
  }
  for (i64 j = 0; j < n; ++j) {
    da[j] = (dh[j] + dy_out[j]) * (T(1) - y[j] * y[j]);
    dh[j] = T(0);
  }
}

// The backward's per-step code. It reads h_t from saved.gates (ld_gates): the gates the
// forward kept, or its output, which holds the same values.
template <typename T, bool kRelu>
struct RnnBackward {
  static constexpr i64 kGates = 1;
  const BackwardArgs<T>& a;
  const Dims& d;
  T* db_ih;  // the chunk's bias sums: both biases enter the one pre-activation
  T* db_hh;
  i64 hh_cols;
  kernels::PackedB<T> w_hh_p;  // W_hh (H, H), packed once for every step
  kernels::Isa isa = kernels::current_isa();  // the elementwise pass's: by_isa.h

  RnnBackward(const BackwardArgs<T>& args, const Dims& dims)
      : a(args), d(dims), db_ih(a.g.db_ih), db_hh(a.g.db_hh), hh_cols(d.H) {
    w_hh_p.pack_nn(d.H, d.H, a.w.w_hh, d.H);
  }

  void begin_chunk(const TimeChunk&) {}

  // dA of this thread's units for every row; its units of dh are read (dL/dh_t from
  // later steps) and zeroed (step_dh adds dA W_hh).
  template <class Barrier>
  void step_da(Slice s, i64, i64 t, i64, const TimeChunk& c, const Barrier&) const {
    const i64 B = d.B, H = d.H, u0 = s.u0, w = s.u1 - s.u0;
    T* da_t = a.dgates + (t - c.t0) * B * a.ld_dgates;  // (B, ld_dgates): the step's rows
    const T* y_t = a.saved.gates + t * B * a.saved.ld_gates;
    const T* dout_t = a.dout + t * B * d.ldo;
    for (i64 b = 0; b < B; ++b) {
      T* da = da_t + b * a.ld_dgates + u0;
      if (!step_active(a.lengths, b, t)) {
        std::fill(da, da + w, T(0));  // dh passes through unchanged
        continue;
      }
      T* dhb = a.dh + b * H + u0;
      const T* y = y_t + b * a.saved.ld_gates + u0;
      const T* dy_out = dout_t + b * d.ldo + u0;
      if (a.options != nullptr) {
        const T* pre = a.saved.pre + (t * B + b) * a.saved.ld_pre + u0;
        for (i64 j = 0; j < w; ++j) {
          da[j] = dhb[j] + dy_out[j];  // dL/dh_t
          dhb[j] = T(0);
        }
        detail::for_each_variant_chunk(w, [&](i64 j, i64 m) {
          T tmp[detail::kVariantChunk];
          detail::backprop_gate(a.options->act[0], a.options->clip, m, pre + j, y + j, da + j,
                                da + j, tmp);
        });
        continue;
      }
      detail::by_isa(isa, [&](auto isa_tag) {
        rnn_backward_row(isa_tag, w, kRelu, da, dhb, y, dy_out);
      });
    }
  }

  void step_dh(Slice s, i64, i64 t, i64 rows, const TimeChunk& c) const {
    const T* da_t = a.dgates + (t - c.t0) * d.B * a.ld_dgates;
    kernels::gemm_packed_cols<T>(rows, s.u0, s.u1, da_t, a.ld_dgates, w_hh_p, a.dh, d.H, true);
  }

  void end_chunk(const TimeChunk& c, bool first, const detail::ActiveRows&) {
    hidden_weight_grad(a.g.dw_hh, !first, a.dgates, a.ld_dgates, a.saved.gates, a.saved.ld_gates,
                       a.saved.h0, a.work, a.lengths, d, c);
  }
};

template <typename T, bool kRelu>
void backward(const BackwardArgs<T>& a, const Dims& d) {
  RnnBackward<T, kRelu> cell(a, d);
  detail::backward_loop(cell, a, d);
}

}  // namespace

template <typename T>
CellOps<T> rnn_tanh_ops() {
  return {&forward<T, false>, &backward<T, false>, &rnn_work_size};
}

template <typename T>
CellOps<T> rnn_relu_ops() {
  return {&forward<T, true>, &backward<T, true>, &rnn_work_size};
}

template CellOps<float> rnn_tanh_ops<float>();
template CellOps<double> rnn_tanh_ops<double>();
template CellOps<float> rnn_relu_ops<float>();
template CellOps<double> rnn_relu_ops<double>();

}  // namespace rnnkit
