// LSTM cell over a whole sequence: one layer, one direction (cell.h gives the arguments,
// dims.h the buffer conventions). Gate blocks [i, f, g, o], PyTorch's order:
//
//   [a_i, a_f, a_g, a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
//   i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g)
//   c_t = f * c_{t-1} + i * g,          h_t = o * tanh(c_t)
//
// Forward: x W_ih^T for all T*B rows (cell_common.h InputProjection); each step then
// accumulates h W_hh^T (B x 4H) into its rows and runs the elementwise cell, which adds
// b_ih + b_hh. Backward: each step does the elementwise derivative, adds its rows of dA
// into the bias gradient and runs one GEMM dA W_hh; dX, dW_ih and dW_hh are products over
// chunks of consecutive time steps, done as each chunk's steps finish.
//
// What training keeps: the gates [i, f, g, o], h_prev, c_prev and tanh_c (StateBuffers).
//
// Projection (d.P > 0, torch's proj_size): h_t = m_t W_hr^T (B, P) with m_t = o * tanh(c_t)
// (B, H); h, out and W_hh's columns are P wide, c stays H wide. Forward: after the cell
// (a barrier: m_t complete) one GEMM per step, each thread its columns of h_t. Backward:
// dy_t = dh + dout_t (B, P) kept per chunk, dm_t = dy_t W_hr feeds the cell's derivative
// (a barrier before that GEMM); dW_hr += dy^T m, one GEMM per chunk. Training also keeps
// m_t (proj_in).
//
// No allocation inside the time loop: every buffer comes from the caller (the stack),
// except W_hh, W_hr (and W_ih, for an input projection in chunks) packed for the GEMM
// kernel (gemm.h PackedB), made once per call.
#pragma once

#include "rnnkit/cell.h"

namespace rnnkit {

template <typename T>
CellOps<T> lstm_ops();

}  // namespace rnnkit
