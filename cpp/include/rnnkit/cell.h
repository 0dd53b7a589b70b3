// The interface every cell kind implements: one layer, one direction, the whole sequence
// (dims.h gives the buffer conventions, lengths and direction). The cell kinds and their
// facts are listed once, in cell_kinds.h; each kind's forward and backward live side by
// side in one file (rnn.cpp, lstm.cpp, gru.cpp, gru_reset_before.cpp) and run on the time
// loops of cell_loop.h.
#pragma once
#include <cstdint>
#include <type_traits>

#include "rnnkit/dims.h"

namespace rnnkit {

namespace kernels {
template <typename T>
class PackedB;
}

struct CellOptions;  // cell_options.h

// The cell kinds, in the order of the table in cell_kinds.cpp.
enum class Mode { rnn_tanh, rnn_relu, lstm, gru, gru_reset_before };

// One cell's parameters, read: w_ih (G*H, I), w_hh (G*H, R) (R = h_size, dims.h); b_ih,
// b_hh (G*H,), or both nullptr (no bias); w_hr (P, H), an LSTM's projection, or nullptr
// (P = 0). The forward may be given packed copies of these same weights, kept across
// calls (stack.h PackedStack): w_ih_packed W_ih^T (I, G*H), w_hh_packed W_hh^T (R, G*H),
// w_hr_packed W_hr^T (H, P); where nullptr it packs what it needs itself, once per call.
// w_ph (3H,): the LSTM's peepholes [p_i, p_f, p_o] with CellOptions::peepholes, else
// nullptr.
template <typename T>
struct CellWeights {
  const T* w_ih = nullptr;
  const T* w_hh = nullptr;
  const T* b_ih = nullptr;
  const T* b_hh = nullptr;
  const T* w_ph = nullptr;
  const kernels::PackedB<T>* w_ih_packed = nullptr;
  const kernels::PackedB<T>* w_hh_packed = nullptr;
  const T* w_hr = nullptr;
  const kernels::PackedB<T>* w_hr_packed = nullptr;
};

// The arrays of a CellWeights, in the order the stack checksums them: w_ih, w_hh, b_ih,
// b_hh, w_hr.
constexpr int kCellWeightArrays = 5;

// One cell's parameter gradients, written or added to (same shapes as CellWeights).
template <typename T>
struct CellGrads {
  T* dw_ih = nullptr;
  T* dw_hh = nullptr;
  T* db_ih = nullptr;
  T* db_hh = nullptr;
  T* dw_hr = nullptr;
  T* dw_ph = nullptr;
};

// The buffers a training forward keeps for its backward, by name. P is T* when the
// forward writes them, const T* when the backward reads them. nullptr where the cell kind
// keeps no such buffer (cell_kinds.h says which kind keeps which).
template <typename P>
struct StateBuffers {
  // (T, B, ld_gates): the gate activations of every active row, in PyTorch's gate order
  // (G blocks of H columns). The RNN's single gate is h_t itself, so its forward may
  // compute it in its output (gates nullptr) and its backward then reads it there.
  P gates = nullptr;
  std::int64_t ld_gates = 0;
  P h_prev = nullptr;   // (T, B, R): the state h_{t-1} entering step t
  P c_prev = nullptr;   // (T, B, H): LSTM, the cell state c_{t-1} entering step t
  P tanh_c = nullptr;   // (T, B, H): LSTM, tanh(c_t) (with cell options h(c_t))
  P reset_h = nullptr;  // (T, B, H): reset-before GRU, r_t * h_{t-1}
  P h_w_hn = nullptr;   // (T, B, H): reset-after GRU, h_{t-1} W_hn^T + b_hn (active rows)
  // (T, B, ld_pre) with cell options: the gates' pre-activations before clip, peepholes
  // included (G blocks of H), and for the LSTM c_t (a fifth block): the activations'
  // derivatives are taken there.
  P pre = nullptr;
  std::int64_t ld_pre = 0;
  P proj_in = nullptr;  // (T, B, H): LSTM with a projection, o_t * h(c_t) (0 inactive)
  // When h_prev is not kept, the backward reads h_{t-1} from the outputs h_t shifted by
  // one step (hs (T, B, ld_hs), columns [0, H), 0 past each sequence's length) and from
  // h0 (B, H) at the step where each sequence starts. Backward only.
  const std::remove_pointer_t<P>* hs = nullptr;
  std::int64_t ld_hs = 0;
  const std::remove_pointer_t<P>* h0 = nullptr;
};

// A cell's forward (R = h_size(d): P with a projection, else H).
//   out    (T, B, ldo) written, columns [0, R): h_t, or 0 where step t of b is inactive.
//   h      (B, R) read as h0, written as h_n (the state after each sequence's last valid
//          step). c (B, H): the same for the LSTM's cell state; nullptr for other kinds.
//   work   cell_ops<T>(mode).work_size(d) elements, scratch.
//   x      (T, B, I) read.  lengths (B,) read, or nullptr.
//   keep   written: what the backward needs (training), else nullptr except `gates`,
//          which the LSTM and GRU always need as workspace (T, B, G*H).
template <typename T>
struct ForwardArgs {
  T* out = nullptr;
  T* h = nullptr;
  T* c = nullptr;
  T* work = nullptr;
  const T* x = nullptr;
  CellWeights<T> w;
  const std::int64_t* lengths = nullptr;
  StateBuffers<T*> keep;
  const CellOptions* options = nullptr;  // the cell variants, or nullptr: the usual cell
};

// A cell's backward, from what its training forward kept.
//   dx     (T, B, I) written, or added to when accumulate_dx (the two directions of a
//          layer add into one buffer): dA W_ih; zero rows at inactive steps.
//   dh     (B, R) read as dL/dh_n, written as dL/dh0. dc (B, H): the same for the LSTM's
//          cell state; nullptr for other kinds.
//   g      written, or added to when accumulate_dw: each element adds the products of
//          one chunk of time steps after another in a fixed order (into zeros that gives
//          the written bits). Biases nullptr when there are none.
//   dgates (backward_chunk_rows(d), ld_dgates) workspace, columns [0, G*H):
//          dL/d(pre-activations) of one chunk. ld_dgates >= G*H is the row stride that
//          every reader and writer of dgates uses (the caller picks it; the stack pads
//          rows off multiples of 2 KiB, cell_common.h dgates_row_stride).
//   dgates_h (backward_chunk_rows(d), H) workspace, reset-after GRU only (else nullptr).
//   dh_rows (backward_chunk_rows(d), P) workspace, LSTM with a projection only (else
//          nullptr): dL/dh_t of one chunk, the projection's output gradient.
//   work   cell_ops<T>(mode).work_size(d) elements, scratch.
//   dout   (T, B, ldo) read, columns [0, R): dL/dout; ignored at inactive steps.
//   x, w, lengths: as given to the forward.  saved: what it kept.
template <typename T>
struct BackwardArgs {
  T* dx = nullptr;
  T* dh = nullptr;
  T* dc = nullptr;
  CellGrads<T> g;
  T* dgates = nullptr;
  std::int64_t ld_dgates = 0;  // dgates' row stride, >= G*H
  T* dgates_h = nullptr;
  T* dh_rows = nullptr;
  T* work = nullptr;
  const T* dout = nullptr;
  const T* x = nullptr;
  CellWeights<T> w;
  const std::int64_t* lengths = nullptr;
  StateBuffers<const T*> saved;
  const CellOptions* options = nullptr;  // as given to the forward
  bool accumulate_dx = false;
  bool accumulate_dw = false;
};

// A cell kind's entry points.
template <typename T>
struct CellOps {
  void (*forward)(const ForwardArgs<T>&, const Dims&) = nullptr;
  void (*backward)(const BackwardArgs<T>&, const Dims&) = nullptr;
  std::int64_t (*work_size)(const Dims&) = nullptr;  // elements of `work`
};

// Rows of the backward's dgates workspace: one chunk of consecutive time steps,
// ceil(512 / B) steps (at most T) of B rows each (cell_common.h backward_chunk_steps).
std::int64_t backward_chunk_rows(const Dims& d);

}  // namespace rnnkit
