// The backward elementwise passes of the cells over vector registers (see vector_cells.h),
// for any vector ISA: templates over the ISA's operations struct O (vector_math.h),
// instantiated by vector_cells_avx2.cpp and vector_cells_avx512.cpp. Each runs the
// portable loop it replaces (named at each pass) with the same operations in the same
// order per element, none contracted (those units compile with -ffp-contract=off), so
// an element's bits depend neither on O nor on the ISA.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "vector_math.h"

namespace rnnkit::detail::vec_cells {

using i64 = std::int64_t;

// One buffer of a row pass: p at the row's first unit (nullptr: not used), `blocks`
// blocks of units H apart; `written` ones are copied back from a padded tail.
template <typename T>
struct RowBuffer {
  T* p;
  int blocks;
  bool written;
};
// A buffer the pass only reads (its pointer is never written through).
template <typename T>
RowBuffer<T> read_only(const T* p, int blocks = 1) {
  return {const_cast<T*>(p), blocks, false};
}
// A buffer the pass writes (and may read first).
template <typename T>
RowBuffer<T> written(T* p, int blocks = 1) {
  return {p, blocks, true};
}

// Calls lanes(stride, p) for each register of units [0, n): p[k] is buffer k's pointer
// at the register's first unit (nullptr where buffer k's is), its blocks `stride` apart.
// The last m < L units go through padded copies (blocks L apart, the other lanes 0):
// lane by lane the same operations, so the same bits as a full register.
template <class O, std::size_t K, class Lanes>
void row_pass(i64 n, i64 H, const std::array<RowBuffer<typename O::T>, K>& buf,
              const Lanes& lanes) {
  using T = typename O::T;
  constexpr int L = O::L;
  std::array<T*, K> p;
  i64 j = 0;
  for (; j + L <= n; j += L) {
    for (std::size_t k = 0; k < K; ++k) p[k] = buf[k].p != nullptr ? buf[k].p + j : nullptr;
    lanes(H, p);
  }
  if (j == n) return;
  const i64 m = n - j;
  alignas(64) T pad[K][4 * L] = {};  // (blocks, L) per buffer: 4 blocks at most
  for (std::size_t k = 0; k < K; ++k) {
    p[k] = buf[k].p != nullptr ? pad[k] : nullptr;
    if (p[k] == nullptr) continue;
    for (int q = 0; q < buf[k].blocks; ++q) {
      for (i64 u = 0; u < m; ++u) pad[k][q * L + u] = buf[k].p[q * H + j + u];
    }
  }
  lanes(i64(L), p);
  for (std::size_t k = 0; k < K; ++k) {
    if (!buf[k].written || buf[k].p == nullptr) continue;
    for (int q = 0; q < buf[k].blocks; ++q) {
      for (i64 u = 0; u < m; ++u) buf[k].p[q * H + j + u] = pad[k][q * L + u];
    }
  }
}

// The LSTM's (lstm_cell_plain.h lstm_backward_row; arguments as in vector_cells.h), the
// bias gradient's db += da in the same pass.
template <class O>
void lstm_backward_row(i64 n, i64 H, typename O::T* da, typename O::T* dh, typename O::T* dc,
                       const typename O::T* a, const typename O::T* tc,
                       const typename O::T* cp, const typename O::T* dy_out,
                       typename O::T* db) {
  using T = typename O::T;
  using V = typename O::V;
  const std::array<RowBuffer<T>, 8> buf = {
      written(da, 4), written(dh), written(dc), read_only(a, 4), read_only(tc),
      read_only(cp),  read_only(dy_out), written(db, 4)};
  row_pass<O>(n, H, buf, [](i64 S, const std::array<T*, 8>& p) {
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
  const std::array<RowBuffer<T>, 8> buf = {
      written(da, 3),  written(dah, 3), written(dahn),  written(dh),
      read_only(a, 3), read_only(hp),   read_only(ghn), read_only(dy_out)};
  row_pass<O>(n, H, buf, [](i64 S, const std::array<T*, 8>& p) {
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
  const std::array<RowBuffer<T>, 5> buf = {written(da + H, 2), written(dh),
                                           read_only(a + H, 2), read_only(hp),
                                           read_only(dy_out)};
  row_pass<O>(n, H, buf, [](i64 S, const std::array<T*, 5>& p) {
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
  const std::array<RowBuffer<T>, 5> buf = {written(dar), written(dh), read_only(r),
                                           read_only(hp), read_only(drh)};
  row_pass<O>(n, n, buf, [](i64, const std::array<T*, 5>& p) {
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
  const std::array<RowBuffer<T>, 4> buf = {written(da), written(dh), read_only(y),
                                           read_only(dy_out)};
  row_pass<O>(n, n, buf, [](i64, const std::array<T*, 4>& p) {
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
  void lstm_backward_row(TAG, i64 n, i64 H, T* da, T* dh, T* dc, const T* a, const T* tc,    \
                         const T* cp, const T* dy_out, T* db) {                              \
    vec_cells::lstm_backward_row<O>(n, H, da, dh, dc, a, tc, cp, dy_out, db);                \
  }                                                                                          \
  void gru_backward_row(TAG, i64 n, i64 H, T* da, T* dah, T* dahn, T* dh, const T* a,        \
                        const T* hp, const T* ghn, const T* dy_out) {                        \
    vec_cells::gru_backward_row<O>(n, H, da, dah, dahn, dh, a, hp, ghn, dy_out);             \
  }                                                                                          \
  void gru_reset_before_backward_zn(TAG, i64 n, i64 H, T* da, T* dh, const T* a,             \
                                    const T* hp, const T* dy_out) {                          \
    vec_cells::gru_reset_before_backward_zn<O>(n, H, da, dh, a, hp, dy_out);                 \
  }                                                                                          \
  void gru_reset_before_backward_r(TAG, i64 n, T* dar, T* dh, const T* r, const T* hp,       \
                                   const T* drh) {                                           \
    vec_cells::gru_reset_before_backward_r<O>(n, dar, dh, r, hp, drh);                       \
  }                                                                                          \
  void rnn_backward_row(TAG, i64 n, bool relu, T* da, T* dh, const T* y, const T* dy_out) {  \
    if (relu) {                                                                              \
      vec_cells::rnn_backward_row<O, true>(n, da, dh, y, dy_out);                            \
    } else {                                                                                 \
      vec_cells::rnn_backward_row<O, false>(n, da, dh, y, dy_out);                           \
    }                                                                                        \
  }
