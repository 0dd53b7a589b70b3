// Elman RNN cell, forward and backward (see rnn.h).
//
// Threads: one team per time loop, in the backward one per chunk of steps (team.h). Per
// step a thread computes its units' columns of the GEMM and the activation (or its
// derivative) of its units for every row, and meets the others at one barrier.
#include "rnnkit/rnn.h"

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

std::int64_t rnn_backward_chunk_rows(const Dims& d) {
  return detail::backward_chunk_steps(d) * d.B;
}

template <typename T>
void rnn_forward(T* out, T* h, T* gates, T* work, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const std::int64_t* lengths, const Dims& d,
                 RnnActivation act) {
  const i64 B = d.B, H = d.H;
  // Pre-activations, then h_t: in gates (ld H) and copied to out, or in out itself.
  T* acts = gates != nullptr ? gates : out;
  const i64 ld = gates != nullptr ? H : d.ldo;
  const detail::InputProjection<T> projection(acts, ld, x, w_ih, 1, d);  // (T*B, H)
  T* bias = work + B * H;  // (H,): b_ih + b_hh, or unused
  const bool has_bias = detail::step_bias(bias, b_ih, b_hh, H, H);
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, H), packed once for every step
  w_hh_p.pack_nt(H, H, w_hh, H);
  // h is double buffered so that one barrier per step suffices: step n's GEMM reads all
  // units of hbuf[n % 2] (h_{t-1}) while each thread writes its units of h_t into
  // hbuf[(n + 1) % 2].
  T* hbuf[2] = {h, work};  // (B, H) each: the caller's h and work's first B*H
  run_team<T>(team_size<T>(B, H, H), H, [&](Slice s, auto barrier) {
    const i64 u0 = s.u0, w = s.u1 - s.u0;  // this thread's units
    for (i64 n = 0; n < d.T; ++n) {
      const i64 t = time_at(n, d);
      const T* hp = hbuf[n % 2];  // (B, H) read: h_{t-1}
      T* hn = hbuf[(n + 1) % 2];  // (B, H) written (this thread's units): h_t
      T* g_t = acts + t * B * ld;
      projection.before_step(n, u0, s.u1);  // x W_ih^T of this thread's units
      // The pre-activations of this thread's units accumulate h W_hh^T in place (rows of
      // inactive steps too: they are zeroed below).
      kernels::gemm_packed_cols<T>(B, u0, s.u1, hp, H, w_hh_p, g_t, ld, true);
      T* out_t = out + t * B * d.ldo;
      for (i64 b = 0; b < B; ++b) {
        T* y = out_t + b * d.ldo + u0;
        T* a = g_t + b * ld + u0;  // pre-activation, then h_t
        const T* hpb = hp + b * H + u0;
        T* hnb = hn + b * H + u0;
        if (!step_active(lengths, b, t)) {
          std::copy(hpb, hpb + w, hnb);  // h keeps its value
          std::fill(a, a + w, T(0));     // the backward reads a as h_{t-1}
          if (a != y) std::fill(y, y + w, T(0));
          continue;
        }
        if (has_bias) detail::add_to(w, a, bias + u0);
        if (act == RnnActivation::tanh) {
          kernels::tanh(w, a, a);
        } else {
          for (i64 j = 0; j < w; ++j) a[j] = a[j] < T(0) ? T(0) : a[j];  // NaN propagates
        }
        std::copy(a, a + w, hnb);
        if (a != y) std::copy(a, a + w, y);
      }
      barrier();
    }
    // After an odd number of steps h_n is in work: copy this thread's units back.
    if (d.T % 2 == 1) copy_units(B, H, s, work, h);
  });
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
  // Chunk after chunk of time steps (detail::chunk_of), in the order the backward visits
  // them: the chunk's steps on one team, then its non-recurrent products.
  for (i64 n_hi = d.T - 1; n_hi >= 0;) {
    const detail::TimeChunk c = detail::chunk_of(n_hi, steps, d);
    const i64 n_lo = n_hi - (c.t1 - c.t0) + 1;
    // Per step each thread computes dA of its units for every row (reading and zeroing
    // its units of dh), meets the others (dA_t is complete), then adds dA_t W_hh[:, u0:u1]
    // into its units of dh. One barrier per step suffices: the next step touches only the
    // thread's own units of dh and writes another step's rows of dgates.
    run_team<T>(team_size<T>(B, H, H), H, [&](Slice s, auto barrier) {
      const i64 u0 = s.u0, w = s.u1 - s.u0;
      for (i64 n = n_hi; n >= n_lo; --n) {
        const i64 t = time_at(n, d);
        T* da_t = dgates + (t - c.t0) * B * H;  // (B, H): this step's rows of the chunk
        const T* y_t = hs + t * B * ld_hs;
        const T* dout_t = dout + t * B * d.ldo;
        for (i64 b = 0; b < B; ++b) {
          T* da = da_t + b * H + u0;
          if (!step_active(lengths, b, t)) {
            std::fill(da, da + w, T(0));  // dh passes through unchanged
            continue;
          }
          T* dhb = dh + b * H + u0;
          const T* y = y_t + b * ld_hs + u0;
          const T* dy_out = dout_t + b * d.ldo + u0;
          for (i64 j = 0; j < w; ++j) {
            const T dy = dhb[j] + dy_out[j];
            // relu: the gradient is selected, not multiplied by a 0/1 mask, as torch's
            // threshold_backward does: a NaN/Inf dy at a closed unit gives 0, a NaN
            // output passes dy.
            da[j] = act == RnnActivation::tanh ? dy * (T(1) - y[j] * y[j])
                                               : (y[j] <= T(0) ? T(0) : dy);
            dhb[j] = T(0);  // the GEMM below adds dA W_hh
          }
        }
        barrier();
        kernels::gemm_packed_cols<T>(B, u0, s.u1, da_t, H, w_hh_p, dh, H, true);
      }
    });
    // The chunk's dA is complete: its share of dX, dW_ih, db_ih, db_hh and dW_hh (the
    // first chunk writes the weight gradients unless they are accumulated into).
    const bool first = c.first && !accumulate_dw;
    detail::input_backward_chunk(dx, dw_ih, db_ih, db_hh, H, dgates, x, w_ih, H, d, c, first,
                                 accumulate_dx);
    hidden_weight_grad(dw_hh, !first, dgates, hs, ld_hs, h0, work, lengths, d, c);
    n_hi = n_lo - 1;
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
