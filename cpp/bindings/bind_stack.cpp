// Bindings of the stack (stack.h): rnnkit._core.stack_forward, stack_backward and the
// StackCache class they pass between them (and, through bind_packed.cpp, the PackedStack
// stack_forward may be given; through bind_cells.cpp, the facts of the
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
#include "stack_bindings.h"
#include "rnnkit/cell_kinds.h"
#include "rnnkit/stack.h"

namespace py = pybind11;

void bind_cell_kinds(py::module_& m);   // bind_cells.cpp
void bind_packed_stack(py::module_& m);  // bind_packed.cpp

namespace {

using rnnkit::Mode;
using rnnkit::bindings::as_array;
using rnnkit::bindings::as_items;
using rnnkit::bindings::i64;
using rnnkit::bindings::overlaps;
using rnnkit::bindings::shape_of;
using rnnkit::bindings::shape_str;
using rnnkit::bindings::type_name;
using rnnkit::bindings::Checked;
using rnnkit::bindings::CellShapes;
using rnnkit::bindings::grad_items;
using rnnkit::bindings::cell_shapes;
using rnnkit::bindings::mode_name;
using rnnkit::bindings::packed_for;
using rnnkit::bindings::parse_mode;
using rnnkit::bindings::parse_options;
using rnnkit::bindings::parse_weights;

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
  py::object out;  // (T, B, D*R) the out it returned, where the cache reads it
  // The weight arrays given to stack_forward, named "weights[i][j]".
  std::vector<std::pair<std::string, py::object>> weights;

  const rnnkit::StackDims& dims() const { return f32 ? f32->dims : f64->dims; }
  Mode mode() const { return f32 ? f32->mode : f64->mode; }
  std::string dtype() const { return f32 ? "float32" : "float64"; }
  i64 nbytes() const { return f32 ? f32->nbytes() : f64->nbytes(); }
};

template <typename T>
py::tuple forward_impl(Mode mode, const py::array& x, py::handle h0_obj, py::handle c0_obj,
                       const std::vector<py::object>& entries, py::handle lengths_obj,
                       py::handle masks_obj, bool training, i64 D, py::handle packed_obj,
                       py::handle options_obj) {
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
  // R: the width of h and of each direction's output (P with a projection, else H).
  const i64 R = s.P > 0 ? s.P : s.H, DR = D * R, LD = s.L * D;
  const char* h_desc = s.P > 0 ? "(L*D, B, P)" : "(L*D, B, H)";
  const char* out_desc = s.P > 0 ? "(T, B, D*P)" : "(T, B, D*H)";
  rnnkit::CellOptions options;
  const bool variant = parse_options(fn, options_obj, mode, s, options);
  for (i64 i = 0; i < LD; ++i) {
    if ((weights[i].w_ph != nullptr) != (variant && options.peepholes)) {
      throw py::value_error(fn + "weights[" + std::to_string(i) + "] must " +
                            (options.peepholes ? "" : "not ") +
                            "hold the peepholes w_ph as a sixth item (after w_hr | None) "
                            "with options' peepholes = " +
                            (options.peepholes ? "True" : "False"));
    }
  }

  rnnkit::PackedStack<T>* packed = packed_for<T>(packed_obj, mode, s);
  const T* h0 = args.get<T>(h0_obj, fn + "h0", {LD, s.B, R}, h_desc);
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
      masks.push_back(args.get<T>(items[k], name, {s.T, s.B, DR}, out_desc));
    }
  }

  auto out = new_array<T>({s.T, s.B, DR});
  auto h_n = new_array<T>({LD, s.B, R});
  py::object c_n = py::none();
  T* c_n_data = nullptr;
  if (c0 != nullptr) {
    auto c = new_array<T>({LD, s.B, s.H});
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
                             mode, s, packed, variant ? &options : nullptr);
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

