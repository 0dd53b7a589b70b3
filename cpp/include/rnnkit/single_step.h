// One time step of a one-direction stack at inference, for streaming (a module's `step`,
// a cell's call, a sequence call with T = 1): the stack's forward (stack.h) without what
// only longer or training calls need (lengths, dropout, the training cache, a scratch
// buffer sized per call). It runs each layer's cell once through the same entry points
// as stack_forward with T = 1, so its results are the same bits.
#pragma once
#include <cstdint>

#include "rnnkit/cell.h"
#include "rnnkit/stack.h"

namespace rnnkit {

// Multiply-adds of one step of a stack with dims.L layers, dims.B rows, G gate blocks:
// sum over layers of B * G*H * (I_k + H). For callers choosing how to run a step.
std::int64_t step_multiply_adds(Mode mode, const StackDims& dims);

// One step of a stack with dims.D == 1 and dims.T == 1, weights packed in `packed`
// (pack_stack of these same weights: the caller guarantees they still match).
//   out     (B, H) written: the last layer's h_t; or nullptr (not wanted: h_n holds it).
//   h       (L, B, H) read as h0, written as h_n.
//   c       (L, B, H) likewise for a kind with a cell state (the LSTM); else nullptr.
//   x       (B, I) read.
//   weights (L,) read: the biases (the packed copies stand for w_ih and w_hh).
// Scratch comes from a buffer of the calling thread, kept for its next step. Throws
// std::length_error when the buffers' sizes overflow, std::bad_alloc when they cannot be
// allocated.
template <typename T>
void stack_step(T* out, T* h, T* c, const T* x, const CellWeights<T>* weights,
                const PackedStack<T>& packed, Mode mode, const StackDims& dims);

}  // namespace rnnkit
