// The GRU (both reset kinds) and RNN forward cells over vector registers (see
// vector_cells.h), for any vector ISA: templates over the ISA's operations struct O
// (vector_math.h), instantiated by vector_cells_avx2.cpp and vector_cells_avx512.cpp.
// Each element goes through the operations of the portable loops they replace (gru.cpp,
// gru_reset_before.cpp, gru_common.h gru_blend, rnn.cpp), in the same order, each value
// rounded as there (a product and a sum are never fused); every lane runs the same code,
// so the bits depend neither on O nor on an element's position.
#pragma once
#include <cstdint>

#include "vec_rows.h"
#include "vector_math.h"

namespace rnnkit::detail::vec_cells {

using i64 = std::int64_t;

// p + j, or nullptr for an absent operand. (Every function here depends on O: see
// kernels_isa.h on units compiled for different ISAs.)
template <class O, typename T>
inline T* at(T* p, i64 j) {
  return p != nullptr ? p + j : nullptr;
}

// r and z on one register of units: a's blocks 0 and 1 (H apart) read as pre-activations,
// plus bias (2 blocks H apart, or nullptr), plus hw (2 blocks H apart: h W_{hr,hz}^T for
// reset-before, or nullptr), written as sigmoid. Returns r.
template <class O>
inline typename O::V gru_rz_lanes(i64 H, typename O::T* a, const typename O::T* bias,
                                  const typename O::T* hw) {
  using V = typename O::V;
  using kernels::detail::vec_math::sigmoid_v;
  V pre[2];
  for (int q = 0; q < 2; ++q) {
    pre[q] = O::load(a + q * H);
    if (bias != nullptr) pre[q] = O::add(pre[q], O::load(bias + q * H));
    if (hw != nullptr) pre[q] = O::add(pre[q], O::load(hw + q * H));
  }
  const V r = sigmoid_v<O>(pre[0]);
  O::store(a, r);
  O::store(a + H, sigmoid_v<O>(pre[1]));
  return r;
}

// n and h_t on one register: a's block 2 read as n's pre-activation plus bias_n (or
// nullptr) plus `term` (r * (h W_hn^T + b_hn) or (r * h) W_hn^T), written n = tanh(.);
// z read from a's block 1; hp read: h_{t-1}; h, y written (1 - z) * n + z * h_{t-1}.
template <class O>
inline void gru_n_blend_lanes(i64 H, typename O::T* a, const typename O::T* bias_n,
                              typename O::V term, const typename O::T* hp, typename O::T* h,
                              typename O::T* y) {
  using V = typename O::V;
  using kernels::detail::vec_math::tanh_v;
  V pre = O::load(a + 2 * H);
  if (bias_n != nullptr) pre = O::add(pre, O::load(bias_n));
  const V n = tanh_v<O>(O::add(pre, term));
  O::store(a + 2 * H, n);
  const V z = O::load(a + H);
  const V hv = O::add(O::mul(O::sub(O::set(1), z), n), O::mul(z, O::load(hp)));
  O::store(h, hv);
  O::store(y, hv);
}

// Reset-after's second pass on one register (arguments as gru_cell's, at the register's
// first unit): ghn + b_hn kept, then n and h_t.
template <class O>
inline void gru_after_n_lanes(i64 H, typename O::T* a, const typename O::T* bias,
                              const typename O::T* ghn, const typename O::T* b_hn,
                              typename O::T* kept_ghn, const typename O::T* hp,
                              typename O::T* h, typename O::T* y) {
  using V = typename O::V;
  V g = O::load(ghn);
  if (b_hn != nullptr) g = O::add(g, O::load(b_hn));
  if (kept_ghn != nullptr) O::store(kept_ghn, g);
  gru_n_blend_lanes<O>(H, a, at<O>(bias, 2 * H), O::mul(O::load(a), g), hp, h, y);
}

// GRU reset-after, units [0, n) of one active row (arguments as in vector_cells.h).
template <class O>
void gru_cell(i64 n, i64 H, typename O::T* a, const typename O::T* bias,
              const typename O::T* ghn, const typename O::T* b_hn, typename O::T* kept_ghn,
              const typename O::T* hp, typename O::T* h, typename O::T* y) {
  using T = typename O::T;
  // Two passes, r and z then the rest, as lstm_cell_vec.h: short independent chains.
  const RowBuffer<T> rz[2] = {written<O>(a, 2), read_only<O>(bias, 2)};
  row_pass<O>(n, H, rz, [](i64 S, T* const (&p)[2]) { gru_rz_lanes<O>(S, p[0], p[1], nullptr); });
  const RowBuffer<T> rest[8] = {written<O>(a, 3),  read_only<O>(bias, 3), read_only<O>(ghn),
                                read_only<O>(b_hn), written<O>(kept_ghn), read_only<O>(hp),
                                written<O>(h),      written<O>(y)};
  row_pass<O>(n, H, rest, [](i64 S, T* const (&p)[8]) {
    const auto [a, bias, ghn, b_hn, kept_ghn, hp, h, y] = p;
    gru_after_n_lanes<O>(S, a, bias, ghn, b_hn, kept_ghn, hp, h, y);
  });
}

// GRU reset-before, the step's first half on units [0, n) of one active row (arguments
// as in vector_cells.h): r, z, then r * h_{t-1}.
template <class O>
void gru_before_gates(i64 n, i64 H, typename O::T* a, const typename O::T* bias,
                      const typename O::T* hw, const typename O::T* hp, typename O::T* rh) {
  using T = typename O::T;
  const RowBuffer<T> buf[5] = {written<O>(a, 2), read_only<O>(bias, 2), read_only<O>(hw, 2),
                               read_only<O>(hp), written<O>(rh)};
  row_pass<O>(n, H, buf, [](i64 S, T* const (&p)[5]) {
    const auto [a, bias, hw, hp, rh] = p;
    O::store(rh, O::mul(gru_rz_lanes<O>(S, a, bias, hw), O::load(hp)));
  });
}

// GRU reset-before, the step's second half (after (r * h) W_hn^T): n and h_t.
template <class O>
void gru_before_finish(i64 n, i64 H, typename O::T* a, const typename O::T* bias_n,
                       const typename O::T* hw_n, const typename O::T* hp, typename O::T* h,
                       typename O::T* y) {
  using T = typename O::T;
  // a's z and n blocks are read (a padded tail copies blocks 0 to 2).
  const RowBuffer<T> buf[6] = {written<O>(a, 3), read_only<O>(bias_n), read_only<O>(hw_n),
                               read_only<O>(hp), written<O>(h),        written<O>(y)};
  row_pass<O>(n, H, buf, [](i64 S, T* const (&p)[6]) {
    const auto [a, bias_n, hw_n, hp, h, y] = p;
    gru_n_blend_lanes<O>(S, a, bias_n, O::load(hw_n), hp, h, y);
  });
}

// The RNN's activation of one register: tanh, or ReLU (x < 0 ? 0 : x; NaN passes).
template <class O, bool kRelu>
inline typename O::V rnn_activation(typename O::V x) {
  if constexpr (kRelu) {
    const typename O::V zero = O::set(0);
    return O::blend(x, zero, O::lt(x, zero));
  } else {
    return kernels::detail::vec_math::tanh_v<O>(x);
  }
}

// The RNN, units [0, n) of one active row (arguments as in vector_cells.h; y may be a).
template <class O, bool kRelu>
void rnn_cell(i64 n, typename O::T* a, const typename O::T* bias, typename O::T* h,
              typename O::T* y) {
  using T = typename O::T;
  using V = typename O::V;
  const RowBuffer<T> buf[4] = {written<O>(a), read_only<O>(bias), written<O>(h), written<O>(y)};
  row_pass<O>(n, n, buf, [](i64, T* const (&p)[4]) {
    const auto [a, bias, h, y] = p;
    V x = O::load(a);
    if (bias != nullptr) x = O::add(x, O::load(bias));
    x = rnn_activation<O, kRelu>(x);
    O::store(a, x);
    O::store(h, x);
    O::store(y, x);
  });
}

}  // namespace rnnkit::detail::vec_cells