// The caller's gradient arrays to add into (or write): L*D tuples (dw_ih, dw_hh, db_ih, db_hh), with
// a projection (.., dw_hr), with peepholes (.., dw_hr | None, dw_ph), of writeable arrays
// shaped like the weights; none may overlap another or any array in
// `inputs` (name, array): the backward reads those while it writes the gradients.
template <typename T>
std::vector<rnnkit::CellGrads<T>> check_grads(
    py::handle grads_obj, const rnnkit::StackDims& s, i64 G, bool peepholes,
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
    const size_t n_items = grad_items(s, peepholes);
    if (items.size() != n_items) {
      throw py::value_error(name + " must be a tuple (dw_ih, dw_hh, db_ih, db_hh" +
                            (n_items == 6 ? ", dw_hr | None, dw_ph" : "") +
                            (n_items == 5 ? ", dw_hr" : "") + "), got " +
                            std::to_string(items.size()) + " items");
    }
    const CellShapes c = cell_shapes(s, G, i, "d");
    T* ptrs[6] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    for (size_t j = 0; j < n_items; ++j) {
      const std::string gname = name + c.parts[j];
      const bool is_bias = j == 2 || j == 3;
      if (is_bias && items[j].is_none() == s.bias) {
        throw py::value_error(gname + (s.bias ? " is None but the weights have biases"
                                              : " is given but the weights have no biases"));
      }
      if (is_bias && !s.bias) continue;
      if (j == 4 && items[j].is_none() == (s.P > 0)) {
        throw py::value_error(gname + (s.P > 0 ? " is None but the weights have a projection"
                                               : " is given but the weights have no projection"));
      }
      if (j == 4 && s.P == 0) continue;
      ptrs[j] = args.get<T>(items[j], gname, c.shapes[j], c.descs[j]);
      const py::array a = py::reinterpret_borrow<py::array>(items[j]);
      if (!a.writeable()) throw py::value_error(gname + " must be writeable");
      for (const auto& [other, b] : seen) {
        if (overlaps(a, b)) throw py::value_error(gname + " overlaps " + other);
      }
      seen.emplace_back(gname.substr(fn.size()), a);
    }
    rnnkit::CellGrads<T> g{ptrs[0], ptrs[1], ptrs[2], ptrs[3]};
    g.dw_hr = ptrs[4];
    g.dw_ph = ptrs[5];
    grads.push_back(g);
  }
  return grads;
}

