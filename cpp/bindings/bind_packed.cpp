// Binding of the stack's packed weights (stack.h PackedStack): rnnkit._core.PackedStack,
// built from a weight list, given to stack_forward(packed=...), and its lean one-step
// entry `step` (single_step.h) for streaming calls.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "rnnkit/single_step.h"
#include "stack_bindings.h"

namespace py = pybind11;

namespace {

using rnnkit::Mode;
using rnnkit::bindings::as_array;
using rnnkit::bindings::as_items;
using rnnkit::bindings::Checked;
using rnnkit::bindings::i64;
using rnnkit::bindings::packed_of;
using rnnkit::bindings::parse_mode;
using rnnkit::bindings::parse_weights;
using rnnkit::bindings::PyPackedStack;

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
  for (const auto& cell : cells) p.arrays.insert(p.arrays.end(), cell.begin(), cell.end());
  auto& packed = packed_of<T>(p);
  packed = std::make_shared<rnnkit::PackedStack<T>>();
  py::gil_scoped_release release;
  rnnkit::pack_stack<T>(*packed, weights.data(), mode, s);
  return p;
}

// -- PackedStack.step ------------------------------------------------------------------
//
// The lean path takes exactly the common case and answers None for anything else, which
// the caller then sends through its general path (that one converts other dtypes and
// layouts, and raises the errors that name the argument): so every check here is O(1)
// per array, no array is scanned or converted, and no message is built.

// Steps of at most this many multiply-adds run holding the GIL (below about 100 us):
// no other Python thread can then start a training call that repacks these weights
// meanwhile, and releasing the GIL would cost more than a small step. Larger steps take
// the general path, which registers the call with the module and releases the GIL.
constexpr i64 kMaxLeanMultiplyAdds = i64(1) << 22;

// obj as an ndarray of dtype T in the machine's byte order, C-contiguous and aligned, or
// nullptr. Of exactly type
// ndarray unless `subclass` (the parameters are a subclass counting their writes; an
// argument of another subclass takes the general path, which converts it as NumPy says).
template <typename T>
PyObject* plain_array(py::handle obj, bool subclass = false) {
  const auto& api = py::detail::npy_api::get();
  PyObject* a = obj.ptr();
  const auto type = reinterpret_cast<PyTypeObject*>(api.PyArray_Type_);
  if (Py_TYPE(a) != type && !(subclass && PyType_IsSubtype(Py_TYPE(a), type))) {
    return nullptr;
  }
  const auto* proxy = py::detail::array_proxy(a);
  const auto* descr = py::detail::array_descriptor_proxy(proxy->descr);
  constexpr char kSwapped = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '>' : '<';
  if (descr->type_num != py::detail::npy_format_descriptor<T>::value ||
      descr->byteorder == kSwapped) {
    return nullptr;
  }
  constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                         py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((proxy->flags & kFlags) != kFlags) return nullptr;
  return a;
}

template <typename T>
T* data_of(PyObject* a) {
  return reinterpret_cast<T*>(py::detail::array_proxy(a)->data);
}

// A shape of at most 3 axes, held without allocating.
struct Shape {
  int nd = 0;
  i64 dims[3] = {0, 0, 0};
  void push(i64 n) { dims[nd++] = n; }
};

// Whether array a has exactly `shape`.
bool has_shape(PyObject* a, const Shape& shape) {
  const auto* proxy = py::detail::array_proxy(a);
  if (proxy->nd != shape.nd) return false;
  for (int i = 0; i < shape.nd; ++i) {
    if (proxy->dimensions[i] != shape.dims[i]) return false;
  }
  return true;
}

// The weights of the packed stack, still the shape, dtype and layout they were packed
// with (the module's own checks raise otherwise), or an empty vector.
template <typename T>
std::vector<rnnkit::CellWeights<T>> current_weights(const PyPackedStack& p,
                                                    const rnnkit::StackDims& s, i64 G) {
  std::vector<rnnkit::CellWeights<T>> weights(static_cast<size_t>(s.L));
  for (i64 k = 0; k < s.L; ++k) {
    const i64 in_k = k == 0 ? s.I : s.H;
    const Shape shapes[4] = {{2, {G * s.H, in_k}}, {2, {G * s.H, s.H}}, {1, {G * s.H}},
                             {1, {G * s.H}}};
    T* data[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < (s.bias ? 4 : 2); ++j) {
      PyObject* a = plain_array<T>(p.arrays[static_cast<size_t>(4 * k + j)], true);
      if (a == nullptr || !has_shape(a, shapes[j])) return {};
      data[j] = data_of<T>(a);
    }
    weights[static_cast<size_t>(k)] = {data[0], data[1], data[2], data[3]};
  }
  return weights;
}

// A state argument: None (zeros) or a plain array of `shape`; `ok` false otherwise.
template <typename T>
const T* state_data(py::handle obj, const Shape& shape, bool& ok) {
  if (obj.is_none()) return nullptr;
  PyObject* a = plain_array<T>(obj);
  if (a == nullptr || !has_shape(a, shape)) {
    ok = false;
    return nullptr;
  }
  return data_of<T>(a);
}

// A new array of `shape` holding src (n elements), or zeros where src is nullptr.
template <typename T>
py::array_t<T> state_copy(const Shape& shape, const T* src, i64 n) {
  py::array_t<T> a(std::vector<py::ssize_t>(shape.dims, shape.dims + shape.nd));
  T* dst = a.mutable_data();
  if (src == nullptr) {
    std::fill(dst, dst + n, T(0));
  } else {
    std::copy(src, src + n, dst);
  }
  return a;
}

