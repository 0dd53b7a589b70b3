// LSTM cell, forward and backward (see lstm.h).
#include "rnnkit/lstm.h"

#include <algorithm>

#include "cell_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"

namespace rnnkit {

using detail::for_each_item;
using detail::i64;
using detail::time_at;

template <typename T>
void lstm_forward(T* out, T* h, T* c, T* gates, T* h_prev, T* c_prev, T* tanh_c, T* work,
                  const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                  const std::int64_t* lengths, const Dims& d) {
  const i64 B = d.B, H = d.H, G = 4 * H;
  const bool training = h_prev != nullptr;
  // The biases are added in the step (where the row is in cache anyway), not in a pass
  // over all T*B rows of the projection.
  detail::input_projection<T>(gates, x, w_ih, nullptr, nullptr, 0, G, d);  // (T*B, 4H)
  T* scratch = work;           // (B, H): tanh(c_t) at inference
  T* bias = work + B * H;      // (4H,): b_ih + b_hh
  const bool has_bias = b_ih != nullptr || b_hh != nullptr;
  for (i64 j = 0; j < G && has_bias; ++j) {
    bias[j] = (b_ih != nullptr ? b_ih[j] : T(0)) + (b_hh != nullptr ? b_hh[j] : T(0));
  }
  kernels::PackedB<T> w_hh_p;  // W_hh^T (H, 4H), packed once for every step
  w_hh_p.pack_nt(G, H, w_hh, H);
  for (i64 n = 0; n < d.T; ++n) {
    const i64 t = time_at(n, d);
    if (training) {
      std::copy(h, h + B * H, h_prev + t * B * H);
      std::copy(c, c + B * H, c_prev + t * B * H);
    }
    T* g_t = gates + t * B * G;
    // The pre-activations accumulate h W_hh^T in place (rows of inactive steps too: their
    // gates are never read).
    kernels::gemm_packed<T>(B, h, H, w_hh_p, g_t, G, true);
    T* out_t = out + t * B * d.ldo;
    for_each_item(B, G, [&](i64 b) {
      T* y = out_t + b * d.ldo;
      if (!step_active(lengths, b, t)) {
        std::fill(y, y + H, T(0));  // h and c keep their values
        return;
      }
      T* a = g_t + b * G;  // pre-activations, then [i, f, g, o]
      if (has_bias) {
        for (i64 j = 0; j < G; ++j) a[j] += bias[j];
      }
      kernels::sigmoid(2 * H, a, a);  // i, f
      kernels::tanh(H, a + 2 * H, a + 2 * H);
      kernels::sigmoid(H, a + 3 * H, a + 3 * H);
      const T* i = a;
      const T* f = a + H;
      const T* g = a + 2 * H;
      const T* o = a + 3 * H;
      T* cb = c + b * H;
      T* hb = h + b * H;
      T* tc = training ? tanh_c + (t * B + b) * H : scratch + b * H;  // (H,): tanh(c_t)
      for (i64 j = 0; j < H; ++j) cb[j] = f[j] * cb[j] + i[j] * g[j];
      kernels::tanh(H, cb, tc);
      for (i64 j = 0; j < H; ++j) hb[j] = o[j] * tc[j];
      std::copy(hb, hb + H, y);
    });
  }
}

namespace {

// One row of one step of the backward. Restrict-qualified parameters (the buffers never
// overlap) let the compiler vectorise the loop: it gives up on run-time alias checks for
// this many pointers.
//   da (4H,) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (H,) read as dL/dh_t from later steps, written 0 (the step's GEMM adds dA W_hh).
//   dc (H,) read as dL/dc_t from later steps, written dL/dc_{t-1}.
//   a (4H,) read: [i, f, g, o]. tc (H,) read: tanh(c_t). cp (H,) read: c_{t-1}.
//   dy_out (H,) read: dL/dout_t.
template <typename T>
void backward_row(i64 H, T* __restrict da, T* __restrict dh, T* __restrict dc,
                  const T* __restrict a, const T* __restrict tc, const T* __restrict cp,
                  const T* __restrict dy_out) {
  for (i64 j = 0; j < H; ++j) {
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

template <typename T>
void lstm_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dc, T* dgates,
                   const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                   const T* h_prev, const T* c_prev, const T* tanh_c,
                   const std::int64_t* lengths, const Dims& d, bool accumulate_dx) {
  const i64 B = d.B, H = d.H, G = 4 * H;
  kernels::PackedB<T> w_hh_p;  // W_hh (4H, H), packed once for every step
  w_hh_p.pack_nn(G, H, w_hh, H);
  for (i64 n = d.T - 1; n >= 0; --n) {
    const i64 t = time_at(n, d);
    T* da_t = dgates + t * B * G;
    const T* dout_t = dout + t * B * d.ldo;
    for_each_item(B, G, [&](i64 b) {
      T* da = da_t + b * G;
      if (!step_active(lengths, b, t)) {
        std::fill(da, da + G, T(0));  // dh, dc pass through unchanged
        return;
      }
      const i64 row = t * B + b;
      backward_row(H, da, dh + b * H, dc + b * H, gates + row * G, tanh_c + row * H,
                   c_prev + row * H, dout_t + b * d.ldo);
    });
    kernels::gemm_packed<T>(B, da_t, G, w_hh_p, dh, H, true);
  }
  detail::input_backward(dx, dw_ih, db_ih, dgates, x, w_ih, G, d, accumulate_dx);
  kernels::gemm_tn<T>(G, H, d.T * B, dgates, G, h_prev, H, dw_hh, H, false);
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
