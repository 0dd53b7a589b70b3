// The GRU and RNN forward cells over AVX-512 registers (see cells_avx2.h):
// gru_rnn_cell_vec.h over vector_math_avx512.h, the same bits as the AVX2 cells.
#include "cells_avx2.h"
#include "gru_rnn_cell_vec.h"
#include "vector_math_avx512.h"

namespace rnnkit::detail {

RNNKIT_DEFINE_GRU_RNN_CELLS(Avx512, float, kernels::detail::avx512::vec::F32)
RNNKIT_DEFINE_GRU_RNN_CELLS(Avx512, double, kernels::detail::avx512::vec::F64)

}  // namespace rnnkit::detail
