// The LSTM backward cell in one pass over AVX2 registers (see cells_avx2.h).
#include "cells_avx2.h"
#include "vector_math_avx2.h"

namespace rnnkit::detail::avx2 {

namespace {

using i64 = std::int64_t;
using kernels::detail::avx2::vec::F32;
using kernels::detail::avx2::vec::F64;

// One register of units (O::L lanes); the pointers and gate blocks (H apart) of
// lstm_backward_row. The arithmetic of lstm.cpp's backward_row, each product rounded in
// the same order (the intrinsics are not contracted: -ffp-contract=off), then db += da.
template <class O>
inline void lanes(i64 H, typename O::T* da, typename O::T* dh, typename O::T* dc,
                  const typename O::T* a, const typename O::T* tc, const typename O::T* cp,
                  const typename O::T* dy_out, typename O::T* db) {
  using V = typename O::V;
  const V one = O::set(1);
  const V i = O::load(a), f = O::load(a + H), g = O::load(a + 2 * H), o = O::load(a + 3 * H);
  const V t = O::load(tc);
  const V dy = dy_out != nullptr ? O::add(O::load(dh), O::load(dy_out)) : O::load(dh);
  const V dct = O::add(O::load(dc), O::mul(O::mul(dy, o), O::sub(one, O::mul(t, t))));
  V d[4];
  d[0] = O::mul(O::mul(O::mul(dct, g), i), O::sub(one, i));
  d[1] = O::mul(O::mul(O::mul(dct, O::load(cp)), f), O::sub(one, f));
  d[2] = O::mul(O::mul(dct, i), O::sub(one, O::mul(g, g)));
  d[3] = O::mul(O::mul(O::mul(dy, t), o), O::sub(one, o));
  for (int q = 0; q < 4; ++q) {
    O::store(da + q * H, d[q]);
    if (db != nullptr) O::store(db + q * H, O::add(O::load(db + q * H), d[q]));
  }
  O::store(dc, O::mul(dct, f));
  O::store(dh, O::zero());
}

template <class O>
void row(i64 n, i64 H, typename O::T* da, typename O::T* dh, typename O::T* dc,
         const typename O::T* a, const typename O::T* tc, const typename O::T* cp,
         const typename O::T* dy_out, typename O::T* db) {
  using T = typename O::T;
  constexpr int L = O::L;
  i64 j = 0;
  for (; j + L <= n; j += L) {
    lanes<O>(H, da + j, dh + j, dc + j, a + j, tc + j, cp + j,
             dy_out != nullptr ? dy_out + j : nullptr, db != nullptr ? db + j : nullptr);
  }
  if (j == n) return;
  // The last m < L units go through one padded register (gate blocks L apart): lane by
  // lane the same operations, so the same bits.
  const i64 m = n - j;
  alignas(32) T ta[4 * L] = {}, tda[4 * L], tdb[4 * L] = {}, tdh[L] = {}, tdc[L] = {},
                tt[L] = {}, tcp[L] = {}, tdy[L] = {};
  for (i64 k = 0; k < m; ++k) {
    for (int q = 0; q < 4; ++q) {
      ta[q * L + k] = a[q * H + j + k];
      if (db != nullptr) tdb[q * L + k] = db[q * H + j + k];
    }
    tdh[k] = dh[j + k];
    tdc[k] = dc[j + k];
    tt[k] = tc[j + k];
    tcp[k] = cp[j + k];
    if (dy_out != nullptr) tdy[k] = dy_out[j + k];
  }
  lanes<O>(L, tda, tdh, tdc, ta, tt, tcp, dy_out != nullptr ? tdy : nullptr,
           db != nullptr ? tdb : nullptr);
  for (i64 k = 0; k < m; ++k) {
    for (int q = 0; q < 4; ++q) {
      da[q * H + j + k] = tda[q * L + k];
      if (db != nullptr) db[q * H + j + k] = tdb[q * L + k];
    }
    dh[j + k] = tdh[k];
    dc[j + k] = tdc[k];
  }
}

}  // namespace

void lstm_backward_row(i64 n, i64 H, float* da, float* dh, float* dc, const float* a,
                       const float* tc, const float* cp, const float* dy_out, float* db) {
  row<F32>(n, H, da, dh, dc, a, tc, cp, dy_out, db);
}
void lstm_backward_row(i64 n, i64 H, double* da, double* dh, double* dc, const double* a,
                       const double* tc, const double* cp, const double* dy_out, double* db) {
  row<F64>(n, H, da, dh, dc, a, tc, cp, dy_out, db);
}

}  // namespace rnnkit::detail::avx2