template <typename T>
py::object step_impl(const PyPackedStack& p, const rnnkit::PackedStack<T>& packed,
                     py::handle module, py::handle x_obj, py::handle hx, bool layer_axis,
                     int batched_ndim, bool with_out) {
  const rnnkit::CellKind& kind = rnnkit::cell_kind(packed.mode);
  rnnkit::StackDims s = packed.dims;
  // One direction of plain cells only: a projection (P > 0) or peepholes (entries of more
  // than 4 arrays) take the general path.
  if (s.D != 1 || s.P > 0 || p.arrays.size() != static_cast<size_t>(4 * s.L)) {
    return py::none();
  }
  PyObject* x = plain_array<T>(x_obj);
  if (x == nullptr) return py::none();
  const auto* xp = py::detail::array_proxy(x);
  const int nd = xp->nd;
  if ((nd != batched_ndim && nd != batched_ndim - 1) || nd < 1 ||
      xp->dimensions[nd - 1] != s.I) {
    return py::none();
  }
  s.T = 1;
  s.B = 1;
  for (int i = 0; i + 1 < nd; ++i) s.B *= xp->dimensions[i];
  if (s.B < 1 || s.I < 1) return py::none();
  if (rnnkit::step_multiply_adds(packed.mode, s) > kMaxLeanMultiplyAdds) return py::none();

  // The states' shape: [L,] [B,] H.
  Shape state_shape;
  if (layer_axis) state_shape.push(s.L);
  if (nd == batched_ndim) state_shape.push(s.B);
  state_shape.push(s.H);
  py::handle h_obj = hx, c_obj = py::none();
  if (kind.has_cell_state && !hx.is_none()) {
    if (!PyTuple_CheckExact(hx.ptr()) || PyTuple_GET_SIZE(hx.ptr()) != 2) return py::none();
    h_obj = PyTuple_GET_ITEM(hx.ptr(), 0);
    c_obj = PyTuple_GET_ITEM(hx.ptr(), 1);
  }
  bool ok = true;
  const T* h0 = state_data<T>(h_obj, state_shape, ok);
  const T* c0 = state_data<T>(c_obj, state_shape, ok);
  if (!ok) return py::none();
  const auto weights = current_weights<T>(p, s, kind.gates);
  if (weights.empty()) return py::none();
  // A training call or backward of the module holds it (it may be repacking these very
  // weights with the GIL released): the general path raises the module's error.
  if (py::bool_(module.attr("_exclusive"))) return py::none();

  const i64 state_size = s.L * s.B * s.H;
  py::array_t<T> h_n = state_copy<T>(state_shape, h0, state_size);
  py::object c_n = py::none();
  T* c_data = nullptr;
  if (kind.has_cell_state) {
    auto c = state_copy<T>(state_shape, c0, state_size);
    c_data = c.mutable_data();
    c_n = std::move(c);
  }
  py::object out = py::none();
  T* out_data = nullptr;
  if (with_out) {
    std::vector<py::ssize_t> out_shape(xp->dimensions, xp->dimensions + nd);
    out_shape.back() = s.H;
    py::array_t<T> o(out_shape);
    out_data = o.mutable_data();
    out = std::move(o);
  }
  rnnkit::stack_step<T>(out_data, h_n.mutable_data(), c_data, data_of<T>(x), weights.data(),
                        packed, packed.mode, s);
  return py::make_tuple(out, h_n, c_n);
}

py::object step(const PyPackedStack& p, py::handle module, py::handle x, py::handle hx,
                bool layer_axis, int batched_ndim, bool with_out) {
  if (batched_ndim != 2 && batched_ndim != 3) {
    throw py::value_error("PackedStack.step: batched_ndim must be 2 or 3, got " +
                          std::to_string(batched_ndim));
  }
  if (p.f32) {
    return step_impl<float>(p, *p.f32, module, x, hx, layer_axis, batched_ndim, with_out);
  }
  return step_impl<double>(p, *p.f64, module, x, hx, layer_axis, batched_ndim, with_out);
}

}  // namespace

void bind_packed_stack(py::module_& m) {
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
           "Packs weights (L*D tuples (w_ih, w_hh, b_ih | None, b_hh | None[, w_hr | None[, "
           "w_ph | None]])) for "
           "stack_forward(packed=...).")
      .def("step", &step, py::arg("module"), py::arg("x"), py::arg("hx").none(true),
           py::arg("layer_axis"), py::arg("batched_ndim"), py::arg("with_out"),
           "One eval step of a one-direction stack on these packed weights and the arrays\n"
           "they were packed from (which the caller guarantees unchanged since), holding\n"
           "the GIL. x (B, I), or (I,) when x.ndim == batched_ndim - 1 (unbatched); any\n"
           "leading axes of size 1 besides B (a sequence call with T = 1) are kept in out.\n"
           "hx: h, or for the LSTM a tuple (h, c) (either may be None: zeros), each\n"
           "[L,] [B,] H ((L, ...) when layer_axis). Returns (out x.shape[:-1] + (H,) or\n"
           "None unless with_out, h_n, c_n or None), or None when anything differs from\n"
           "exactly that (another dtype\n"
           "or layout, a wrong shape, a step too large to hold the GIL for, weights\n"
           "changed in shape, dtype or layout, or module._exclusive set: a training call\n"
           "holds the module): the caller's general path then handles the call.");
}
