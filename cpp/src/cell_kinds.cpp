// The table of cell kinds (cell_kinds.h).
#include "rnnkit/cell_kinds.h"

#include "cell_common.h"
#include "rnnkit/gru.h"
#include "rnnkit/lstm.h"
#include "rnnkit/rnn.h"

namespace rnnkit {

// Columns: mode, name, gates, gate names, has_cell_state, keeps_h_prev, keeps_c_prev,
// keeps_tanh_c, keeps_reset_h, keeps_h_w_hn, backward_reads_out, gates_are_h,
// needs_dgates_h.
const CellKind kCellKinds[kNumCellKinds] = {
    {Mode::rnn_tanh, "rnn_tanh", 1, {"h"}, false, false, false, false, false, false, true,
     true, false},
    {Mode::rnn_relu, "rnn_relu", 1, {"h"}, false, false, false, false, false, false, true,
     true, false},
    {Mode::lstm, "lstm", 4, {"i", "f", "g", "o"}, true, true, true, true, false, false, false,
     false, false},
    {Mode::gru, "gru", 3, {"r", "z", "n"}, false, true, false, false, false, true, true, false,
     true},
    {Mode::gru_reset_before, "gru_reset_before", 3, {"r", "z", "n"}, false, true, false,
     false, true, false, true, false, false},
};

const CellKind* find_cell_kind(const std::string& name) {
  for (const CellKind& kind : kCellKinds) {
    if (name == kind.name) return &kind;
  }
  return nullptr;
}

std::string parameter_name(int j, std::int64_t k, std::int64_t d) {
  return std::string(j == 4 ? kProjectionKind : kParameterKinds[j]) + "_l" + std::to_string(k) +
         (d == 1 ? "_reverse" : "");
}

std::int64_t backward_chunk_rows(const Dims& d) {
  return detail::backward_chunk_steps(d) * d.B;
}

template <typename T>
const CellOps<T>& cell_ops(Mode mode) {
  // In Mode's order, as kCellKinds.
  static const CellOps<T> ops[kNumCellKinds] = {rnn_tanh_ops<T>(), rnn_relu_ops<T>(),
                                                lstm_ops<T>(), gru_ops<T>(),
                                                gru_reset_before_ops<T>()};
  return ops[static_cast<int>(mode)];
}

template const CellOps<float>& cell_ops<float>(Mode);
template const CellOps<double>& cell_ops<double>(Mode);

}  // namespace rnnkit
