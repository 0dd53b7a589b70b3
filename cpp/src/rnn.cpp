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

template <typename T>
void rnn_forward(T* out, T* h, T* gates, T* h_prev, T* work, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const std::int64_t* lengths,
                 const Dims& d, RnnActivation act) {
  const i64 B = d.B, H = d.H;
  detail::input_projection(gates, x, w_ih, b_ih, b_hh, H, H, d);  // (T*B, H)
  static_cast<void>(work);  // rnn_work_size is 0: the step's GEMM accumulates into gates
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, H), packed once for every step
  w_hh_p.pack_nt(H, H, w_hh, H);
  for (i64 n = 0; n < d.T; ++n) {
    const i64 t = time_at(n, d);
    if (h_prev != nullptr) std::copy(h, h + B * H, h_prev + t * B * H);
    T* g_t = gates + t * B * H;
    // The pre-activations accumulate h W_hh^T in place (rows of inactive steps too: they
    // are never read).
    kernels::gemm_packed<T>(B, h, H, w_hh_p, g_t, H, true);
    T* out_t = out + t * B * d.ldo;
    for_each_item(B, H, [&](i64 b) {
      T* y = out_t + b * d.ldo;
      if (!step_active(lengths, b, t)) {
        std::fill(y, y + H, T(0));  // h keeps its value
        return;
      }
      T* a = g_t + b * H;  // pre-activation, then h_t
      if (act == RnnActivation::tanh) {
        kernels::tanh(H, a, a);
      } else {
        for (i64 j = 0; j < H; ++j) a[j] = a[j] < T(0) ? T(0) : a[j];  // NaN propagates
      }
      std::copy(a, a + H, h + b * H);
      std::copy(a, a + H, y);
    });
  }
}

template <typename T>
void rnn_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates,
                  const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                  const T* h_prev, const std::int64_t* lengths, const Dims& d,
                  RnnActivation act, bool accumulate_dx) {
  const i64 B = d.B, H = d.H;
  kernels::PackedB<T> w_hh_p;  // W_hh (H, H), packed once for every step
  w_hh_p.pack_nn(H, H, w_hh, H);
  for (i64 n = d.T - 1; n >= 0; --n) {
    const i64 t = time_at(n, d);
    T* da_t = dgates + t * B * H;
    const T* y_t = gates + t * B * H;
    const T* dout_t = dout + t * B * d.ldo;
    for_each_item(B, H, [&](i64 b) {
      T* da = da_t + b * H;
      if (!step_active(lengths, b, t)) {
        std::fill(da, da + H, T(0));  // dh passes through unchanged
        return;
      }
      T* dhb = dh + b * H;
      const T* y = y_t + b * H;
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
  }
  detail::input_backward(dx, dw_ih, db_ih, dgates, x, w_ih, H, d, accumulate_dx);
  kernels::gemm_tn<T>(H, H, d.T * B, dgates, H, h_prev, H, dw_hh, H, false);
  detail::copy_bias_grad(db_hh, db_ih, H);
}

#define RNNKIT_INSTANTIATE(T)                                                                 \
  template void rnn_forward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*,    \
                               const T*, const std::int64_t*, const Dims&, RnnActivation);    \
  template void rnn_backward<T>(T*, T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,     \
                                const T*, const T*, const T*, const std::int64_t*,            \
                                const Dims&, RnnActivation, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
