// LSTM cell over a whole sequence: one layer, one direction (see dims.h for the buffer
// conventions, lengths and direction). Gate blocks [i, f, g, o], PyTorch's order:
//
//   [a_i, a_f, a_g, a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
//   i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g)
//   c_t = f * c_{t-1} + i * g,          h_t = o * tanh(c_t)
//
// Forward: x W_ih^T for all T*B rows (one GEMM, or chunks of ~256 rows inside the time
// loop: cell_common.h InputProjection); each step then accumulates
// h W_hh^T (B x 4H, W_hh packed once per call) into its rows and runs the elementwise
// cell, which adds b_ih + b_hh. Backward: each step does the elementwise derivative, adds
// its rows of dA into the bias gradient and runs one GEMM dA W_hh (W_hh packed once per
// call); dX, dW_ih and dW_hh are GEMMs over chunks of consecutive time steps
// (lstm_backward_chunk_rows rows each, >= 512 unless T*B is smaller), done as each
// chunk's steps finish, while its dA is in cache; only one chunk of dA is kept.
//
// Threads: when the per-step product is large enough, one OpenMP team runs the whole
// time loop, each thread owning a slice of hidden units, with one barrier per step (see
// lstm.cpp). Results are the same bits whatever the thread count.
//
// No allocation inside the time loop: every buffer comes from the caller (the stack,
// stack.h), except W_hh (and W_ih, for a projection in chunks) packed for the GEMM
// kernel (gemm.h PackedB), made once per call.
#pragma once
#include <cstdint>

#include "rnnkit/dims.h"

namespace rnnkit {

// Rows of dA the backward keeps: one chunk of time steps, ceil(512 / B) steps (at most T)
// of B rows each.
std::int64_t lstm_backward_chunk_rows(const Dims& d);

// Elements of the `work` scratch buffer that lstm_forward needs.
inline std::int64_t lstm_work_size(const Dims& d) { return d.B * d.H + 4 * d.H; }

// Forward.
//   out    (T, B, ldo) written, columns [0, H): h_t, or 0 where step t of b is inactive.
//   h, c   (B, H)      read as h0, c0; written as h_n, c_n (the state after each
//                      sequence's last valid step).
//   gates  (T, B, 4H)  written: the activations [i, f, g, o] of every active row.
//                      Workspace at inference; kept for backward when training.
//   h_prev, c_prev (T, B, H) written when not nullptr (training): the state entering step t.
//   tanh_c (T, B, H)   written when not nullptr (training): tanh(c_t).
//                      h_prev, c_prev and tanh_c are all given or all nullptr.
//   work   lstm_work_size(d) elements, scratch: (B, H) the second buffer of h (h is
//          double buffered across steps), then (4H,) b_ih + b_hh.
//   x      (T, B, I) read.  w_ih (4H, I), w_hh (4H, H) read.
//   b_ih, b_hh (4H,) read, or nullptr (no bias).
//   lengths (B,) read, or nullptr.
template <typename T>
void lstm_forward(T* out, T* h, T* c, T* gates, T* h_prev, T* c_prev, T* tanh_c, T* work,
                  const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                  const std::int64_t* lengths, const Dims& d);

// Backward of lstm_forward (which must have run with h_prev, c_prev, tanh_c: training).
//   dx     (T, B, I) written, or accumulated when accumulate_dx (the two directions of a
//                    layer add into one buffer): dA W_ih; zero rows at inactive steps.
//   dw_ih  (4H, I), dw_hh (4H, H) written.
//   db_ih, db_hh (4H,) written, or nullptr (no bias).
//   dh, dc (B, H)    read as dL/dh_n, dL/dc_n; written as dL/dh0, dL/dc0.
//   dgates (lstm_backward_chunk_rows(d), 4H) written, workspace: dL/d[a_i, a_f, a_g, a_o]
//                    of one chunk of time steps.
//   dout   (T, B, ldo) read, columns [0, H): dL/dout; ignored at inactive steps.
//   x, w_ih, w_hh, lengths: as given to lstm_forward. gates, h_prev, c_prev, tanh_c: what
//   it kept.
template <typename T>
void lstm_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dc, T* dgates,
                   const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                   const T* h_prev, const T* c_prev, const T* tanh_c,
                   const std::int64_t* lengths, const Dims& d, bool accumulate_dx);

}  // namespace rnnkit