// Defines the cells of vector_cells.h for element type T over operations struct O, in the
// enclosing namespace for the ISA tag TAG (vector_cells_avx2.cpp, vector_cells_avx512.cpp).
#define RNNKIT_DEFINE_GRU_RNN_CELLS(TAG, T, O)                                              \
  void gru_cell(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias, const T* ghn,     \
                const T* b_hn, T* kept_ghn, const T* hp, T* h, T* y) {                      \
    vec_cells::gru_cell<O>(n, H, a, bias, ghn, b_hn, kept_ghn, hp, h, y);                   \
  }                                                                                         \
  void gru_before_gates(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias, const T* hw, \
                        const T* hp, T* rh) {                                               \
    vec_cells::gru_before_gates<O>(n, H, a, bias, hw, hp, rh);                              \
  }                                                                                         \
  void gru_before_finish(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias_n,        \
                         const T* hw_n, const T* hp, T* h, T* y) {                          \
    vec_cells::gru_before_finish<O>(n, H, a, bias_n, hw_n, hp, h, y);                       \
  }                                                                                         \
  void rnn_cell(TAG, std::int64_t n, T* a, const T* bias, bool relu, T* h, T* y) {          \
    if (relu) {                                                                             \
      vec_cells::rnn_cell<O, true>(n, a, bias, h, y);                                       \
    } else {                                                                                \
      vec_cells::rnn_cell<O, false>(n, a, bias, h, y);                                      \
    }                                                                                       \
  }