template <typename T>
py::tuple backward_impl(const PyStackCache& pc, const rnnkit::StackCache<T>& cache,
                        py::handle dout_obj, py::handle dh_n_obj, py::handle dc_n_obj,
                        py::handle grads_obj, bool add_into_grads) {
  const std::string fn = "stack_backward: ";
  const rnnkit::StackDims& s = cache.dims;
  const i64 G = rnnkit::cell_kind(cache.mode).gates;
  const i64 H = s.H, R = s.P > 0 ? s.P : H, GH = G * H, DR = s.D * R, LD = s.L * s.D;
  const bool peepholes = cache.has_options && cache.options.peepholes;
  Checked args;
  const T* dout = args.get<T>(dout_obj, fn + "dout", {s.T, s.B, DR},
                              s.P > 0 ? "(T, B, D*P)" : "(T, B, D*H)");
  const T* dh_n = args.get<T>(dh_n_obj, fn + "dh_n", {LD, s.B, R},
                              s.P > 0 ? "(L*D, B, P)" : "(L*D, B, H)");
  const T* dc_n = cell_state<T>(args, dc_n_obj, fn, "dc_n", cache.mode, s);

  // With grads given, the backward adds into them or (add_into_grads false) overwrites
  // them, and returns them; otherwise it writes fresh arrays.
  const bool given = !grads_obj.is_none();
  const bool accumulate = given && add_into_grads;
  py::list dweights;
  std::vector<rnnkit::CellGrads<T>> grads;
  if (given) {
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
    grads = check_grads<T>(grads_obj, s, G, peepholes, std::move(inputs), args);
    for (py::handle entry : py::reinterpret_borrow<py::sequence>(grads_obj)) {
      dweights.append(py::tuple(py::reinterpret_borrow<py::sequence>(entry)));
    }
  }
  auto dx = new_array<T>({s.T, s.B, s.I});
  auto dh0 = new_array<T>({LD, s.B, R});
  py::object dc0 = py::none();
  T* dc0_data = nullptr;
  if (dc_n != nullptr) {
    auto c = new_array<T>({LD, s.B, H});
    dc0_data = c.mutable_data();
    dc0 = std::move(c);
  }
  for (i64 i = 0; i < LD && !given; ++i) {
    auto dw_ih = new_array<T>({GH, i < s.D ? s.I : DR});
    auto dw_hh = new_array<T>({GH, R});
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
    py::object dw_hr = py::none();
    if (s.P > 0) {
      auto hr = new_array<T>({s.P, H});
      g.dw_hr = hr.mutable_data();
      dw_hr = std::move(hr);
    }
    if (peepholes) {
      auto dw_ph = new_array<T>({3 * H});
      g.dw_ph = dw_ph.mutable_data();
      dweights.append(py::make_tuple(dw_ih, dw_hh, db_ih, db_hh, dw_hr, dw_ph));
    } else if (s.P > 0) {
      dweights.append(py::make_tuple(dw_ih, dw_hh, db_ih, db_hh, dw_hr));
    } else {
      dweights.append(py::make_tuple(dw_ih, dw_hh, db_ih, db_hh));
    }
    grads.push_back(g);
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
                        py::handle packed, py::handle options) {
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
                               num_directions, packed, options);
  }
  if (py::isinstance<py::array_t<double>>(x)) {
    return forward_impl<double>(mode, x, h0, c0, entries, lengths, masks, training,
                                num_directions, packed, options);
  }
  throw py::type_error(fn + ": x must have dtype float32 or float64, got " +
                       py::str(x.dtype()).cast<std::string>());
}

py::tuple stack_backward(const std::string& mode_str, py::handle cache_obj, py::handle dout,
                         py::handle dh_n, py::handle dc_n, py::handle grads,
                         bool add_into_grads) {
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
  return pc.f32 ? backward_impl<float>(pc, *pc.f32, dout, dh_n, dc_n, grads, add_into_grads)
                : backward_impl<double>(pc, *pc.f64, dout, dh_n, dc_n, grads, add_into_grads);
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
               " H=" + std::to_string(s.H) + (s.P > 0 ? " P=" + std::to_string(s.P) : "") +
               ">";
      });

  m.def("stack_forward", &stack_forward, py::arg("mode"), py::arg("x"), py::arg("h0"),
        py::arg("c0").none(true), py::arg("weights"), py::arg("lengths").none(true),
        py::arg("dropout_masks").none(true), py::arg("training"), py::arg("num_directions"),
        py::arg("packed").none(true) = py::none(), py::arg("options").none(true) = py::none(),
        "Forward of an L-layer, D-direction stack (rnnkit._native.stack_forward).\n"
        "Returns (out (T, B, D*R), h_n (L*D, B, R), c_n or None, StackCache or None),\n"
        "R = P for an LSTM with a projection (weights entries (.., w_hr)), else H;\n"
        "with peepholes the entries are (.., w_hr | None, w_ph).");
  m.def("stack_backward", &stack_backward, py::arg("mode"), py::arg("cache"),
        py::arg("dout"), py::arg("dh_n"), py::arg("dc_n").none(true),
        py::arg("grads").none(true) = py::none(), py::arg("add_into_grads") = true,
        "Backward of stack_forward from its StackCache.\n"
        "Returns (dx, dh0, dc0 or None, [(dw_ih, dw_hh, db_ih, db_hh[, dw_hr | None[, dw_ph]]),\n"
        "...]), entries shaped as the weights': fresh\n"
        "gradient arrays, or, when grads is given, grads itself after adding into it\n"
        "(add_into_grads, the default) or writing over it (add_into_grads=False: the\n"
        "caller's memory receives the same values fresh arrays would).");
  bind_packed_stack(m);
  bind_cell_kinds(m);
}
