// What the stack bindings share (bind_stack.cpp, bind_packed.cpp): mode names, the
// checks of a weight list, and the PackedStack object that stack_forward may be given.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "array_checks.h"
#include "rnnkit/cell_kinds.h"
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

// Cell i's parameter arrays (w_ih, w_hh, b_ih, b_hh and, with a projection, w_hr) or
// their gradients: name suffixes, shapes and symbolic shapes.
struct CellShapes {
  std::string parts[5];
  std::vector<i64> shapes[5];
  std::string descs[5];
};
inline CellShapes cell_shapes(const rnnkit::StackDims& s, i64 G, i64 i, const char* prefix) {
  const bool proj = s.P > 0;
  const i64 R = proj ? s.P : s.H;
  const i64 GH = G * s.H, in_k = i < s.D ? s.I : s.D * R;
  const char* names[5] = {"w_ih", "w_hh", "b_ih", "b_hh", "w_hr"};
  CellShapes c;
  for (int j = 0; j < 5; ++j) {
    c.parts[j] = "[" + std::to_string(j) + "] (" + prefix + names[j] + ")";
  }
  c.shapes[0] = {GH, in_k};
  c.shapes[1] = {GH, R};
  c.shapes[2] = c.shapes[3] = {GH};
  c.shapes[4] = {s.P, s.H};
  c.descs[0] = i < s.D ? "(G*H, I)" : (proj ? "(G*H, D*P)" : "(G*H, D*H)");
  c.descs[1] = proj ? "(G*H, P)" : "(G*H, H)";
  c.descs[2] = c.descs[3] = "(G*H,)";
  c.descs[4] = "(P, H)";
  return c;
}

// Items per weights (or grads) entry: 4, or 5 with a projection.
inline size_t cell_items(const rnnkit::StackDims& s) { return s.P > 0 ? 5 : 4; }

// The cell state argument (c0, dc_n) of a kind with a cell state, else None.
// The weights' L*D entries (w_ih, w_hh, b_ih | None, b_hh | None), for the LSTM with an
// optional fifth item w_hr (P, H), a projection; each checked against s (s.I given; s.L,
// s.H, s.P and s.bias are set from the entries). `cells` receives the
// Python objects, which the caller keeps alive while the pointers are used.
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
  const bool may_project = mode == Mode::lstm;
  for (i64 i = 0; i < n_entries; ++i) {
    const std::string name = fn + "weights[" + std::to_string(i) + "]";
    cells.push_back(as_items(entries[i], name));
    const size_t n = cells.back().size();
    if (n != 4 && !(n == 5 && may_project)) {
      throw py::value_error(name + " must be a tuple (w_ih, w_hh, b_ih, b_hh" +
                            (may_project ? "[, w_hr])" : ")") + ", got " + std::to_string(n) +
                            " items");
    }
    if (n != cells[0].size()) {
      throw py::value_error(name + " has " + std::to_string(n) + " items but weights[0] has " +
                            std::to_string(cells[0].size()));
    }
  }
  const py::array w_hh0 = as_array(cells[0][1], fn + "weights[0][1] (w_hh)");
  const bool proj = cells[0].size() == 5;
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
    const T* arrays[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < static_cast<int>(cell_items(s)); ++j) {
      const bool is_bias = j == 2 || j == 3;
      if (is_bias && cells[i][j].is_none() == s.bias) {
        throw py::value_error(name + c.parts[j] +
                              (s.bias ? " is None but weights[0] has biases"
                                      : " is given but weights[0][2] is None"));
      }
      if (!is_bias || s.bias) {
        arrays[j] = args.get<T>(cells[i][j], name + c.parts[j], c.shapes[j], c.descs[j]);
      }
    }
    weights[i] = {arrays[0], arrays[1], arrays[2], arrays[3]};
    weights[i].w_hr = arrays[4];
  }

  return weights;
}

// The packed weights of one stack (rnnkit._core.PackedStack): float32 or float64.
struct PyPackedStack {
  std::shared_ptr<rnnkit::PackedStack<float>> f32;
  std::shared_ptr<rnnkit::PackedStack<double>> f64;
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
