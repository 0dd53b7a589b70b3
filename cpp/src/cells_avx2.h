// Internal: cell loops written with AVX2/FMA intrinsics (lstm_cell_avx2.cpp, the forward;
// lstm_backward_avx2.cpp, the backward), compiled with -mavx2 -mfma -ffp-contract=off and
// called only when the run-time ISA is avx2 or avx512 (isa.h). Each gives the same bits
// as the portable loops it replaces: the same operations in the same order, and the
// activations of activations_avx2.cpp.
#pragma once
#include <cstdint>

namespace rnnkit::detail::avx2 {

// The LSTM forward cell for units [0, n) of one row, in one pass (lstm.cpp cell_chunk
// does the same in several):
//   a (4 blocks H apart: pre-activations of i, f, g, o) read; written as the activated
//     [i, f, g, o] only when keep_gates (the backward reads them).
//   bias (4 blocks H apart) read, or nullptr.
//   c (n,) read as c_{t-1}, written as c_t = f * c_{t-1} + i * g.
//   tc (n,) written: tanh(c_t), or nullptr.
//   h, y (n,) written: h_t = o * tanh(c_t).
void lstm_cell(std::int64_t n, std::int64_t H, float* a, const float* bias, float* c,
               float* tc, float* h, float* y, bool keep_gates);
void lstm_cell(std::int64_t n, std::int64_t H, double* a, const double* bias, double* c,
               double* tc, double* h, double* y, bool keep_gates);

// The LSTM backward cell for units [0, n) of one active row (lstm.cpp backward_row, the
// same bits), with the bias gradient's sum in the same pass (lstm_backward_avx2.cpp):
//   da (4 blocks H apart) written: dL/d[a_i, a_f, a_g, a_o].
//   dh (n,) read as dL/dh_t from later steps, written 0. dc (n,) read as dL/dc_t,
//     written dL/dc_{t-1}.
//   a (4 blocks H apart: [i, f, g, o]), tc (n,): tanh(c_t), cp (n,): c_{t-1} read.
//   dy_out (n,) read: dL/dout_t, or nullptr (dh holds all of dL/dh_t).
//   db (4 blocks H apart) added to: db += da, or nullptr.
void lstm_backward_row(std::int64_t n, std::int64_t H, float* da, float* dh, float* dc,
                       const float* a, const float* tc, const float* cp, const float* dy_out,
                       float* db);
void lstm_backward_row(std::int64_t n, std::int64_t H, double* da, double* dh, double* dc,
                       const double* a, const double* tc, const double* cp,
                       const double* dy_out, double* db);

}  // namespace rnnkit::detail::avx2
