// Elman RNN cell over a whole sequence: one layer, one direction (see dims.h for the
// buffer conventions, lengths and direction).
//
//   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu
//
// Forward: one GEMM gives x W_ih^T + biases for all T*B rows; each step then does one
// GEMM h W_hh^T (B x H) and the elementwise activation. Backward: each step does the
// elementwise derivative and one GEMM dA W_hh; dX, dW_ih, dW_hh and the bias sums are
// single GEMMs / sums over T*B rows after the loop.
//
// No allocation inside the time loop: every buffer comes from the caller (the stack,
// stack.h), except W_hh packed for the GEMM kernel (gemm.h PackedB), made once per call.
#pragma once
#include <cstdint>

#include "rnnkit/dims.h"

namespace rnnkit {

enum class RnnActivation { tanh, relu };

// Elements of the `work` scratch buffer that rnn_forward needs: none (the step's GEMM
// accumulates into gates); kept so that every cell has the same interface.
inline std::int64_t rnn_work_size(const Dims&) { return 0; }

// Forward.
//   out    (T, B, ldo) written, columns [0, H): h_t, or 0 where step t of b is inactive.
//   h      (B, H)      read as h0, written as h_n (the state after each sequence's last
//                      valid step).
//   gates  (T, B, H)   written: the activations h_t of every row (inactive rows: garbage).
//                      Workspace at inference; kept for backward when training.
//   h_prev (T, B, H)   written when not nullptr (training): the state entering step t.
//   work   rnn_work_size(d) elements, scratch.
//   x      (T, B, I) read.  w_ih (H, I), w_hh (H, H) read.
//   b_ih, b_hh (H,) read, or nullptr (no bias).
//   lengths (B,) read, or nullptr.
template <typename T>
void rnn_forward(T* out, T* h, T* gates, T* h_prev, T* work, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const std::int64_t* lengths,
                 const Dims& d, RnnActivation act);

// Backward of rnn_forward (which must have run with h_prev, i.e. training).
//   dx     (T, B, I) written, or accumulated when accumulate_dx (the two directions of a
//                    layer add into one buffer): dA W_ih; zero rows at inactive steps.
//   dw_ih  (H, I), dw_hh (H, H) written.
//   db_ih, db_hh (H,) written, or nullptr (no bias).
//   dh     (B, H)    read as dL/dh_n, written as dL/dh0.
//   dgates (T, B, H) written, workspace: dL/d(pre-activation).
//   dout   (T, B, ldo) read, columns [0, H): dL/dout; ignored at inactive steps.
//   x, w_ih, w_hh, lengths: as given to rnn_forward. gates, h_prev: what it kept.
template <typename T>
void rnn_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates,
                  const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                  const T* h_prev, const std::int64_t* lengths, const Dims& d,
                  RnnActivation act, bool accumulate_dx);

}  // namespace rnnkit
