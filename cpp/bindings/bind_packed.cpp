// Binding of the stack's packed weights (stack.h PackedStack): rnnkit._core.PackedStack,
// built from a weight list, given to stack_forward(packed=...).
#include <pybind11/pybind11.h>

#include <string>

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
  auto& packed = packed_of<T>(p);
  packed = std::make_shared<rnnkit::PackedStack<T>>();
  py::gil_scoped_release release;
  rnnkit::pack_stack<T>(*packed, weights.data(), mode, s);
  return p;
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
           "stack_forward(packed=...).");
}
