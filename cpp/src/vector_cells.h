// Internal: cell code written with vector intrinsics, one template per pass over any
// vector ISA's operations (vector_math.h), each instantiated for avx2 (compiled with
// -mavx2 -mfma -ffp-contract=off, called when the run-time ISA is avx2) and for avx512
// (-mavx512f too, called when it is avx512; built when RNNKIT_HAVE_AVX512_KERNELS): the
// forward cells of the LSTM (lstm_cell_vec.h) and of the GRU and RNN (gru_rnn_cell_vec.h),
// and the backward elementwise passes of every cell (cell_backward_vec.h), all
// instantiated by vector_cells_avx2.cpp and vector_cells_avx512.cpp. The cells'
// callers run them with the default cell options only (the variants keep their portable
// loops), and the portable loops under ISA plain. Each gives the same bits as the
// portable loops it replaces, at either width: the same operations in the same order,
// and the activations of vector_math.h, which round every lane alike.
#pragma once
#include <cstdint>

namespace rnnkit::detail {

// Every pass here is an overload on a tag naming its ISA (Avx2, Avx512), so that one call
// reaches any of them through by_isa.h; the backward passes' portable loops overload them
// on Plain.
struct Plain {};
struct Avx2 {};
struct Avx512 {};

// The LSTM forward cell for units [0, n) of one row, in two passes over registers (the
// gates, then the state; lstm_cell_plain.h's lstm_cell_plain does the same in several):
//   a (4 blocks H apart: pre-activations of i, f, g, o) read, written as the activated
//     [i, f, g, o] (the backward reads them; at inference a is scratch).
//   bias (4 blocks H apart) read, or nullptr.
//   c (n,) read as c_{t-1}, written as c_t = f * c_{t-1} + i * g.
//   tc (n,) written: tanh(c_t), or nullptr.
//   h, y (n,) written: h_t = o * tanh(c_t).
#define RNNKIT_DECLARE_LSTM_CELL(TAG, T)                                                    \
  void lstm_cell(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias, T* c, T* tc, T* h, \
                 T* y);
RNNKIT_DECLARE_LSTM_CELL(Avx2, float)
RNNKIT_DECLARE_LSTM_CELL(Avx2, double)
RNNKIT_DECLARE_LSTM_CELL(Avx512, float)
RNNKIT_DECLARE_LSTM_CELL(Avx512, double)
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
#define RNNKIT_DECLARE_GRU_RNN_CELLS(TAG, T)                                                \
  void gru_cell(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias, const T* ghn,     \
                const T* b_hn, T* kept_ghn, const T* hp, T* h, T* y);                       \
  void gru_before_gates(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias, const T* hw, \
                        const T* hp, T* rh);                                                \
  void gru_before_finish(TAG, std::int64_t n, std::int64_t H, T* a, const T* bias_n,        \
                         const T* hw_n, const T* hp, T* h, T* y);                           \
  void rnn_cell(TAG, std::int64_t n, T* a, const T* bias, bool relu, T* h, T* y);
RNNKIT_DECLARE_GRU_RNN_CELLS(Avx2, float)
RNNKIT_DECLARE_GRU_RNN_CELLS(Avx2, double)
RNNKIT_DECLARE_GRU_RNN_CELLS(Avx512, float)
RNNKIT_DECLARE_GRU_RNN_CELLS(Avx512, double)
#undef RNNKIT_DECLARE_GRU_RNN_CELLS

// The backward elementwise passes of the cells for units [0, n) of one active row (all
// pointers at the row's first unit), one template each (cell_backward_vec.h):
// lstm_backward_row (lstm_cell_plain.h's portable loop, the bias gradient's sum in the
// same pass):
//   da (4 blocks H apart) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (n,) read as dL/dh_t from later steps, written 0. dc (n,) read as dL/dc_t,
//     written dL/dc_{t-1}.
//   a (4 blocks H apart: [i, f, g, o]), tc (n,): tanh(c_t), cp (n,): c_{t-1} read.
//   dy_out (n,) read: dL/dout_t, or nullptr (dh holds all of dL/dh_t).
//   db (4 blocks H apart) added to: db += da, or nullptr.
// gru_backward_row (the reset-after GRU, gru.cpp):
//   da, dah (3 blocks H apart) written: dL/d(input side), dL/d(h W_hh^T + b_hh) of
//     [r, z, n]. dahn (n,) written: dah's n block again.
//   dh (n,) read as dL/dh_t from later steps, written dy * z. a (3 blocks H apart:
//     [r, z, n]), hp (n,): h_{t-1}, ghn (n,): h_{t-1} W_hn^T + b_hn, dy_out (n,) read.
// gru_reset_before_backward_zn (the reset-before GRU's first pass, gru_reset_before.cpp):
//   da (3 blocks H apart) written: its z and n blocks. dh (n,) read as dL/dh_t from later
//   steps, written dy * z. a (3 blocks H apart: [r, z, n]), hp (n,), dy_out (n,) read.
// gru_reset_before_backward_r (its second pass, after dL/d(r * h) = da_n W_hn):
//   dar (n,) written: dL/da_r. dh (n,) added to: g * r. r, hp, drh (n,) read: r, h_{t-1},
//   dL/d(r * h).
// rnn_backward_row (rnn.cpp; relu or tanh): da (n,) written: dL/da. dh (n,) read as
//   dL/dh_t from later steps, written 0. y (n,): h_t, dy_out (n,) read.
#define RNNKIT_DECLARE_BACKWARD_PASSES(TAG, T)                                         \
  void lstm_backward_row(TAG, std::int64_t n, std::int64_t H, T* da, T* dh, T* dc,      \
                         const T* a, const T* tc, const T* cp, const T* dy_out, T* db); \
  void gru_backward_row(TAG, std::int64_t n, std::int64_t H, T* da, T* dah, T* dahn,    \
                        T* dh, const T* a, const T* hp, const T* ghn, const T* dy_out); \
  void gru_reset_before_backward_zn(TAG, std::int64_t n, std::int64_t H, T* da, T* dh,  \
                                    const T* a, const T* hp, const T* dy_out);          \
  void gru_reset_before_backward_r(TAG, std::int64_t n, T* dar, T* dh, const T* r,      \
                                   const T* hp, const T* drh);                          \
  void rnn_backward_row(TAG, std::int64_t n, bool relu, T* da, T* dh, const T* y,       \
                        const T* dy_out);
RNNKIT_DECLARE_BACKWARD_PASSES(Avx2, float)
RNNKIT_DECLARE_BACKWARD_PASSES(Avx2, double)
RNNKIT_DECLARE_BACKWARD_PASSES(Avx512, float)
RNNKIT_DECLARE_BACKWARD_PASSES(Avx512, double)
#undef RNNKIT_DECLARE_BACKWARD_PASSES

}  // namespace rnnkit::detail
