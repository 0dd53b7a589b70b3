// Every pass of vector_cells.h over AVX-512 registers (compiled with -mavx512f -mavx2
// -mfma -ffp-contract=off): the forward cells (lstm_cell_vec.h, gru_rnn_cell_vec.h) and
// the backward passes (cell_backward_vec.h), each a template over vector_math_avx512.h's
// operations.
#include "cell_backward_vec.h"
#include "gru_rnn_cell_vec.h"
#include "lstm_cell_vec.h"
#include "vector_cells.h"
#include "vector_math_avx512.h"

namespace rnnkit::detail {

using kernels::detail::avx512::vec::F32;
using kernels::detail::avx512::vec::F64;

RNNKIT_DEFINE_LSTM_CELL(Avx512, float, F32)
RNNKIT_DEFINE_LSTM_CELL(Avx512, double, F64)
RNNKIT_DEFINE_GRU_RNN_CELLS(Avx512, float, F32)
RNNKIT_DEFINE_GRU_RNN_CELLS(Avx512, double, F64)
RNNKIT_DEFINE_BACKWARD_PASSES(Avx512, float, F32)
RNNKIT_DEFINE_BACKWARD_PASSES(Avx512, double, F64)

}  // namespace rnnkit::detail
