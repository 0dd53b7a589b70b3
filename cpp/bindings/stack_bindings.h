// What the stack bindings share (bind_stack.cpp, bind_packed.cpp): mode names, the
// checks of a weight list, and the PackedStack object that stack_forward may be given.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "array_checks.h"
#include "rnnkit/cell_kinds.h"
#include "rnnkit/cell_options.h"
#include "rnnkit/stack.h"

namespace rnnkit::bindings {

using rnnkit::Mode;

inline std::string mode_name(Mode mode) { return rnnkit::cell_kind(mode).name; }

inline Mode parse_mode(const std::string& fn, const std::string& name) {
  if (const rnnkit::CellKind* kind = rnnkit::find_cell_kind(name)) return kind->mode;
  std::string valid;
  for (const rnnkit::CellKind& kind : rnnkit::kCellKinds) {
    valid += std::string(valid.empty() ? "" : ", ") + "'" + kind.name + "'";
  }
  throw py::value_error(fn + ": mode must be one of " + valid + ", got '" + name + "'");
}

// Cell i's parameter arrays (w_ih, w_hh, b_ih, b_hh, then the LSTM's optional w_hr, a
// projection, and w_ph, the peepholes) or their gradients: name suffixes, shapes and
// symbolic shapes.
struct CellShapes {
  std::string parts[6];
  std::vector<i64> shapes[6];
  std::string descs[6];
};
inline CellShapes cell_shapes(const rnnkit::StackDims& s, i64 G, i64 i, const char* prefix) {
  const bool proj = s.P > 0;
  const i64 R = proj ? s.P : s.H;
  const i64 GH = G * s.H, in_k = i < s.D ? s.I : s.D * R;
  const char* names[6] = {"w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "w_ph"};
  CellShapes c;
  for (int j = 0; j < 6; ++j) {
    c.parts[j] = "[" + std::to_string(j) + "] (" + prefix + names[j] + ")";
  }
  c.shapes[0] = {GH, in_k};
  c.shapes[1] = {GH, R};
  c.shapes[2] = c.shapes[3] = {GH};
  c.shapes[4] = {s.P, s.H};
  c.shapes[5] = {3 * s.H};
  c.descs[0] = i < s.D ? "(G*H, I)" : (proj ? "(G*H, D*P)" : "(G*H, D*H)");
  c.descs[1] = proj ? "(G*H, P)" : "(G*H, H)";
  c.descs[2] = c.descs[3] = "(G*H,)";
  c.descs[4] = "(P, H)";
  c.descs[5] = "(3H,)";
  return c;
}

// Items of a grads entry (stack_backward): 4; 5 with a projection (item 4: dw_hr); 6 with
// peepholes (item 4: dw_hr, or None without a projection; item 5: dw_ph).
inline size_t grad_items(const rnnkit::StackDims& s, bool peepholes) {
  return peepholes ? 6 : (s.P > 0 ? 5 : 4);
}

// The weights' L*D entries (w_ih, w_hh, b_ih | None, b_hh | None), for the LSTM with
// optional trailing items (.., w_hr | None) or (.., w_hr | None, w_ph | None): item 4 the
// projection w_hr (P, H), item 5 the peepholes w_ph (3H,), which go to CellWeights::w_hr
// and w_ph (stack_forward checks that the options ask for the peepholes). Each entry is
// checked against s (s.I given; s.L, s.H, s.P and s.bias are set from the entries).
// `cells` receives the Python objects, which the caller keeps alive while the pointers
// are used.
template <typename T>
std::vector<rnnkit::CellWeights<T>> parse_weights(const std::string& fn, Mode mode,
                                                  const std::vector<py::object>& entries,
                                                  i64 D, rnnkit::StackDims& s, Checked& args,
                                                  std::vector<std::vector<py::object>>& cells) {
  const i64 n_entries = static_cast<i64>(entries.size());
  if (n_entries < D || n_entries % D != 0) {
    throw py::value_error(fn + "weights must hold L*D entries with L >= 1 and D = " +
                          std::to_string(D) + ", got " + std::to_string(n_entries));
  }
  s.L = n_entries / D;
  const i64 G = rnnkit::cell_kind(mode).gates;
  const bool may_extend = mode == Mode::lstm;  // w_hr and w_ph are the LSTM's
  for (i64 i = 0; i < n_entries; ++i) {
    const std::string name = fn + "weights[" + std::to_string(i) + "]";
    cells.push_back(as_items(entries[i], name));
    const size_t n = cells.back().size();
    if (n != 4 && !((n == 5 || n == 6) && may_extend)) {
      throw py::value_error(name + " must be a tuple (w_ih, w_hh, b_ih, b_hh" +
                            (may_extend ? "[, w_hr | None[, w_ph | None]])" : ")") +
                            ", got " + std::to_string(n) + " items");
    }
    if (n != cells[0].size()) {
      throw py::value_error(name + " has " + std::to_string(n) + " items but weights[0] has " +
                            std::to_string(cells[0].size()));
    }
  }
  const py::array w_hh0 = as_array(cells[0][1], fn + "weights[0][1] (w_hh)");
  const bool proj = cells[0].size() >= 5 && !cells[0][4].is_none();
  if (proj) {
    // W_hh (4H, P) and W_hr (P, H) with 1 <= P < H.
    const py::array w_hr0 = as_array(cells[0][4], fn + "weights[0][4] (w_hr)");
    if (w_hh0.ndim() != 2 || w_hh0.shape(0) < G || w_hh0.shape(0) % G != 0 ||
        w_hr0.ndim() != 2 || w_hr0.shape(0) != w_hh0.shape(1) ||
        w_hr0.shape(1) != w_hh0.shape(0) / G || w_hr0.shape(0) < 1 ||
        w_hr0.shape(0) >= w_hr0.shape(1)) {
      throw py::value_error(fn + "weights[0][1] (w_hh) and weights[0][4] (w_hr) must have "
                            "shapes (4*H, P) and (P, H) with 1 <= P < H, got " +
                            shape_str(shape_of(w_hh0)) + " and " + shape_str(shape_of(w_hr0)));
    }
    s.H = w_hr0.shape(1);
    s.P = w_hr0.shape(0);
  } else {
    if (w_hh0.ndim() != 2 || w_hh0.shape(1) < 1 || w_hh0.shape(0) != G * w_hh0.shape(1)) {
      throw py::value_error(fn + "weights[0][1] (w_hh) must have shape (G*H, H) with H >= 1 "
                            "and G = " + std::to_string(G) + " for mode '" + mode_name(mode) +
                            "', got " + shape_str(shape_of(w_hh0)));
    }
    s.H = w_hh0.shape(1);
    s.P = 0;
  }
  s.bias = !cells[0][2].is_none();

  std::vector<rnnkit::CellWeights<T>> weights(n_entries);
  for (i64 i = 0; i < n_entries; ++i) {
    const std::string name = fn + "weights[" + std::to_string(i) + "]";
    const CellShapes c = cell_shapes(s, G, i, "");
    const T* arrays[6] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < static_cast<int>(cells[i].size()); ++j) {
      const bool is_bias = j == 2 || j == 3;
      if (is_bias && cells[i][j].is_none() == s.bias) {
        throw py::value_error(name + c.parts[j] +
                              (s.bias ? " is None but weights[0] has biases"
                                      : " is given but weights[0][2] is None"));
      }
      if (j == 4 && cells[i][j].is_none() == proj) {
        throw py::value_error(name + c.parts[j] +
                              (proj ? " is None but weights[0] has a projection w_hr"
                                    : " is given but weights[0][4] is None"));
      }
      if (j >= 2 && cells[i][j].is_none()) continue;  // no bias, projection or peepholes
      arrays[j] = args.get<T>(cells[i][j], name + c.parts[j], c.shapes[j], c.descs[j]);
    }
    weights[i] = {arrays[0], arrays[1], arrays[2], arrays[3]};
    weights[i].w_hr = arrays[4];
    weights[i].w_ph = arrays[5];
  }

  return weights;
}

// The activation named `name` (ONNX's names, as rnnkit.activations spells them).
inline rnnkit::kernels::ActivationKind activation_kind(const std::string& fn,
                                                      const std::string& name) {
  using K = rnnkit::kernels::ActivationKind;
  static const std::pair<const char*, K> kNames[] = {
      {"Sigmoid", K::sigmoid},         {"Tanh", K::tanh},
      {"Relu", K::relu},               {"HardSigmoid", K::hard_sigmoid},
      {"LeakyRelu", K::leaky_relu},    {"ThresholdedRelu", K::thresholded_relu},
      {"ScaledTanh", K::scaled_tanh},  {"Affine", K::affine},
      {"Elu", K::elu},                 {"Softsign", K::softsign},
      {"Softplus", K::softplus}};
  for (const auto& [known, kind] : kNames) {
    if (name == known) return kind;
  }
  throw py::value_error(fn + "options: unknown activation '" + name + "'");
}

// The options argument of stack_forward: None, or ([(name, alpha, beta), ...], clip,
// peepholes, input_forget, reverse) (rnnkit._cell_options.CellOptions.to_core). Sets
// s.reverse; returns whether any cell variant is asked for (else `o` is unused).
inline bool parse_options(const std::string& fn, py::handle obj, Mode mode, rnnkit::StackDims& s,
                   rnnkit::CellOptions& o) {
  if (obj.is_none()) return false;
  const auto items = as_items(obj, fn + "options");
  if (items.size() != 5) {
    throw py::value_error(fn + "options must be a tuple (activations, clip, peepholes, "
                          "input_forget, reverse), got " + std::to_string(items.size()) +
                          " items");
  }
  const auto acts = as_items(items[0], fn + "options[0] (activations)");
  const int count = rnnkit::activation_count(mode);
  if (static_cast<int>(acts.size()) != count) {
    throw py::value_error(fn + "options: mode '" + mode_name(mode) + "' takes " +
                          std::to_string(count) + " activations, got " +
                          std::to_string(acts.size()));
  }
  for (int q = 0; q < count; ++q) {
    const auto act = as_items(acts[q], fn + "options[0][" + std::to_string(q) + "]");
    if (act.size() != 3) {
      throw py::value_error(fn + "options: an activation is (name, alpha, beta)");
    }
    o.act[q] = {activation_kind(fn, act[0].cast<std::string>()), act[1].cast<double>(),
                act[2].cast<double>()};
  }
  o.clip = items[1].cast<double>();
  if (!(o.clip >= 0) || o.clip == std::numeric_limits<double>::infinity()) {
    throw py::value_error(fn + "options: clip must be finite and >= 0 (0: none)");
  }
  o.peepholes = items[2].cast<bool>();
  o.input_forget = items[3].cast<bool>();
  s.reverse = items[4].cast<bool>();
  if ((o.peepholes || o.input_forget) && mode != Mode::lstm) {
    throw py::value_error(fn + "options: peepholes and input_forget are the LSTM's, got mode '" +
                          mode_name(mode) + "'");
  }
  if (s.reverse && s.D != 1) {
    throw py::value_error(fn + "options: reverse needs num_directions = 1");
  }
  return !rnnkit::is_default(o, mode);
}

// The packed weights of one stack (rnnkit._core.PackedStack): float32 or float64.
struct PyPackedStack {
  std::shared_ptr<rnnkit::PackedStack<float>> f32;
  std::shared_ptr<rnnkit::PackedStack<double>> f64;
  // The weight arrays it was packed from, each entry's items in order (4 per cell, more
  // with w_hr / w_ph; None for absent ones), kept alive for PackedStack.step, which reads
  // their biases (bind_packed.cpp).
  std::vector<py::object> arrays;
};

template <typename T>
std::shared_ptr<rnnkit::PackedStack<T>>& packed_of(PyPackedStack& p) {
  if constexpr (std::is_same_v<T, float>) {
    return p.f32;
  } else {
    return p.f64;
  }
}

// The PackedStack argument of stack_forward checked against the call, or nullptr (None).
template <typename T>
rnnkit::PackedStack<T>* packed_for(py::handle obj, Mode mode, const rnnkit::StackDims& s) {
  if (obj.is_none()) return nullptr;
  const std::string fn = "stack_forward: packed ";
  if (!py::isinstance<PyPackedStack>(obj)) {
    throw py::type_error(fn + "must be a PackedStack or None, got " + type_name(obj));
  }
  auto& p = packed_of<T>(obj.cast<PyPackedStack&>());
  const bool same = p && p->mode == mode && p->dims.L == s.L && p->dims.D == s.D &&
                    p->dims.I == s.I && p->dims.H == s.H && p->dims.P == s.P &&
                    p->dims.bias == s.bias;
  if (!same) {
    throw py::value_error(fn + "was not packed from weights of this mode, dtype and shape");
  }
  return p.get();
}

}  // namespace rnnkit::bindings
