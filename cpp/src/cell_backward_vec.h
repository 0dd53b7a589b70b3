// The backward elementwise passes of the cells over vector registers (see vector_cells.h),
// for any vector ISA: templates over the ISA's operations struct O (vector_math.h),
// instantiated by vector_cells_avx2.cpp and vector_cells_avx512.cpp. Each runs the
// portable loop it replaces (named at each pass) with the same operations in the same
// order per element, none contracted (those units compile with -ffp-contract=off), so
// an element's bits depend neither on O nor on the ISA.
#pragma once
#include <cstdint>

#include "vec_rows.h"
#include "vector_math.h"

namespace rnnkit::detail::vec_cells {

using i64 = std::int64_t;

// The LSTM's (lstm_cell_plain.h lstm_backward_row; arguments as in vector_cells.h), the
// bias gradient's db += da in the same pass.
template <class O>
void lstm_backward_row(i64 n, i64 H, typename O::T* da, typename O::T* dh, typename O::T* dc,
                       const typename O::T* a, const typename O::T* tc,
                       const typename O::T* cp, const typename O::T* dy_out,
                       typename O::T* db) {
  using T = typename O::T;
  using V = typename O::V;
  const RowBuffer<T> buf[8] = {
      written<O>(da, 4), written<O>(dh), written<O>(dc), read_only<O>(a, 4), read_only<O>(tc),
      read_only<O>(cp),  read_only<O>(dy_out), written<O>(db, 4)};
  row_pass<O>(n, H, buf, [](i64 S, T* const (&p)[8]) {
    const auto [da, dh, dc, a, tc, cp, dy_out, db] = p;
    const V one = O::set(1);
    const V i = O::load(a), f = O::load(a + S), g = O::load(a + 2 * S), o = O::load(a + 3 * S);
    const V t = O::load(tc);
    const V dy = dy_out != nullptr ? O::add(O::load(dh), O::load(dy_out)) : O::load(dh);
    const V dct = O::add(O::load(dc), O::mul(O::mul(dy, o), O::sub(one, O::mul(t, t))));
    V d[4];
    d[0] = O::mul(O::mul(O::mul(dct, g), i), O::sub(one, i));
    d[1] = O::mul(O::mul(O::mul(dct, O::load(cp)), f), O::sub(one, f));
    d[2] = O::mul(O::mul(dct, i), O::sub(one, O::mul(g, g)));
    d[3] = O::mul(O::mul(O::mul(dy, t), o), O::sub(one, o));
    for (int q = 0; q < 4; ++q) {
      O::store(da + q * S, d[q]);
      if (db != nullptr) O::store(db + q * S, O::add(O::load(db + q * S), d[q]));
    }
    O::store(dc, O::mul(dct, f));
    O::store(dh, O::set(0));
  });
}

// The reset-after GRU's (gru.cpp backward_row; arguments as in vector_cells.h).
template <class O>
void gru_backward_row(i64 n, i64 H, typename O::T* da, typename O::T* dah,
                      typename O::T* dahn, typename O::T* dh, const typename O::T* a,
                      const typename O::T* hp, const typename O::T* ghn,
                      const typename O::T* dy_out) {
  using T = typename O::T;
  using V = typename O::V;
  const RowBuffer<T> buf[8] = {
      written<O>(da, 3),  written<O>(dah, 3), written<O>(dahn),  written<O>(dh),
      read_only<O>(a, 3), read_only<O>(hp),   read_only<O>(ghn), read_only<O>(dy_out)};
  row_pass<O>(n, H, buf, [](i64 S, T* const (&p)[8]) {
    const auto [da, dah, dahn, dh, a, hp, ghn, dy_out] = p;
    const V one = O::set(1);
    const V r = O::load(a), z = O::load(a + S), nn = O::load(a + 2 * S);
    const V dy = O::add(O::load(dh), O::load(dy_out));
    const V dan = O::mul(O::mul(dy, O::sub(one, z)), O::sub(one, O::mul(nn, nn)));
    const V dar = O::mul(O::mul(O::mul(dan, O::load(ghn)), r), O::sub(one, r));
    const V daz = O::mul(O::mul(O::mul(dy, O::sub(O::load(hp), nn)), z), O::sub(one, z));
    const V dahn_v = O::mul(dan, r);
    O::store(da, dar);
    O::store(da + S, daz);
    O::store(da + 2 * S, dan);
    O::store(dah, dar);
    O::store(dah + S, daz);
    O::store(dah + 2 * S, dahn_v);
    O::store(dahn, dahn_v);
    O::store(dh, O::mul(dy, z));
  });
}

// The reset-before GRU's first pass, z and n (gru_reset_before.cpp backward_zn;
// arguments as in vector_cells.h).
template <class O>
void gru_reset_before_backward_zn(i64 n, i64 H, typename O::T* da, typename O::T* dh,
                                  const typename O::T* a, const typename O::T* hp,
                                  const typename O::T* dy_out) {
  using T = typename O::T;
  using V = typename O::V;
  const RowBuffer<T> buf[5] = {written<O>(da + H, 2), written<O>(dh), read_only<O>(a + H, 2),
                               read_only<O>(hp), read_only<O>(dy_out)};
  row_pass<O>(n, H, buf, [](i64 S, T* const (&p)[5]) {
    const auto [daz, dh, az, hp, dy_out] = p;  // daz, az: the z block, then n's
    const V one = O::set(1);
    const V z = O::load(az), nn = O::load(az + S);
    const V dy = O::add(O::load(dh), O::load(dy_out));
    O::store(daz, O::mul(O::mul(O::mul(dy, O::sub(O::load(hp), nn)), z), O::sub(one, z)));
    O::store(daz + S, O::mul(O::mul(dy, O::sub(one, z)), O::sub(one, O::mul(nn, nn))));
    O::store(dh, O::mul(dy, z));
  });
}

// The reset-before GRU's second pass, r (gru_reset_before.cpp backward_r; arguments as
// in vector_cells.h).
template <class O>
void gru_reset_before_backward_r(i64 n, typename O::T* dar, typename O::T* dh,
                                 const typename O::T* r, const typename O::T* hp,
                                 const typename O::T* drh) {
  using T = typename O::T;
  using V = typename O::V;
  const RowBuffer<T> buf[5] = {written<O>(dar), written<O>(dh), read_only<O>(r),
                               read_only<O>(hp), read_only<O>(drh)};
  row_pass<O>(n, n, buf, [](i64, T* const (&p)[5]) {
    const auto [dar, dh, r, hp, drh] = p;
    const V rv = O::load(r), g = O::load(drh);
    O::store(dar, O::mul(O::mul(O::mul(g, O::load(hp)), rv), O::sub(O::set(1), rv)));
    O::store(dh, O::add(O::load(dh), O::mul(g, rv)));
  });
}

// The Elman RNN's (rnn.cpp backward_row; arguments as in vector_cells.h).
template <class O, bool kRelu>
void rnn_backward_row(i64 n, typename O::T* da, typename O::T* dh, const typename O::T* y,
                      const typename O::T* dy_out) {
  using T = typename O::T;
  using V = typename O::V;
  const RowBuffer<T> buf[4] = {written<O>(da), written<O>(dh), read_only<O>(y),
                               read_only<O>(dy_out)};
  row_pass<O>(n, n, buf, [](i64, T* const (&p)[4]) {
    const auto [da, dh, y, dy_out] = p;
    const V dy = O::add(O::load(dh), O::load(dy_out));
    const V yv = O::load(y);
    if constexpr (kRelu) {  // dy selected (not multiplied by a mask): le is false for NaN
      O::store(da, O::blend(dy, O::set(0), O::le(yv, O::set(0))));
    } else {
      O::store(da, O::mul(dy, O::sub(O::set(1), O::mul(yv, yv))));
    }
    O::store(dh, O::set(0));
  });
}

}  // namespace rnnkit::detail::vec_cells

