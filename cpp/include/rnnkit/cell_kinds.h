// The table of cell kinds: the one place that lists the kinds and their facts (gate
// count and names, cell state, what a training forward keeps, what the backward reads)
// and maps each to its entry points. The stack, its cache layout and the bindings derive
// everything from it.
#pragma once
#include <cstdint>
#include <string>

#include "rnnkit/cell.h"

namespace rnnkit {

struct CellKind {
  Mode mode;
  const char* name;             // "lstm", ...: the mode's name in Python
  int gates;                    // G: gate blocks of H columns in W_ih, W_hh, b_ih, b_hh
  const char* gate_names[4];    // PyTorch's gate order, `gates` of them
  bool has_cell_state;          // the LSTM's c beside h (c0, c_n, dc0, dc_n)
  // What a training forward keeps per cell besides its gate activations (T, B, G*H),
  // each (T, B, H) (StateBuffers): h_{t-1}; the LSTM's c_{t-1} and tanh(c_t); the
  // reset-before GRU's r * h_{t-1}; the reset-after GRU's h_{t-1} W_hn^T + b_hn.
  bool keeps_h_prev;
  bool keeps_c_prev;
  bool keeps_tanh_c;
  bool keeps_reset_h;
  bool keeps_h_w_hn;
  // The backward reads the outputs h_t (the last layer's: the returned out, which the
  // cache then references): the RNN as its gates (gates_are_h), the GRU's last layer,
  // which keeps h0 instead of h_prev, as h_{t-1}.
  bool backward_reads_out;
  // The single gate is h_t itself: where a layer's output is kept anyway (the last
  // layer's out; without dropout, the next layer's input), the cell keeps no gates and
  // keeps h0 (B, H) instead of h_prev.
  bool gates_are_h;
  // The backward needs the dgates_h workspace (reset-after GRU: dL/d(h W_hn^T + b_hn)).
  bool needs_dgates_h;
};

constexpr int kNumCellKinds = 5;

// The kinds, in Mode's order.
extern const CellKind kCellKinds[kNumCellKinds];

inline const CellKind& cell_kind(Mode mode) { return kCellKinds[static_cast<int>(mode)]; }

// The kind named `name`, or nullptr.
const CellKind* find_cell_kind(const std::string& name);

// The kinds of a cell's parameters, in the order of CellWeights (w_ih, w_hh, b_ih, b_hh),
// as PyTorch names them: parameter j of layer k is kParameterKinds[j] + "_l" + k, with
// "_reverse" for the reverse direction.
constexpr const char* kParameterKinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
// An LSTM projection's W_hr (P, H), parameter j = 4 (after the four above).
constexpr const char* kProjectionKind = "weight_hr";

// PyTorch's name of parameter j (0..4, 4: W_hr) of layer k, direction d.
std::string parameter_name(int j, std::int64_t k, std::int64_t d);

// The entry points of `mode`'s cells for dtype T (float or double).
template <typename T>
const CellOps<T>& cell_ops(Mode mode);

}  // namespace rnnkit
