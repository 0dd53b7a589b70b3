// Internal: cell loops written with vector intrinsics (lstm_cell_vec.h), one copy per
// vector ISA: avx2 (lstm_cell_avx2.cpp, compiled with -mavx2 -mfma -ffp-contract=off,
// called when the run-time ISA is avx2) and avx512 (lstm_cell_avx512.cpp, -mavx512f too,
// called when it is avx512; built when RNNKIT_HAVE_AVX512_KERNELS). Each gives the same
// bits as the portable loops it replaces: the same operations in the same order, and the
// activations of vector_math.h, which round every lane alike at either width.
#pragma once
#include <cstdint>

namespace rnnkit::detail {

// The LSTM forward cell for units [0, n) of one row, in one pass (lstm.cpp cell_chunk
// does the same in several):
//   a (4 blocks H apart: pre-activations of i, f, g, o) read; written as the activated
//     [i, f, g, o] only when keep_gates (the backward reads them).
//   bias (4 blocks H apart) read, or nullptr.
//   c (n,) read as c_{t-1}, written as c_t = f * c_{t-1} + i * g.
//   tc (n,) written: tanh(c_t), or nullptr.
//   h, y (n,) written: h_t = o * tanh(c_t).
#define RNNKIT_DECLARE_LSTM_CELL                                                          \
  void lstm_cell(std::int64_t n, std::int64_t H, float* a, const float* bias, float* c,  \
                 float* tc, float* h, float* y, bool keep_gates);                        \
  void lstm_cell(std::int64_t n, std::int64_t H, double* a, const double* bias, double* c, \
                 double* tc, double* h, double* y, bool keep_gates);
namespace avx2 {
RNNKIT_DECLARE_LSTM_CELL
}  // namespace avx2
namespace avx512 {
RNNKIT_DECLARE_LSTM_CELL
}  // namespace avx512
#undef RNNKIT_DECLARE_LSTM_CELL

}  // namespace rnnkit::detail
