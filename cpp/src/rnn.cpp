// Elman RNN cell, forward and backward (see rnn.h).
#include "rnnkit/rnn.h"

#include <algorithm>

#include "cell_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"

namespace rnnkit {

using detail::for_each_item;
using detail::i64;
using detail::time_at;

std::int64_t rnn_backward_chunk_rows(const Dims& d) {
  return detail::backward_chunk_steps(d) * d.B;
}

template <typename T>
void rnn_forward(T* out, T* h, T* gates, T* work, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const std::int64_t* lengths, const Dims& d,
                 RnnActivation act) {
  const i64 B = d.B, H = d.H;
  static_cast<void>(work);  // the forward needs no scratch: the GEMM accumulates into gates
  // Pre-activations, then h_t: in gates (ld H) and copied to out, or in out itself.
  T* acts = gates != nullptr ? gates : out;
  const i64 ld = gates != nullptr ? H : d.ldo;
  if (gates != nullptr) {
    detail::input_projection(gates, x, w_ih, b_ih, b_hh, H, H, d);  // (T*B, H)
  } else {  // the same in out's columns: (T*B, H) with rows ldo apart
    const i64 rows = d.T * d.B;
    kernels::gemm_nt<T>(rows, H, d.I, x, d.I, w_ih, d.I, out, d.ldo, false);
    if (b_ih != nullptr || b_hh != nullptr) {
      for_each_item(rows, H, [&](i64 r) {
        T* a = out + r * d.ldo;
        if (b_ih != nullptr) {
          for (i64 j = 0; j < H; ++j) a[j] += b_ih[j];
        }
        if (b_hh != nullptr) {
          for (i64 j = 0; j < H; ++j) a[j] += b_hh[j];
        }
      });
    }
  }
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, H), packed once for every step
  w_hh_p.pack_nt(H, H, w_hh, H);
  for (i64 n = 0; n < d.T; ++n) {
    const i64 t = time_at(n, d);
    T* g_t = acts + t * B * ld;
    // The pre-activations accumulate h W_hh^T in place (rows of inactive steps too: they
    // are zeroed below).
    kernels::gemm_packed<T>(B, h, H, w_hh_p, g_t, ld, true);
    T* out_t = out + t * B * d.ldo;
    for_each_item(B, H, [&](i64 b) {
      T* y = out_t + b * d.ldo;
      T* a = g_t + b * ld;  // pre-activation, then h_t
      if (!step_active(lengths, b, t)) {
        std::fill(a, a + H, T(0));  // h keeps its value; the backward reads a as h_{t-1}
        if (a != y) std::fill(y, y + H, T(0));
        return;
      }
      if (act == RnnActivation::tanh) {
        kernels::tanh(H, a, a);
      } else {
        for (i64 j = 0; j < H; ++j) a[j] = a[j] < T(0) ? T(0) : a[j];  // NaN propagates
      }
      std::copy(a, a + H, h + b * H);
      if (a != y) std::copy(a, a + H, y);
    });
  }
}

