// GRU cell over a whole sequence: one layer, one direction (cell.h gives the arguments,
// dims.h the buffer conventions). Gate blocks [r, z, n], PyTorch's order:
//
//   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
//   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
//   kind gru (reset_after, PyTorch):      n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
//   kind gru_reset_before (original):     n = tanh(x W_in^T + b_in + (r * h) W_hn^T + b_hn)
//   h_t = (1 - z) * n + z * h_{t-1}
//
// Forward: the input projection for all T*B rows (cell_common.h InputProjection); each
// step then does h W_hh^T (B x 3H; reset-before: h W_{hr,hz}^T (B x 2H) and, once r is
// known, (r*h) W_hn^T (B x H)) and the elementwise cell. Backward: each step does the
// elementwise derivative and dA W_hh (reset-before: dA_n W_hn, then dA_rz W_hrz); dX,
// dW_ih, dW_hh and the bias sums are products over chunks of consecutive time steps.
//
// What training keeps: the gates [r, z, n] and h_prev, or, in the last layer, nothing for
// h_{t-1}: the backward reads it from out shifted by one step and h0 (StateBuffers). The
// reset-before kind also keeps r * h_{t-1} (reset_h), the reset-after kind
// h_{t-1} W_hn^T + b_hn (h_w_hn), the value inside r * (.).
//
// No allocation inside the time loop: every buffer comes from the caller (the stack),
// except W_hh (and W_ih, for a projection in chunks) packed for the GEMM kernel (gemm.h
// PackedB), made once per call.
#pragma once

#include "rnnkit/cell.h"

namespace rnnkit {

template <typename T>
CellOps<T> gru_ops();  // reset_after = true
template <typename T>
CellOps<T> gru_reset_before_ops();

}  // namespace rnnkit
