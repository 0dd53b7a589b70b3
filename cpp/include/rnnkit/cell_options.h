// The cell variants (ONNX's options of its RNN, LSTM and GRU operators), passed down from
// the stack to every cell of a call. Without them (nullptr) a cell runs its usual code.
//
//   act      the activations in ONNX's order: RNN f (for h); GRU f (r, z), g (n); LSTM f
//            (i, f, o), g (the candidate g), h (applied to c_t for the output). The
//            defaults are the kind's: tanh or relu; sigmoid, tanh; sigmoid, tanh, tanh.
//   clip     > 0: every gate's pre-activation (inputs + recurrent + biases, peepholes
//            included; the GRU's candidate after r * (.)) is clamped to [-clip, clip]
//            before its activation; 0: none.
//   peepholes  LSTM: the gates see the cell state through w_ph = [p_i, p_f, p_o] (3H,)
//            (CellWeights::w_ph): a_i += p_i * c_{t-1}, a_f += p_f * c_{t-1},
//            a_o += p_o * c_t.
//   input_forget  LSTM: f = 1 - i (the f rows of the weights are unused).
#pragma once

#include "rnnkit/activations.h"
#include "rnnkit/cell.h"

namespace rnnkit {

struct CellOptions {
  kernels::Activation act[3];
  double clip = 0;
  bool peepholes = false;
  bool input_forget = false;
};

// How many activations the cells of `mode` take (ONNX's count: 1, 3 or 2).
inline int activation_count(Mode mode) {
  switch (mode) {
    case Mode::rnn_tanh:
    case Mode::rnn_relu:
      return 1;
    case Mode::lstm:
      return 3;
    default:
      return 2;
  }
}

// Whether `o` changes nothing for `mode`: its usual cells run.
inline bool is_default(const CellOptions& o, Mode mode) {
  using K = kernels::ActivationKind;
  const K defaults[3] = {mode == Mode::rnn_tanh ? K::tanh
                                                : (mode == Mode::rnn_relu ? K::relu : K::sigmoid),
                         K::tanh, K::tanh};
  for (int q = 0; q < activation_count(mode); ++q) {
    if (o.act[q].kind != defaults[q]) return false;
  }
  return o.clip == 0 && !o.peepholes && !o.input_forget;
}

}  // namespace rnnkit
