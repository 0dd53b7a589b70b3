// Elman RNN cell over a whole sequence: one layer, one direction (see dims.h for the
// buffer conventions, lengths and direction).
//
//   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu
//
// Forward: x W_ih^T for all T*B rows (one GEMM, or chunks of ~256 rows inside the time
// loop: cell_common.h InputProjection); each step then does one GEMM h W_hh^T (B x H),
// adds the biases and runs the elementwise activation. Backward: each step does the
// elementwise derivative and one GEMM dA W_hh; dX, dW_ih, dW_hh and the bias sums are
// GEMMs / sums over chunks of consecutive time steps (rnn_backward_chunk_rows rows each,
// >= 512 unless T*B is smaller), done as each chunk's dA is complete, so dA is never held
// for all T*B rows.
//
// What training keeps: only the activations h_t (`gates`, or any buffer holding them,
// such as the layer's output when the next layer's input keeps it). The state entering
// step t is the previous visited step's h (or h0 where a sequence starts), so dW_hh =
// sum dA_t^T h_{t-1} is one GEMM over h_t shifted by one step plus a B-row GEMM with h0;
// no copy of h_{t-1} is kept.
//
// No allocation inside the time loop: every buffer comes from the caller (the stack,
// stack.h), except W_hh (and W_ih, for a projection in chunks) packed for the GEMM
// kernel (gemm.h PackedB), made once per call.
#pragma once
#include <cstdint>

#include "rnnkit/dims.h"

namespace rnnkit {

enum class RnnActivation { tanh, relu };

// Elements of the `work` scratch buffer that rnn_forward / rnn_backward need: the forward
// keeps a second h (B, H) (h is double buffered across steps) and the step's bias (H,);
// the backward gathers, per chunk, the dA rows of the steps where sequences start (B, H)
// and their h0 rows (B, H).
inline std::int64_t rnn_work_size(const Dims& d) { return 2 * d.B * d.H + d.H; }

// Rows of rnn_backward's dgates workspace: one chunk of consecutive time steps, ceil(512 /
// B) steps (at most T) times B.
std::int64_t rnn_backward_chunk_rows(const Dims& d);

// Forward.
//   out    (T, B, ldo) written, columns [0, H): h_t, or 0 where step t of b is inactive.
//   h      (B, H)      read as h0, written as h_n (the state after each sequence's last
//                      valid step).
//   gates  (T, B, H)   written: the activations h_t of every active row, 0 in inactive
//                      rows (rnn_backward reads it shifted by one step as h_{t-1}), or
//                      nullptr: the pre-activations are then computed in out's columns,
//                      which end up holding the same h_t (no (T, B, H) buffer at all; the
//                      caller passes a buffer only when it changes out afterwards, e.g.
//                      dropout, and needs h_t for the backward).
//   work   rnn_work_size(d) elements, scratch.
//   x      (T, B, I) read.  w_ih (H, I), w_hh (H, H) read.
//   b_ih, b_hh (H,) read, or nullptr (no bias).
//   lengths (B,) read, or nullptr.
template <typename T>
void rnn_forward(T* out, T* h, T* gates, T* work, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const std::int64_t* lengths, const Dims& d,
                 RnnActivation act);

// Backward of rnn_forward.
//   dx     (T, B, I) written, or accumulated when accumulate_dx (the two directions of a
//                    layer add into one buffer): dA W_ih; zero rows at inactive steps.
//   dw_ih  (H, I), dw_hh (H, H) written, or accumulated when accumulate_dw.
//   db_ih, db_hh (H,) written (accumulated when accumulate_dw), or nullptr (no bias).
//                    Accumulated, each element adds the products chunk by chunk in a fixed
//                    order: into zeros that gives the written bits.
//   dh     (B, H)    read as dL/dh_n, written as dL/dh0.
//   dgates (rnn_backward_chunk_rows(d), H) written, workspace: dL/d(pre-activation) of
//                    one chunk of time steps.
//   work   rnn_work_size(d) elements, scratch.
//   dout   (T, B, ldo) read, columns [0, H): dL/dout; ignored at inactive steps.
//   x, w_ih, w_hh, lengths: as given to rnn_forward.
//   hs     (T, B, ld_hs) read, columns [0, H): h_t of every active row, 0 in inactive rows:
//                    the gates rnn_forward wrote (ld_hs = H), or its output (ld_hs = ldo),
//                    which holds the same values.
//   h0     (B, H) read: the initial state rnn_forward started from (h's value on entry).
template <typename T>
void rnn_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates, T* work,
                  const T* dout, const T* x, const T* w_ih, const T* w_hh, const T* hs,
                  std::int64_t ld_hs, const T* h0, const std::int64_t* lengths, const Dims& d,
                  RnnActivation act, bool accumulate_dx, bool accumulate_dw);

}  // namespace rnnkit