// The passes declared in vector_cells.h for the ISA tag TAG, element type T and its
// operations O (each instantiating unit defines them for float and double).
#define RNNKIT_DEFINE_BACKWARD_PASSES(TAG, T, O)                                             \
  void lstm_backward_row(TAG, std::int64_t n, std::int64_t H, T* da, T* dh, T* dc,           \
                         const T* a, const T* tc, const T* cp, const T* dy_out, T* db) {     \
    vec_cells::lstm_backward_row<O>(n, H, da, dh, dc, a, tc, cp, dy_out, db);                \
  }                                                                                          \
  void gru_backward_row(TAG, std::int64_t n, std::int64_t H, T* da, T* dah, T* dahn,         \
                        T* dh, const T* a, const T* hp, const T* ghn, const T* dy_out) {     \
    vec_cells::gru_backward_row<O>(n, H, da, dah, dahn, dh, a, hp, ghn, dy_out);             \
  }                                                                                          \
  void gru_reset_before_backward_zn(TAG, std::int64_t n, std::int64_t H, T* da, T* dh,       \
                                    const T* a, const T* hp, const T* dy_out) {              \
    vec_cells::gru_reset_before_backward_zn<O>(n, H, da, dh, a, hp, dy_out);                 \
  }                                                                                          \
  void gru_reset_before_backward_r(TAG, std::int64_t n, T* dar, T* dh, const T* r,           \
                                   const T* hp, const T* drh) {                              \
    vec_cells::gru_reset_before_backward_r<O>(n, dar, dh, r, hp, drh);                       \
  }                                                                                          \
  void rnn_backward_row(TAG, std::int64_t n, bool relu, T* da, T* dh, const T* y,            \
                        const T* dy_out) {                                                   \
    if (relu) {                                                                              \
      vec_cells::rnn_backward_row<O, true>(n, da, dh, y, dy_out);                            \
    } else {                                                                                 \
      vec_cells::rnn_backward_row<O, false>(n, da, dh, y, dy_out);                           \
    }                                                                                        \
  }
