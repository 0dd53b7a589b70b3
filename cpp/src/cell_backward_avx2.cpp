// The cells' backward elementwise passes over AVX2 registers (see cells_avx2.h):
// cell_backward_vec.h over vector_math_avx2.h.
#include "cell_backward_vec.h"
#include "cells_avx2.h"
#include "vector_math_avx2.h"

namespace rnnkit::detail {

using i64 = std::int64_t;

using kernels::detail::avx2::vec::F32;
using kernels::detail::avx2::vec::F64;

// One definition per element type T and its operations O.
#define RNNKIT_DEFINE_BACKWARD_PASSES(T, O)                                                   \
  void lstm_backward_row(Avx2, i64 n, i64 H, T* da, T* dh, T* dc, const T* a, const T* tc,    \
                         const T* cp, const T* dy_out, T* db) {                              \
    vec_cells::lstm_backward_row<O>(n, H, da, dh, dc, a, tc, cp, dy_out, db);                \
  }                                                                                          \
  void gru_backward_row(Avx2, i64 n, i64 H, T* da, T* dah, T* dahn, T* dh, const T* a,        \
                        const T* hp, const T* ghn, const T* dy_out) {                        \
    vec_cells::gru_backward_row<O>(n, H, da, dah, dahn, dh, a, hp, ghn, dy_out);             \
  }                                                                                          \
  void gru_reset_before_backward_zn(Avx2, i64 n, i64 H, T* da, T* dh, const T* a,             \
                                    const T* hp, const T* dy_out) {                          \
    vec_cells::gru_reset_before_backward_zn<O>(n, H, da, dh, a, hp, dy_out);                 \
  }                                                                                          \
  void gru_reset_before_backward_r(Avx2, i64 n, T* dar, T* dh, const T* r, const T* hp,       \
                                   const T* drh) {                                           \
    vec_cells::gru_reset_before_backward_r<O>(n, dar, dh, r, hp, drh);                       \
  }                                                                                          \
  void rnn_backward_row(Avx2, i64 n, bool relu, T* da, T* dh, const T* y, const T* dy_out) {  \
    if (relu) {                                                                              \
      vec_cells::rnn_backward_row<O, true>(n, da, dh, y, dy_out);                            \
    } else {                                                                                 \
      vec_cells::rnn_backward_row<O, false>(n, da, dh, y, dy_out);                           \
    }                                                                                        \
  }
RNNKIT_DEFINE_BACKWARD_PASSES(float, F32)
RNNKIT_DEFINE_BACKWARD_PASSES(double, F64)
#undef RNNKIT_DEFINE_BACKWARD_PASSES

}  // namespace rnnkit::detail
