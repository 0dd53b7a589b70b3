// Sizes shared by the cells (cell.h): one layer, one direction, the whole sequence,
// time-major contiguous buffers.
//
// Conventions used by every cell header:
//   - "(T, B, I)" is a row-major buffer of T*B rows of I elements; row t*B + b holds time
//     step t of sequence b.
//   - R = h_size(d) is the width of the state h and of the output: H, or P for an LSTM
//     with a projection (h_t = (o_t * tanh(c_t)) W_hr^T, W_hr (P, H); c stays H wide).
//   - The cell's output rows have stride `ldo` (>= R) so that the two directions of a
//     layer write side by side into one (T, B, D*R) buffer: the forward direction at
//     column 0, the reverse direction at column R, ldo = D*R.
//   - G is the number of gate blocks of the cell kind (cell_kinds.h); gate buffers are
//     (.., G*H) with the blocks side by side, in PyTorch's order.
//   - lengths: nullptr (every sequence has T steps) or (B,) with each value in 1..T.
//     Step t of sequence b is active when t < lengths[b]. At an inactive step a sequence
//     keeps its state and writes a zero output; the reverse direction therefore starts
//     sequence b at its last valid step lengths[b]-1, from h0.
#pragma once
#include <cstdint>

namespace rnnkit {

struct Dims {
  std::int64_t T = 0;    // time steps, >= 1
  std::int64_t B = 0;    // batch size, >= 1
  std::int64_t I = 0;    // input features (row length of x), >= 0
  std::int64_t H = 0;    // hidden units, >= 1
  std::int64_t P = 0;    // LSTM projection size, 1..H-1; 0: no projection
  std::int64_t ldo = 0;  // row stride of out / dout, >= h_size(*this)
  bool reverse = false;  // false: t = 0 .. T-1; true: t = T-1 .. 0
};

// R: the width of h and of the output, P with a projection, else H.
inline std::int64_t h_size(const Dims& d) { return d.P > 0 ? d.P : d.H; }

// True when step t of sequence b is inside the sequence.
inline bool step_active(const std::int64_t* lengths, std::int64_t b, std::int64_t t) {
  return lengths == nullptr || t < lengths[b];
}

}  // namespace rnnkit