namespace {

// dw_hh (H, H) written (accumulate = false) or added to: the chunk c's share of
// sum_t dA_t^T h_{t-1}. dgates (rows of c, H) read: dA of the chunk. hs (T, B, ld_hs)
// read, columns [0, H): h_t of every step, 0 in inactive rows. h0 (B, H) read. work
// (2*B*H) scratch.
//
// The state entering step t of sequence b is h at the previous step visited (t-1 forward,
// t+1 reverse) or h0 at the step where b starts (0 forward; lengths[b]-1 or T-1 reverse).
// One GEMM pairs every row of the chunk with hs shifted by one step: in the reverse
// direction a sequence's start row then meets an inactive row (0), which contributes
// nothing, and rows of inactive steps have dA = 0. A second GEMM adds the start rows times
// h0 (gathered when lengths make the reverse starts differ).
template <typename T>
void hidden_weight_grad(T* dw_hh, bool accumulate, const T* dgates, const T* hs, i64 ld_hs,
                        const T* h0, T* work, const std::int64_t* lengths, const Dims& d,
                        const detail::TimeChunk& c) {
  const i64 B = d.B, H = d.H;
  // Rows t in [s0, s1) of the chunk with an h_{t-1} in hs at row t + shift.
  const i64 shift = d.reverse ? 1 : -1;
  const i64 s0 = d.reverse ? c.t0 : std::max<i64>(c.t0, 1);
  const i64 s1 = d.reverse ? std::min(c.t1, d.T - 1) : c.t1;
  if (s1 > s0) {
    kernels::gemm_tn<T>(H, H, (s1 - s0) * B, dgates + (s0 - c.t0) * B * H, H,
                        hs + (s0 + shift) * B * ld_hs, ld_hs, dw_hh, H, accumulate);
    accumulate = true;
  }
  if (!d.reverse || lengths == nullptr) {  // every sequence starts at the same step
    const i64 start = d.reverse ? d.T - 1 : 0;
    if (start >= c.t0 && start < c.t1) {
      kernels::gemm_tn<T>(H, H, B, dgates + (start - c.t0) * B * H, H, h0, H, dw_hh, H,
                          accumulate);
    } else if (!accumulate) {
      std::fill(dw_hh, dw_hh + H * H, T(0));
    }
    return;
  }
  T* da_start = work;         // (B, H): dA at the start rows in this chunk
  T* h0_start = work + B * H;  // (B, H): h0 of those sequences
  i64 count = 0;
  for (i64 b = 0; b < B; ++b) {
    const i64 start = lengths[b] - 1;
    if (start < c.t0 || start >= c.t1) continue;
    const T* da = dgates + ((start - c.t0) * B + b) * H;
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

}  // namespace

template <typename T>
void rnn_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates, T* work,
                  const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* hs,
                  i64 ld_hs, const T* h0, const std::int64_t* lengths, const Dims& d,
                  RnnActivation act, bool accumulate_dx, bool accumulate_dw) {
  const i64 B = d.B, H = d.H;
  const i64 steps = detail::backward_chunk_steps(d);
  kernels::PackedB<T> w_hh_p;  // W_hh (H, H), packed once for every step
  w_hh_p.pack_nn(H, H, w_hh, H);
  for (i64 n = d.T - 1; n >= 0; --n) {
    const i64 t = time_at(n, d);
    const detail::TimeChunk c = detail::chunk_of(n, steps, d);
    T* da_t = dgates + (t - c.t0) * B * H;  // (B, H): this step's rows of the chunk
    const T* y_t = hs + t * B * ld_hs;
    const T* dout_t = dout + t * B * d.ldo;
    for_each_item(B, H, [&](i64 b) {
      T* da = da_t + b * H;
      if (!step_active(lengths, b, t)) {
        std::fill(da, da + H, T(0));  // dh passes through unchanged
        return;
      }
      T* dhb = dh + b * H;
      const T* y = y_t + b * ld_hs;
      const T* dy_out = dout_t + b * d.ldo;
      for (i64 j = 0; j < H; ++j) {
        const T dy = dhb[j] + dy_out[j];
        // relu: the gradient is selected, not multiplied by a 0/1 mask, as torch's
        // threshold_backward does: a NaN/Inf dy at a closed unit gives 0, a NaN output
        // passes dy.
        da[j] = act == RnnActivation::tanh ? dy * (T(1) - y[j] * y[j])
                                           : (y[j] <= T(0) ? T(0) : dy);
        dhb[j] = T(0);  // the GEMM below adds dA W_hh
      }
    });
    kernels::gemm_packed<T>(B, da_t, H, w_hh_p, dh, H, true);
    if (!c.done) continue;
    // The chunk's dA is complete: its share of dX, dW_ih, db_ih, db_hh and dW_hh (the
    // first chunk writes the weight gradients unless they are accumulated into).
    const bool first = c.first && !accumulate_dw;
    detail::input_backward_chunk(dx, dw_ih, db_ih, db_hh, H, dgates, x, w_ih, H, d, c, first,
                                 accumulate_dx);
    hidden_weight_grad(dw_hh, !first, dgates, hs, ld_hs, h0, work, lengths, d, c);
  }
}

#define RNNKIT_INSTANTIATE(T)                                                                 \
  template void rnn_forward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*,        \
                               const T*, const std::int64_t*, const Dims&, RnnActivation);    \
  template void rnn_backward<T>(T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*, const T*, \
                                const T*, const T*, std::int64_t, const T*,                   \
                                const std::int64_t*, const Dims&, RnnActivation, bool, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
