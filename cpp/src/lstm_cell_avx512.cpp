// The LSTM forward cell in one pass over AVX-512 registers (see cells_avx2.h):
// lstm_cell_vec.h over vector_math_avx512.h, the same bits as the AVX2 cell.
#include "cells_avx2.h"
#include "lstm_cell_vec.h"
#include "vector_math_avx512.h"

namespace rnnkit::detail {

using i64 = std::int64_t;
using kernels::detail::avx512::vec::F32;
using kernels::detail::avx512::vec::F64;

void lstm_cell(Avx512, i64 n, i64 H, float* a, const float* bias, float* c, float* tc,
               float* h, float* y) {
  vec_cells::lstm_cell<F32>(n, H, a, bias, c, tc, h, y);
}
void lstm_cell(Avx512, i64 n, i64 H, double* a, const double* bias, double* c, double* tc,
               double* h, double* y) {
  vec_cells::lstm_cell<F64>(n, H, a, bias, c, tc, h, y);
}

}  // namespace rnnkit::detail
