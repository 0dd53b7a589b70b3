// Elman RNN cell over a whole sequence: one layer, one direction (cell.h gives the
// arguments, dims.h the buffer conventions). Kinds rnn_tanh and rnn_relu:
//
//   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu
//
// Forward: x W_ih^T for all T*B rows (cell_common.h InputProjection); each step then does
// one GEMM h W_hh^T (B x H), adds the biases and runs the activation. Backward: each step
// does the elementwise derivative and one GEMM dA W_hh; dX, dW_ih, dW_hh and the bias
// sums are products over chunks of consecutive time steps, done as each chunk's dA is
// complete.
//
// What training keeps: only the activations h_t (StateBuffers::gates, or the layer's
// output, which holds the same values: the stack passes that instead where it is kept
// anyway) and h0. dW_hh = sum dA_t^T h_{t-1} is one GEMM over h_t shifted by one step
// plus a B-row GEMM with h0; no copy of h_{t-1} is kept.
//
// No allocation inside the time loop: every buffer comes from the caller (the stack),
// except W_hh (and W_ih, for a projection in chunks) packed for the GEMM kernel (gemm.h
// PackedB), made once per call.
#pragma once

#include "rnnkit/cell.h"

namespace rnnkit {

template <typename T>
CellOps<T> rnn_tanh_ops();
template <typename T>
CellOps<T> rnn_relu_ops();

}  // namespace rnnkit
