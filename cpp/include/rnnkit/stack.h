// The stack: L layers x D directions over one batch of variable-length sequences, with
// dropout masks between layers. It sizes and allocates every buffer once per call and
// runs the cells (cell_kinds.h) layer by layer, direction by direction.
//
// R = H, or P for an LSTM with a projection (dims.h): the width of h and of each
// direction's output; c stays (B, H).
//
// Layer k takes x (k = 0) or the previous layer's output [forward | reverse] (T, B, D*R)
// times dropout mask k-1; cell (k, d) is entry k*D + d of the weights and of the state
// arrays. The semantics are PyTorch's: its equations, lengths as
// pack_padded_sequence(enforce_sorted=False), the reverse direction of sequence b starting
// at its last valid step. The NumPy reference (python/rnnkit/reference/stack.py)
// implements the same two functions.
#pragma once
#include <cstdint>
#include <vector>

#include "rnnkit/cell.h"
#include "rnnkit/cell_options.h"
#include "rnnkit/gemm.h"
#include "rnnkit/memory_pool.h"

namespace rnnkit {

struct StackDims {
  std::int64_t T = 0;  // time steps, >= 1
  std::int64_t B = 0;  // batch, >= 1
  std::int64_t I = 0;  // input features of layer 0, >= 0
  std::int64_t H = 0;  // hidden units, >= 1
  std::int64_t P = 0;  // LSTM projection size, 1..H-1; 0: none
  std::int64_t L = 0;  // layers, >= 1
  std::int64_t D = 0;  // directions, 1 or 2
  bool bias = false;   // whether cells have b_ih and b_hh
  bool reverse = false;  // D = 1 only: the one direction runs as a reverse direction does
};

// What a training forward keeps for the backward. It holds copies of the lengths and
// dropout masks, so later changes to those caller arrays do not change the backward. It
// does NOT copy the layer-0 input x, the weights nor, where the kind's backward reads it
// (CellKind::backward_reads_out: the RNN's last layer its h_t, the GRU's its h_{t-1}),
// the returned output out: it keeps pointers to the caller's arrays, which the caller
// keeps alive and unchanged until the last backward (as PyTorch's autograd does with
// saved tensors: an optimiser step belongs after the backward), and their checksums
// (checksum.h); stack_backward recomputes them first and throws std::runtime_error if any
// array was modified in place. Where the backward does not read out (the LSTM), the cache
// does not reference it (out is nullptr).
// Filled by stack_forward, read (never changed) by stack_backward, so one cache may be
// used by several backward calls, even concurrently.
template <typename T>
struct StackCache {
  Mode mode = Mode::lstm;
  StackDims dims;
  bool has_lengths = false;
  bool has_masks = false;
  std::vector<std::int64_t> lengths;  // (B,) when has_lengths
  const T* x = nullptr;               // (T, B, I) the caller's x, read by reference
  const T* out = nullptr;             // (T, B, D*H) the caller's out, read by reference
                                      // where the backward reads it, else nullptr
  std::uint64_t x_checksum = 0;       // buffer_checksum of x after the forward
  std::uint64_t out_checksum = 0;     // buffer_checksum of out after the forward
  std::vector<CellWeights<T>> weights;  // (L*D,) the caller's weights, read by reference
  // (L*D*kCellWeightArrays,) buffer_checksum of weights[i]'s w_ih, w_hh, b_ih, b_hh, w_hr
  // (0 for absent arrays)
  std::vector<std::uint64_t> weight_checksums;
  bool has_options = false;  // the forward ran the cell variants of `options`
  CellOptions options;
  // (L*D,) buffer_checksum of weights[i].w_ph, with options.peepholes
  std::vector<std::uint64_t> peephole_checksums;
  PooledArray<T> storage;             // every buffer below lives here
  std::int64_t storage_size = 0;
  // Offsets into storage (the layout is stack_cache.cpp's). Per layer k > 0: its input
  // (T, B, I_k), after dropout (layer 0's is x, referenced; its offset is -1). Per mask k:
  // (T, B, D*R). Per cell k*D + d: the buffers its forward keeps (cell.h StateBuffers,
  // which the cell kind's facts select: cell_kinds.h; proj_in with a projection), each
  // (T, B, H) except gates (T, B, G*H), h_prev (T, B, R) and h0 (B, R), the initial
  // state, kept where the backward reads h_{t-1} from the outputs instead of h_prev; -1
  // where the cell keeps no such buffer. An RNN cell keeps no gates where its h_t are
  // kept elsewhere: the last layer's are its columns of out; without dropout, a lower
  // layer's are its columns of the next layer's input.
  // With cell options every cell keeps pre (T, B, ld_pre) (cell.h StateBuffers::pre).
  struct CellOffsets {
    std::int64_t gates = -1, h_prev = -1, h0 = -1, c_prev = -1, tanh_c = -1, reset_h = -1,
                 h_w_hn = -1, proj_in = -1;
    std::int64_t pre = -1;
  };
  std::vector<std::int64_t> input_offsets;  // (L,)
  std::vector<std::int64_t> mask_offsets;   // (L-1,) when has_masks
  std::vector<CellOffsets> cells;           // (L*D,)

