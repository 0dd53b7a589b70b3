// Bindings of the stack (stack.h): rnnkit._core.stack_forward, stack_backward and the
// StackCache class they pass between them (and, through bind_cells.cpp, the facts of the
// table of cell kinds).
//
// Thin: the modules (Python) check the user's input and own its messages. These checks
// only keep the core safe when it is called directly: every array a numpy.ndarray of
// exactly the compute dtype, C-contiguous and aligned, with shapes consistent with x and
// the weights, lengths in range, gradients writeable and overlapping nothing the backward
// reads (TypeError / ValueError naming the argument, never a crash). Then they allocate
// the results, release the GIL and call the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "array_checks.h"
#include "rnnkit/cell_kinds.h"
#include "rnnkit/stack.h"

namespace py = pybind11;

void bind_cell_kinds(py::module_& m);  // bind_cells.cpp

namespace {

using rnnkit::Mode;
using rnnkit::bindings::as_array;
using rnnkit::bindings::as_items;
using rnnkit::bindings::Checked;
using rnnkit::bindings::i64;
using rnnkit::bindings::overlaps;
using rnnkit::bindings::shape_of;
using rnnkit::bindings::shape_str;
using rnnkit::bindings::type_name;

std::string mode_name(Mode mode) { return rnnkit::cell_kind(mode).name; }

Mode parse_mode(const std::string& fn, const std::string& name) {
  if (const rnnkit::CellKind* kind = rnnkit::find_cell_kind(name)) return kind->mode;
  std::string valid;
  for (const rnnkit::CellKind& kind : rnnkit::kCellKinds) {
    valid += std::string(valid.empty() ? "" : ", ") + "'" + kind.name + "'";
  }
  throw py::value_error(fn + ": mode must be one of " + valid + ", got '" + name + "'");
}

// Cell i's four parameter arrays (w_ih, w_hh, b_ih, b_hh) or their gradients: name
// suffixes, shapes and symbolic shapes.
struct CellShapes {
  std::string parts[4];
  std::vector<i64> shapes[4];
  std::string descs[4];
};
CellShapes cell_shapes(const rnnkit::StackDims& s, i64 G, i64 i, const char* prefix) {
  const i64 GH = G * s.H, in_k = i < s.D ? s.I : s.D * s.H;
  const char* names[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
  CellShapes c;
  for (int j = 0; j < 4; ++j) {
    c.parts[j] = "[" + std::to_string(j) + "] (" + prefix + names[j] + ")";
  }
  c.shapes[0] = {GH, in_k};
  c.shapes[1] = {GH, s.H};
  c.shapes[2] = c.shapes[3] = {GH};
  c.descs[0] = i < s.D ? "(G*H, I)" : "(G*H, D*H)";
  c.descs[1] = "(G*H, H)";
  c.descs[2] = c.descs[3] = "(G*H,)";
  return c;
}

// The cell state argument (c0, dc_n) of a kind with a cell state, else None.
template <typename T>
const T* cell_state(Checked& args, py::handle obj, const std::string& fn,
                    const std::string& name, Mode mode, const rnnkit::StackDims& s) {
  if (!rnnkit::cell_kind(mode).has_cell_state) {
    if (!obj.is_none()) {
      throw py::value_error(fn + name + " must be None for mode '" + mode_name(mode) + "'");
    }
    return nullptr;
  }
  if (obj.is_none()) {
    throw py::value_error(fn + name + " is required for mode '" + mode_name(mode) + "'");
  }
  return args.get<T>(obj, fn + name, {s.L * s.D, s.B, s.H}, "(L*D, B, H)");
}

template <typename T>
py::array_t<T> new_array(std::initializer_list<i64> shape) {
  return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

// The Python-side cache: a float32 or float64 StackCache, and the x, weight and (where
// the backward reads it) out arrays it references (not copies: kept alive here;
// stack_backward checks that they are unchanged).
struct PyStackCache {
  std::shared_ptr<rnnkit::StackCache<float>> f32;
  std::shared_ptr<rnnkit::StackCache<double>> f64;
  py::object x;    // (T, B, I) the x given to stack_forward
  py::object out;  // (T, B, D*H) the out it returned, where the cache reads it
  // The weight arrays given to stack_forward, named "weights[i][j]".
  std::vector<std::pair<std::string, py::object>> weights;

  const rnnkit::StackDims& dims() const { return f32 ? f32->dims : f64->dims; }
  Mode mode() const { return f32 ? f32->mode : f64->mode; }
  std::string dtype() const { return f32 ? "float32" : "float64"; }
  i64 nbytes() const { return f32 ? f32->nbytes() : f64->nbytes(); }
};

// The weights' L*D entries (w_ih, w_hh, b_ih | None, b_hh | None), each checked against
// s (s.I given; s.L, s.H and s.bias are set from the entries). `cells` receives the
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
  for (i64 i = 0; i < n_entries; ++i) {
    const std::string name = fn + "weights[" + std::to_string(i) + "]";
    cells.push_back(as_items(entries[i], name));
    if (cells.back().size() != 4) {
      throw py::value_error(name + " must be a tuple (w_ih, w_hh, b_ih, b_hh), got " +
                            std::to_string(cells.back().size()) + " items");
    }
  }
  const py::array w_hh0 = as_array(cells[0][1], fn + "weights[0][1] (w_hh)");
  if (w_hh0.ndim() != 2 || w_hh0.shape(1) < 1 || w_hh0.shape(0) != G * w_hh0.shape(1)) {
    throw py::value_error(fn + "weights[0][1] (w_hh) must have shape (G*H, H) with H >= 1 "
                          "and G = " + std::to_string(G) + " for mode '" + mode_name(mode) +
                          "', got " + shape_str(shape_of(w_hh0)));
  }
  s.H = w_hh0.shape(1);
  s.bias = !cells[0][2].is_none();

  std::vector<rnnkit::CellWeights<T>> weights(n_entries);
  for (i64 i = 0; i < n_entries; ++i) {
    const std::string name = fn + "weights[" + std::to_string(i) + "]";
    const CellShapes c = cell_shapes(s, G, i, "");
    const T* arrays[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < 4; ++j) {
      if (j >= 2 && cells[i][j].is_none() == s.bias) {
        throw py::value_error(name + c.parts[j] +
                              (s.bias ? " is None but weights[0] has biases"
                                      : " is given but weights[0][2] is None"));
      }
      if (j < 2 || s.bias) arrays[j] = args.get<T>(cells[i][j], name + c.parts[j], c.shapes[j], c.descs[j]);
    }
    weights[i] = {arrays[0], arrays[1], arrays[2], arrays[3]};
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

template <typename T>
PyPackedStack pack_impl(Mode mode, const std::vector<py::object>& entries, i64 D) {
  const std::string fn = "PackedStack: ";
  Checked args;
  rnnkit::StackDims s;
  s.T = s.B = 1;
  s.D = D;
  const py::array w_ih0 = as_array(as_items(entries.at(0), fn + "weights[0]").at(0),
                                   fn + "weights[0][0] (w_ih)");
  s.I = w_ih0.ndim() == 2 ? w_ih0.shape(1) : -1;
  std::vector<std::vector<py::object>> cells;
  const auto weights = parse_weights<T>(fn, mode, entries, D, s, args, cells);
  PyPackedStack p;
  auto& packed = packed_of<T>(p);
  packed = std::make_shared<rnnkit::PackedStack<T>>();
  py::gil_scoped_release release;
  rnnkit::pack_stack<T>(*packed, weights.data(), mode, s);
  return p;
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
                    p->dims.I == s.I && p->dims.H == s.H && p->dims.bias == s.bias;
  if (!same) {
    throw py::value_error(fn + "was not packed from weights of this mode, dtype and shape");
  }
  return p.get();
}

template <typename T>
py::tuple forward_impl(Mode mode, const py::array& x, py::handle h0_obj, py::handle c0_obj,
                       const std::vector<py::object>& entries, py::handle lengths_obj,
                       py::handle masks_obj, bool training, i64 D, py::handle packed_obj) {
  const std::string fn = "stack_forward: ";
  Checked args;
  rnnkit::StackDims s;
  s.T = x.shape(0);
  s.B = x.shape(1);
  s.I = x.shape(2);
  s.D = D;
  if (s.T < 1 || s.B < 1) {
    throw py::value_error(fn + "x must have T >= 1 and B >= 1, got shape " +
                          shape_str(shape_of(x)));
  }
  const T* x_data = args.get<T>(x, fn + "x", {s.T, s.B, s.I}, "(T, B, I)");

  std::vector<std::vector<py::object>> cells;
  const std::vector<rnnkit::CellWeights<T>> weights =
      parse_weights<T>(fn, mode, entries, D, s, args, cells);
  const i64 H = s.H, DH = D * H, LD = s.L * D;

  rnnkit::PackedStack<T>* packed = packed_for<T>(packed_obj, mode, s);
  const T* h0 = args.get<T>(h0_obj, fn + "h0", {LD, s.B, H}, "(L*D, B, H)");
  const T* c0 = cell_state<T>(args, c0_obj, fn, "c0", mode, s);

  const i64* lengths = nullptr;
  if (!lengths_obj.is_none()) {
    const std::string name = fn + "lengths";
    lengths = args.get<i64>(lengths_obj, name, {s.B}, "(B,)");
    for (i64 b = 0; b < s.B; ++b) {
      if (lengths[b] < 1 || lengths[b] > s.T) {
        throw py::value_error(name + "[" + std::to_string(b) + "] must be in 1..T = 1.." +
                              std::to_string(s.T) + ", got " + std::to_string(lengths[b]));
      }
    }
  }

  std::vector<const T*> masks;
  if (!masks_obj.is_none()) {
    const auto items = as_items(masks_obj, fn + "dropout_masks");
    if (static_cast<i64>(items.size()) != s.L - 1) {
      throw py::value_error(fn + "dropout_masks must hold L-1 = " + std::to_string(s.L - 1) +
                            " arrays, got " + std::to_string(items.size()));
    }
    for (size_t k = 0; k < items.size(); ++k) {
      const std::string name = fn + "dropout_masks[" + std::to_string(k) + "]";
      masks.push_back(args.get<T>(items[k], name, {s.T, s.B, DH}, "(T, B, D*H)"));
    }
  }

  auto out = new_array<T>({s.T, s.B, DH});
  auto h_n = new_array<T>({LD, s.B, H});
  py::object c_n = py::none();
  T* c_n_data = nullptr;
  if (c0 != nullptr) {
    auto c = new_array<T>({LD, s.B, H});
    c_n_data = c.mutable_data();
    c_n = std::move(c);
  }
  std::shared_ptr<rnnkit::StackCache<T>> cache;
  if (training) cache = std::make_shared<rnnkit::StackCache<T>>();
  {
    T* out_data = out.mutable_data();
    T* h_n_data = h_n.mutable_data();
    py::gil_scoped_release release;
    rnnkit::stack_forward<T>(out_data, h_n_data, c_n_data, cache.get(), x_data, h0, c0,
                             weights.data(), lengths, masks.empty() ? nullptr : masks.data(),
                             mode, s, packed);
  }
  py::object cache_obj = py::none();
  if (training) {
    PyStackCache pc;
    pc.x = x;
    for (size_t i = 0; i < cells.size(); ++i) {
      for (size_t j = 0; j < cells[i].size(); ++j) {
        if (cells[i][j].is_none()) continue;
        pc.weights.emplace_back("weights[" + std::to_string(i) + "][" + std::to_string(j) + "]",
                                cells[i][j]);
      }
    }
    if (cache->out != nullptr) pc.out = out;
    if constexpr (std::is_same_v<T, float>) {
      pc.f32 = std::move(cache);
    } else {
      pc.f64 = std::move(cache);
    }
    cache_obj = py::cast(std::move(pc));
  }
  return py::make_tuple(out, h_n, c_n, cache_obj);
}

// The caller's gradient arrays to add into: L*D tuples (dw_ih, dw_hh, db_ih, db_hh) of
// writeable arrays shaped like the weights; none may overlap another or any array in
// `inputs` (name, array): the backward reads those while it writes the gradients.
template <typename T>
std::vector<rnnkit::CellGrads<T>> check_grads(
    py::handle grads_obj, const rnnkit::StackDims& s, i64 G,
    std::vector<std::pair<std::string, py::array>> seen, Checked& args) {
  const std::string fn = "stack_backward: ";
  const i64 LD = s.L * s.D;
  const auto entries = as_items(grads_obj, fn + "grads");
  if (static_cast<i64>(entries.size()) != LD) {
    throw py::value_error(fn + "grads must hold L*D = " + std::to_string(LD) +
                          " entries, got " + std::to_string(entries.size()));
  }
  std::vector<rnnkit::CellGrads<T>> grads;
  for (i64 i = 0; i < LD; ++i) {
    const std::string name = fn + "grads[" + std::to_string(i) + "]";
    const auto items = as_items(entries[i], name);
    if (items.size() != 4) {
      throw py::value_error(name + " must be a tuple (dw_ih, dw_hh, db_ih, db_hh), got " +
                            std::to_string(items.size()) + " items");
    }
    const CellShapes c = cell_shapes(s, G, i, "d");
    T* ptrs[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < 4; ++j) {
      const std::string gname = name + c.parts[j];
      if (j >= 2 && items[j].is_none() == s.bias) {
        throw py::value_error(gname + (s.bias ? " is None but the weights have biases"
                                              : " is given but the weights have no biases"));
      }
      if (j >= 2 && !s.bias) continue;
      ptrs[j] = args.get<T>(items[j], gname, c.shapes[j], c.descs[j]);
      const py::array a = py::reinterpret_borrow<py::array>(items[j]);
      if (!a.writeable()) throw py::value_error(gname + " must be writeable");
      for (const auto& [other, b] : seen) {
        if (overlaps(a, b)) throw py::value_error(gname + " overlaps " + other);
      }
      seen.emplace_back(gname.substr(fn.size()), a);
    }
    grads.push_back({ptrs[0], ptrs[1], ptrs[2], ptrs[3]});
  }
  return grads;
}

template <typename T>
py::tuple backward_impl(const PyStackCache& pc, const rnnkit::StackCache<T>& cache,
                        py::handle dout_obj, py::handle dh_n_obj, py::handle dc_n_obj,
                        py::handle grads_obj) {
  const std::string fn = "stack_backward: ";
  const rnnkit::StackDims& s = cache.dims;
  const i64 G = rnnkit::cell_kind(cache.mode).gates;
  const i64 H = s.H, GH = G * H, DH = s.D * H, LD = s.L * s.D;
  Checked args;
  const T* dout = args.get<T>(dout_obj, fn + "dout", {s.T, s.B, DH}, "(T, B, D*H)");
  const T* dh_n = args.get<T>(dh_n_obj, fn + "dh_n", {LD, s.B, H}, "(L*D, B, H)");
  const T* dc_n = cell_state<T>(args, dc_n_obj, fn, "dc_n", cache.mode, s);

  // With grads given, the backward adds into them (and returns them); otherwise it
  // writes fresh arrays.
  const bool accumulate = !grads_obj.is_none();
  py::list dweights;
  std::vector<rnnkit::CellGrads<T>> grads;
  if (accumulate) {
    std::vector<std::pair<std::string, py::array>> inputs = {
        {"dout", py::reinterpret_borrow<py::array>(dout_obj)},
        {"dh_n", py::reinterpret_borrow<py::array>(dh_n_obj)},
        {"x", py::reinterpret_borrow<py::array>(pc.x)}};
    for (const auto& [name, w] : pc.weights) {
      inputs.emplace_back(name, py::reinterpret_borrow<py::array>(w));
    }
    if (dc_n != nullptr) inputs.emplace_back("dc_n", py::reinterpret_borrow<py::array>(dc_n_obj));
    if (pc.out && !pc.out.is_none()) {
      inputs.emplace_back("out", py::reinterpret_borrow<py::array>(pc.out));
    }
    grads = check_grads<T>(grads_obj, s, G, std::move(inputs), args);
    for (py::handle entry : py::reinterpret_borrow<py::sequence>(grads_obj)) {
      dweights.append(py::tuple(py::reinterpret_borrow<py::sequence>(entry)));
    }
  }
  auto dx = new_array<T>({s.T, s.B, s.I});
  auto dh0 = new_array<T>({LD, s.B, H});
  py::object dc0 = py::none();
  T* dc0_data = nullptr;
  if (dc_n != nullptr) {
    auto c = new_array<T>({LD, s.B, H});
    dc0_data = c.mutable_data();
    dc0 = std::move(c);
  }
  for (i64 i = 0; i < LD && !accumulate; ++i) {
    auto dw_ih = new_array<T>({GH, i < s.D ? s.I : DH});
    auto dw_hh = new_array<T>({GH, H});
    rnnkit::CellGrads<T> g{dw_ih.mutable_data(), dw_hh.mutable_data(), nullptr, nullptr};
    py::object db_ih = py::none(), db_hh = py::none();
    if (s.bias) {
      auto bi = new_array<T>({GH});
      auto bh = new_array<T>({GH});
      g.db_ih = bi.mutable_data();
      g.db_hh = bh.mutable_data();
      db_ih = std::move(bi);
      db_hh = std::move(bh);
    }
    grads.push_back(g);
    dweights.append(py::make_tuple(dw_ih, dw_hh, db_ih, db_hh));
  }
  {
    T* dx_data = dx.mutable_data();
    T* dh0_data = dh0.mutable_data();
    py::gil_scoped_release release;
    rnnkit::stack_backward<T>(dx_data, dh0_data, dc0_data, grads.data(), accumulate, cache,
                              dout, dh_n, dc_n);
  }
  return py::make_tuple(dx, dh0, dc0, dweights);
}

py::tuple stack_forward(const std::string& mode_str, py::handle x_obj, py::handle h0,
                        py::handle c0, py::handle weights, py::handle lengths,
                        py::handle masks, bool training, i64 num_directions,
                        py::handle packed) {
  const std::string fn = "stack_forward";
  const Mode mode = parse_mode(fn, mode_str);
  if (num_directions != 1 && num_directions != 2) {
    throw py::value_error(fn + ": num_directions must be 1 or 2, got " +
                          std::to_string(num_directions));
  }
  const py::array x = as_array(x_obj, fn + ": x");
  if (x.ndim() != 3) {
    throw py::value_error(fn + ": x must have shape (T, B, I), got " + shape_str(shape_of(x)));
  }
  const auto entries = as_items(weights, fn + ": weights");
  if (py::isinstance<py::array_t<float>>(x)) {
    return forward_impl<float>(mode, x, h0, c0, entries, lengths, masks, training,
                               num_directions, packed);
  }
  if (py::isinstance<py::array_t<double>>(x)) {
    return forward_impl<double>(mode, x, h0, c0, entries, lengths, masks, training,
                                num_directions, packed);
  }
  throw py::type_error(fn + ": x must have dtype float32 or float64, got " +
                       py::str(x.dtype()).cast<std::string>());
}

py::tuple stack_backward(const std::string& mode_str, py::handle cache_obj, py::handle dout,
                         py::handle dh_n, py::handle dc_n, py::handle grads) {
  const std::string fn = "stack_backward";
  const Mode mode = parse_mode(fn, mode_str);
  if (!py::isinstance<PyStackCache>(cache_obj)) {
    throw py::type_error(fn + ": cache must be the StackCache of a training stack_forward, "
                              "got " + type_name(cache_obj));
  }
  const auto& pc = cache_obj.cast<const PyStackCache&>();
  if (pc.mode() != mode) {
    throw py::value_error(fn + ": mode '" + mode_str + "' differs from the forward's mode '" +
                          mode_name(pc.mode()) + "'");
  }
  return pc.f32 ? backward_impl<float>(pc, *pc.f32, dout, dh_n, dc_n, grads)
                : backward_impl<double>(pc, *pc.f64, dout, dh_n, dc_n, grads);
}

}  // namespace

void bind_stack(py::module_& m) {
  py::class_<PyStackCache>(m, "StackCache",
                           "What a training stack_forward keeps for stack_backward (opaque).")
      .def_property_readonly("mode", [](const PyStackCache& c) { return mode_name(c.mode()); })
      .def_property_readonly("dtype", &PyStackCache::dtype)
      .def_property_readonly("num_layers", [](const PyStackCache& c) { return c.dims().L; })
      .def_property_readonly("num_directions",
                             [](const PyStackCache& c) { return c.dims().D; })
      .def_property_readonly("nbytes", &PyStackCache::nbytes, "Bytes of saved buffers.")
      .def("__repr__", [](const PyStackCache& c) {
        const auto& s = c.dims();
        return "<rnnkit._core.StackCache mode='" + mode_name(c.mode()) + "' dtype=" +
               c.dtype() + " T=" + std::to_string(s.T) + " B=" + std::to_string(s.B) +
               " L=" + std::to_string(s.L) + " D=" + std::to_string(s.D) +
               " H=" + std::to_string(s.H) + ">";
      });

  m.def("stack_forward", &stack_forward, py::arg("mode"), py::arg("x"), py::arg("h0"),
        py::arg("c0").none(true), py::arg("weights"), py::arg("lengths").none(true),
        py::arg("dropout_masks").none(true), py::arg("training"), py::arg("num_directions"),
        py::arg("packed").none(true) = py::none(),
        "Forward of an L-layer, D-direction stack (rnnkit._native.stack_forward).\n"
        "Returns (out (T, B, D*H), h_n (L*D, B, H), c_n or None, StackCache or None).");
  m.def("stack_backward", &stack_backward, py::arg("mode"), py::arg("cache"),
        py::arg("dout"), py::arg("dh_n"), py::arg("dc_n").none(true),
        py::arg("grads").none(true) = py::none(),
        "Backward of stack_forward from its StackCache.\n"
        "Returns (dx, dh0, dc0 or None, [(dw_ih, dw_hh, db_ih, db_hh), ...]): fresh\n"
        "gradient arrays, or, when grads is given, grads itself after adding into it.");
  py::class_<PyPackedStack>(m, "PackedStack",
                            "The forward's packed copies of a stack's weights, kept across "
                            "calls (opaque).")
      .def(py::init([](const std::string& mode_str, py::handle weights, i64 num_directions) {
             const std::string fn = "PackedStack";
             const Mode mode = parse_mode(fn, mode_str);
             if (num_directions != 1 && num_directions != 2) {
               throw py::value_error(fn + ": num_directions must be 1 or 2, got " +
                                     std::to_string(num_directions));
             }
             const auto entries = as_items(weights, fn + ": weights");
             if (entries.empty()) throw py::value_error(fn + ": weights is empty");
             const py::array w = as_array(as_items(entries[0], fn + ": weights[0]").at(0),
                                          fn + ": weights[0][0]");
             if (py::isinstance<py::array_t<double>>(w)) {
               return pack_impl<double>(mode, entries, num_directions);
             }
             return pack_impl<float>(mode, entries, num_directions);
           }),
           py::arg("mode"), py::arg("weights"), py::arg("num_directions"),
           "Packs weights (L*D tuples (w_ih, w_hh, b_ih | None, b_hh | None)) for "
           "stack_forward(packed=...).");
  bind_cell_kinds(m);
}
