// GRU cell over a whole sequence: one layer, one direction (see dims.h for the buffer
// conventions, lengths and direction). Gate blocks [r, z, n], PyTorch's order:
//
//   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
//   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
//   reset_after = true (PyTorch):      n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
//   reset_after = false (original):    n = tanh(x W_in^T + b_in + (r * h) W_hn^T + b_hn)
//   h_t = (1 - z) * n + z * h_{t-1}
//
// Forward: the input projection for all T*B rows (one GEMM, or chunks of ~256 rows
// inside the time loop: cell_common.h InputProjection); each step then does
// h W_hh^T (B x 3H; with reset_after=false, h W_{hr,hz}^T (B x 2H) and, once r is known,
// (r*h) W_hn^T (B x H)) and the elementwise cell. Backward: each step does the
// elementwise derivative and dA W_hh (reset_after=false: dA_n W_hn, then dA_rz W_hrz);
// dX, dW_ih, dW_hh and the bias sums are GEMMs / sums over chunks of consecutive time
// steps (gru_backward_chunk_rows rows each, >= 512 unless T*B is smaller), done as each
// chunk's dA is complete, so dA is never held for all T*B rows.
//
// No allocation inside the time loop: every buffer comes from the caller (the stack,
// stack.h), except W_hh (and W_ih, for a projection in chunks) packed for the GEMM
// kernel (gemm.h PackedB), made once per call.
#pragma once
#include <cstdint>

#include "rnnkit/dims.h"

namespace rnnkit {

// Rows of gru_backward's dgates (and dgates_h) workspaces: one chunk of consecutive time
// steps, ceil(512 / B) steps (at most T) times B.
std::int64_t gru_backward_chunk_rows(const Dims& d);

// Elements of the `work` scratch buffer that gru_forward / gru_backward need: the forward's
// (B, 3H) step products, (B, H) r * h, a second h (B, H) (h is double buffered across
// steps) and the step's biases (3H,); the reset_after backward's h W_hn^T + b_hn of one
// chunk (gru_backward_chunk_rows(d), H) and two steps' dL/d(h W_hh^T) (B, 3H) each; the
// reset_before backward's (B, H) dL/d(r * h); and, both, h_{t-1} of one chunk
// (gru_backward_chunk_rows(d), H) when h_prev is not given.
inline std::int64_t gru_work_size(const Dims& d) {
  const std::int64_t step = d.B * 5 * d.H + 3 * d.H;
  const std::int64_t chunk = 2 * gru_backward_chunk_rows(d) * d.H + 2 * d.B * 3 * d.H;
  return step > chunk ? step : chunk;
}

// Forward.
//   out    (T, B, ldo) written, columns [0, H): h_t, or 0 where step t of b is inactive.
//   h      (B, H)      read as h0, written as h_n (the state after each sequence's last
//                      valid step).
//   gates  (T, B, 3H)  written: the activations [r, z, n] of every active row.
//                      Workspace at inference; kept for backward when training.
//   h_prev (T, B, H)   written when not nullptr (training, unless the backward gets h_t
//                      from out instead: gru_backward's hs): the state entering step t.
//   extra  (T, B, H)   reset_before: written when not nullptr (training): r * h_{t-1}.
//                      reset_after: unused, nullptr (the backward
//                      recomputes h_{t-1} W_hn^T + b_hn from h_prev, chunk by chunk: one
//                      extra GEMM over T*B rows instead of keeping T*B*H values).
//   work   gru_work_size(d) elements, scratch.
//   x      (T, B, I) read.  w_ih (3H, I), w_hh (3H, H) read.
//   b_ih, b_hh (3H,) read, or nullptr (no bias).
//   lengths (B,) read, or nullptr.
template <typename T>
void gru_forward(T* out, T* h, T* gates, T* h_prev, T* extra, T* work, const T* x,
                 const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                 const std::int64_t* lengths, const Dims& d, bool reset_after);

// Backward of gru_forward (which must have run in training: for reset_before with extra).
//   dx       (T, B, I) written, or accumulated when accumulate_dx (the two directions of
//                      a layer add into one buffer): dA W_ih; zero rows at inactive steps.
//   dw_ih    (3H, I), dw_hh (3H, H) written, or accumulated when accumulate_dw.
//   db_ih, db_hh (3H,) written (accumulated when accumulate_dw), or nullptr (no bias).
//                      Accumulated, each element adds the products chunk by chunk in a
//                      fixed order: into zeros that gives the written bits.
//   dh       (B, H)    read as dL/dh_n, written as dL/dh0.
//   dgates   (gru_backward_chunk_rows(d), 3H) written, workspace: dL/d(input side of the
//                      pre-activations) of one chunk of time steps.
//   dgates_h (gru_backward_chunk_rows(d), H) written, workspace, reset_after only (else
//                      nullptr): the n block of dL/d(h W_hh^T + b_hh) of the chunk, dgates'
//                      n block times r (its r and z blocks are dgates').
//   work     gru_work_size(d) elements, scratch.
//   dout     (T, B, ldo) read, columns [0, H): dL/dout; ignored at inactive steps.
//   x, w_ih, w_hh, b_hh, lengths, reset_after: as given to gru_forward (b_hh read by
//   reset_after only). gates, extra (reset_before; else nullptr): what it kept.
//   h_prev (T, B, H) read: what the forward kept; or nullptr: the states h_{t-1} are then
//          read, one chunk at a time, from
//   hs     (T, B, ld_hs) read, columns [0, H): the forward's output h_t (0 past each
//          sequence's length), shifted by one step, and
//   h0     (B, H) read: the initial state, at the step where each sequence starts.
//          hs and h0 are nullptr (ignored) when h_prev is given.
template <typename T>
void gru_backward(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dh, T* dgates,
                  T* dgates_h, T* work, const T* dout, const T* x, const T* w_ih,
                  const T* w_hh, const T* b_hh, const T* gates, const T* h_prev,
                  const T* hs, std::int64_t ld_hs, const T* h0, const T* extra,
                  const std::int64_t* lengths, const Dims& d, bool reset_after,
                  bool accumulate_dx, bool accumulate_dw);

}  // namespace rnnkit
