// The stack: L layers x D directions over one batch of variable-length sequences, with
// dropout masks between layers. It sizes and allocates every buffer once per call and
// runs the cells (rnn.h, lstm.h, gru.h) layer by layer, direction by direction.
//
// Layer k takes x (k = 0) or the previous layer's output [forward | reverse] (T, B, D*H)
// times dropout mask k-1; cell (k, d) is entry k*D + d of the weights and of the state
// arrays. The semantics are the backend contract's (/work/shared/contract.md): PyTorch's
// equations, lengths as pack_padded_sequence(enforce_sorted=False), the reverse direction
// of sequence b starting at its last valid step.
#pragma once
#include <cstdint>
#include <vector>

#include "rnnkit/memory_pool.h"

namespace rnnkit {

enum class Mode { rnn_tanh, rnn_relu, lstm, gru, gru_reset_before };

// Gate blocks G of a mode: 1 (rnn), 4 (lstm), 3 (gru).
std::int64_t gate_count(Mode mode);

struct StackDims {
  std::int64_t T = 0;  // time steps, >= 1
  std::int64_t B = 0;  // batch, >= 1
  std::int64_t I = 0;  // input features of layer 0, >= 0
  std::int64_t H = 0;  // hidden units, >= 1
  std::int64_t L = 0;  // layers, >= 1
  std::int64_t D = 0;  // directions, 1 or 2
  bool bias = false;   // whether cells have b_ih and b_hh
};

// One cell's parameters, read: w_ih (G*H, I_k) with I_0 = I and I_k = D*H for k > 0;
// w_hh (G*H, H); b_ih, b_hh (G*H,), or nullptr when !bias.
template <typename T>
struct CellWeights {
  const T* w_ih = nullptr;
  const T* w_hh = nullptr;
  const T* b_ih = nullptr;
  const T* b_hh = nullptr;
};

// One cell's parameter gradients, written (same shapes as CellWeights).
template <typename T>
struct CellGrads {
  T* dw_ih = nullptr;
  T* dw_hh = nullptr;
  T* db_ih = nullptr;
  T* db_hh = nullptr;
};

// What a training forward keeps for the backward. Self-contained: it holds copies of the
// weights, lengths, masks and layer-0 input, so later changes to the caller's arrays do
// not change the backward. Filled by stack_forward, read (never changed) by
// stack_backward, so one cache may be used by several backward calls, even concurrently.
template <typename T>
struct StackCache {
  Mode mode = Mode::lstm;
  StackDims dims;
  bool has_lengths = false;
  bool has_masks = false;
  std::vector<std::int64_t> lengths;  // (B,) when has_lengths
  PooledArray<T> storage;             // every buffer below lives here
  std::int64_t storage_size = 0;
  // Offsets into storage. Per layer k: input (T, B, I_k), after dropout. Per mask k:
  // (T, B, D*H). Per cell k*D + d: its weights (CellWeights layout) and what its forward
  // kept: gates (T, B, G*H), h_prev (T, B, H) (LSTM, GRU), h0 (B, H) (RNN, whose backward
  // takes h_{t-1} from its gates = h_t instead of h_prev), c_prev or reset-before GRU extra
  // (T, B, H), tanh_c (T, B, H) (see the cell headers); -1 where a mode has no such buffer.
  // RNN layers below the last keep no gates when there is no dropout: their h_t are their
  // columns of the next layer's input.
  struct CellOffsets {
    std::int64_t w_ih = -1, w_hh = -1, b_ih = -1, b_hh = -1;
    std::int64_t gates = -1, h_prev = -1, h0 = -1, saved1 = -1, saved2 = -1;
  };
  std::vector<std::int64_t> input_offsets;  // (L,)
  std::vector<std::int64_t> mask_offsets;   // (L-1,) when has_masks
  std::vector<CellOffsets> cells;           // (L*D,)

  // Storage (bytes) the cache holds.
  std::int64_t nbytes() const { return storage_size * static_cast<std::int64_t>(sizeof(T)); }
};

// Forward of the stack.
//   out     (T, B, D*H) written: the last layer's output, 0 past each sequence's length.
//   h_n     (L*D, B, H) written: each cell's state after each sequence's last valid step.
//   c_n     (L*D, B, H) written for Mode::lstm; nullptr otherwise.
//   cache   written when not nullptr (training): everything stack_backward needs; any
//           previous content is replaced. nullptr at inference (nothing kept).
//   x       (T, B, I) read.
//   h0      (L*D, B, H) read.  c0 (L*D, B, H) read for Mode::lstm; nullptr otherwise.
//   weights (L*D,) read, entry k*D + d.
//   lengths (B,) read, each in 1..T, or nullptr (every sequence has T steps).
//   masks   (L-1,) pointers to (T, B, D*H) arrays read, already scaled; or nullptr (no
//           dropout). Layer k+1's input is layer k's output times masks[k].
// Throws std::length_error when the buffers' sizes overflow, std::bad_alloc when they
// cannot be allocated; the output arrays are then unspecified.
template <typename T>
void stack_forward(T* out, T* h_n, T* c_n, StackCache<T>* cache, const T* x, const T* h0,
                   const T* c0, const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& dims);

// Backward of the stack from a training forward's cache.
//   dx     (T, B, I) written: dL/dx, 0 past each sequence's length.
//   dh0    (L*D, B, H) written.  dc0 (L*D, B, H) written for Mode::lstm, else nullptr.
//   grads  (L*D,) written, entry k*D + d; bias pointers nullptr when !bias.
//   cache  read.
//   dout   (T, B, D*H) read: dL/dout; ignored past each sequence's length.
//   dh_n   (L*D, B, H) read.  dc_n (L*D, B, H) read for Mode::lstm, else nullptr.
// Shapes are cache.dims.
template <typename T>
void stack_backward(T* dx, T* dh0, T* dc0, const CellGrads<T>* grads,
                    const StackCache<T>& cache, const T* dout, const T* dh_n, const T* dc_n);

}  // namespace rnnkit
