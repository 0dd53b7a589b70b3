// Internal: cell loops written with vector intrinsics. The forward cells, of the LSTM
// (lstm_cell_vec.h) and of the GRU and RNN (gru_rnn_cell_vec.h), have one copy per
// vector ISA: avx2 (lstm_cell_avx2.cpp, gru_rnn_cell_avx2.cpp, compiled with -mavx2 -mfma
// -ffp-contract=off, called when the run-time ISA is avx2) and avx512
// (lstm_cell_avx512.cpp, gru_rnn_cell_avx512.cpp, -mavx512f too, called when it is
// avx512; built when RNNKIT_HAVE_AVX512_KERNELS); the cells' callers run them with the
// default cell options only (the variants keep their portable loops), and the portable
// loops under ISA plain. The LSTM backward (lstm_backward_avx2.cpp) is AVX2 only, called
// under either. Each gives the same bits as the portable loops it replaces: the same
// operations in the same order, and the activations of vector_math.h, which round every
// lane alike at either width.
#pragma once
#include <cstdint>

namespace rnnkit::detail {

// The LSTM forward cell for units [0, n) of one row, in two passes over registers (the
// gates, then the state; lstm_cell_plain.h's lstm_cell_plain does the same in several):
//   a (4 blocks H apart: pre-activations of i, f, g, o) read, written as the activated
//     [i, f, g, o] (the backward reads them; at inference a is scratch).
//   bias (4 blocks H apart) read, or nullptr.
//   c (n,) read as c_{t-1}, written as c_t = f * c_{t-1} + i * g.
//   tc (n,) written: tanh(c_t), or nullptr.
//   h, y (n,) written: h_t = o * tanh(c_t).
#define RNNKIT_DECLARE_LSTM_CELL                                                          \
  void lstm_cell(std::int64_t n, std::int64_t H, float* a, const float* bias, float* c,  \
                 float* tc, float* h, float* y);                                         \
  void lstm_cell(std::int64_t n, std::int64_t H, double* a, const double* bias, double* c, \
                 double* tc, double* h, double* y);
namespace avx2 {
RNNKIT_DECLARE_LSTM_CELL
}  // namespace avx2
namespace avx512 {
RNNKIT_DECLARE_LSTM_CELL
}  // namespace avx512
#undef RNNKIT_DECLARE_LSTM_CELL

// The GRU and RNN forward cells for units [0, n) of one active row, each in one or two
// passes over registers (gru_rnn_cell_vec.h), with the same bits as the portable loops of
// gru.cpp, gru_reset_before.cpp and rnn.cpp. Gate blocks [r, z, n] are H apart.
// gru_cell (reset_after = true):
//   a (3 blocks) read as pre-activations (n's without r * (.)), written [r, z, n].
//   bias (3 blocks) read, or nullptr: added to a first.
//   ghn (n,) read: h_{t-1} W_hn^T. b_hn (n,) read, or nullptr.
//   kept_ghn (n,) written: h_{t-1} W_hn^T + b_hn (the backward reads it), or nullptr.
//   hp (n,) read: h_{t-1}. h, y (n,) written: h_t = (1 - z) * n + z * h_{t-1}.
// gru_before_gates (reset_after = false, before (r * h) W_hn^T):
//   a's r and z blocks read as pre-activations, written r, z; bias (2 blocks) read, or
//   nullptr; hw (2 blocks) read: h W_{hr,hz}^T; hp (n,) read; rh (n,) written: r * hp.
// gru_before_finish (after it): a's n block read as the pre-activation, written n; its z
//   block read; bias_n (n,) read, or nullptr; hw_n (n,) read: (r * h) W_hn^T; hp, h, y as
//   gru_cell's.
// rnn_cell: a (n,) read as pre-activations, written tanh (relu: max(0, .)) of a + bias;
//   bias (n,) read, or nullptr; h, y (n,) written: copies of the result (y may be a).
#define RNNKIT_DECLARE_GRU_RNN_CELLS(T)                                                   \
  void gru_cell(std::int64_t n, std::int64_t H, T* a, const T* bias, const T* ghn,       \
                const T* b_hn, T* kept_ghn, const T* hp, T* h, T* y);                    \
  void gru_before_gates(std::int64_t n, std::int64_t H, T* a, const T* bias, const T* hw, \
                        const T* hp, T* rh);                                              \
  void gru_before_finish(std::int64_t n, std::int64_t H, T* a, const T* bias_n,          \
                         const T* hw_n, const T* hp, T* h, T* y);                         \
  void rnn_cell(std::int64_t n, T* a, const T* bias, bool relu, T* h, T* y);
namespace avx2 {
RNNKIT_DECLARE_GRU_RNN_CELLS(float)
RNNKIT_DECLARE_GRU_RNN_CELLS(double)
}  // namespace avx2
namespace avx512 {
RNNKIT_DECLARE_GRU_RNN_CELLS(float)
RNNKIT_DECLARE_GRU_RNN_CELLS(double)
}  // namespace avx512
#undef RNNKIT_DECLARE_GRU_RNN_CELLS

// The LSTM backward cell for units [0, n) of one active row (lstm.cpp backward_row, the
// same bits), with the bias gradient's sum in the same pass (lstm_backward_avx2.cpp):
//   da (4 blocks H apart) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (n,) read as dL/dh_t from later steps, written 0. dc (n,) read as dL/dc_t,
//     written dL/dc_{t-1}.
//   a (4 blocks H apart: [i, f, g, o]), tc (n,): tanh(c_t), cp (n,): c_{t-1} read.
//   dy_out (n,) read: dL/dout_t, or nullptr (dh holds all of dL/dh_t).
//   db (4 blocks H apart) added to: db += da, or nullptr.
namespace avx2 {
void lstm_backward_row(std::int64_t n, std::int64_t H, float* da, float* dh, float* dc,
                       const float* a, const float* tc, const float* cp, const float* dy_out,
                       float* db);
void lstm_backward_row(std::int64_t n, std::int64_t H, double* da, double* dh, double* dc,
                       const double* a, const double* tc, const double* cp,
                       const double* dy_out, double* db);
}  // namespace avx2

}  // namespace rnnkit::detail