  // Storage (bytes) the cache holds.
  std::int64_t nbytes() const { return storage_size * static_cast<std::int64_t>(sizeof(T)); }
};

// The forward's packed copies of a stack's weights, kept across calls: packing W_ih and
// W_hh reads and writes every weight, far more work than a call over a few rows (one step
// of streaming). Entry k*D + d. pack_stack fills it from the weights and records their
// checksums; stack_forward uses it as the caller says it still matches the weights (at
// inference the caller guarantees it; in training the forward computes the checksums
// anyway and repacks when they differ). The reset-before GRU packs its W_hh in two blocks
// of its own, so its w_hh entries stay empty.
template <typename T>
struct PackedStack {
  Mode mode = Mode::lstm;
  StackDims dims;                         // of the weights (T and B unused)
  std::vector<kernels::PackedB<T>> w_ih;  // (L*D,) W_ih^T (I_k, G*H)
  std::vector<kernels::PackedB<T>> w_hh;  // (L*D,) W_hh^T (R, G*H), or empty
  std::vector<kernels::PackedB<T>> w_hr;  // (L*D,) W_hr^T (H, P), or empty (P = 0)
  std::vector<std::uint64_t> checksums;   // as StackCache::weight_checksums
};

// Packs `weights` (L*D,) of a stack with dims.L, D, I, H, P, bias into `packed`, replacing
// what it held.
template <typename T>
void pack_stack(PackedStack<T>& packed, const CellWeights<T>* weights, Mode mode,
                const StackDims& dims);

// Forward of the stack.
//   out     (T, B, D*R) written: the last layer's output, 0 past each sequence's length.
//   h_n     (L*D, B, R) written: each cell's state after each sequence's last valid step.
//   c_n     (L*D, B, H) written for a kind with a cell state (the LSTM); else nullptr.
//   cache   written when not nullptr (training): everything stack_backward needs; any
//           previous content is replaced. nullptr at inference (nothing kept). It
//           references x, the weights and (RNN, GRU modes) out: they must outlive it and
//           stay unchanged (checked by stack_backward).
//   x       (T, B, I) read.
//   h0      (L*D, B, R) read.  c0 (L*D, B, H) read likewise; else nullptr.
//   weights (L*D,) read, entry k*D + d.
//   lengths (B,) read, each in 1..T, or nullptr (every sequence has T steps).
//   masks   (L-1,) pointers to (T, B, D*R) arrays read, already scaled; or nullptr (no
//           dropout). Layer k+1's input is layer k's output times masks[k].
//   packed  the weights' packed copies (from pack_stack), or nullptr (packed per call).
//           At inference they must match the weights; in training they are repacked
//           first when the weights' checksums differ from the ones packed.
//   options the cell variants (cell_options.h), or nullptr (the usual cells); with
//           peepholes every weights entry has its w_ph. The cache keeps a copy.
// Throws std::length_error when the buffers' sizes overflow, std::bad_alloc when they
// cannot be allocated; the output arrays are then unspecified.
template <typename T>
void stack_forward(T* out, T* h_n, T* c_n, StackCache<T>* cache, const T* x, const T* h0,
                   const T* c0, const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& dims,
                   PackedStack<T>* packed = nullptr, const CellOptions* options = nullptr);

// Backward of the stack from a training forward's cache.
//   dx     (T, B, I) written: dL/dx, 0 past each sequence's length.
//   dh0    (L*D, B, R) written.  dc0 (L*D, B, H) written likewise, else nullptr.
//   grads  (L*D,) entry k*D + d, written, or added to when accumulate_grads; bias
//          pointers nullptr when !bias; dw_ph given exactly with peepholes. They must
//          not overlap any other argument.
//          Accumulated, every cell adds its products chunk by chunk in a fixed order (into
//          zeros that gives the written bits; into other values the same sum up to
//          rounding).
//   cache  read.
//   dout   (T, B, D*R) read: dL/dout; ignored past each sequence's length.
//   dh_n   (L*D, B, R) read.  dc_n (L*D, B, H) read likewise, else nullptr.
// Shapes are cache.dims. Throws std::runtime_error, before writing anything, when x, a
// weight or (RNN, GRU modes) out, referenced by the cache, no longer has the checksum the
// forward recorded; the message names the array (a weight by PyTorch's parameter name).
template <typename T>
void stack_backward(T* dx, T* dh0, T* dc0, const CellGrads<T>* grads, bool accumulate_grads,
                    const StackCache<T>& cache, const T* dout, const T* dh_n, const T* dc_n);

}  // namespace rnnkit
