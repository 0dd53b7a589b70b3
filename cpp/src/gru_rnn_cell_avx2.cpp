// The GRU and RNN forward cells over AVX2 registers (see cells_avx2.h):
// gru_rnn_cell_vec.h over vector_math_avx2.h.
#include "cells_avx2.h"
#include "gru_rnn_cell_vec.h"
#include "vector_math_avx2.h"

namespace rnnkit::detail {

RNNKIT_DEFINE_GRU_RNN_CELLS(Avx2, float, kernels::detail::avx2::vec::F32)
RNNKIT_DEFINE_GRU_RNN_CELLS(Avx2, double, kernels::detail::avx2::vec::F64)

}  // namespace rnnkit::detail
