// Argument checks shared by the stack bindings (bind_stack.cpp): they keep the core safe
// from arrays of the wrong type, dtype, shape or layout, with messages naming the
// argument.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rnnkit::bindings {

namespace py = pybind11;
using i64 = std::int64_t;

inline std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

inline std::string shape_str(const std::vector<i64>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::vector<i64> shape_of(const py::array& a) {
  return std::vector<i64>(a.shape(), a.shape() + a.ndim());
}

inline py::array as_array(py::handle obj, const std::string& name) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(name + " must be a numpy.ndarray, got " + type_name(obj));
  }
  return py::reinterpret_borrow<py::array>(obj);
}

// A list or tuple's items, held for the whole call (so another thread replacing an item
// while the GIL is released cannot free an array in use).
inline std::vector<py::object> as_items(py::handle obj, const std::string& name) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj)) {
    throw py::type_error(name + " must be a list or tuple, got " + type_name(obj));
  }
  std::vector<py::object> items;
  for (py::handle item : py::reinterpret_borrow<py::sequence>(obj)) {
    items.push_back(py::reinterpret_borrow<py::object>(item));
  }
  return items;
}

// The arrays whose data the core reads, kept alive for the call.
struct Checked {
  std::vector<py::array> keep;

  // obj as an array of dtype T (TypeError), with `shape`, C-contiguous and aligned
  // (ValueError); returns its data. `desc` names the shape symbolically: "(L*D, B, H)".
  template <typename T>
  T* get(py::handle obj, const std::string& name, const std::vector<i64>& shape,
         const std::string& desc) {
    const py::array a = as_array(obj, name);
    if (!py::isinstance<py::array_t<T>>(a)) {
      throw py::type_error(name + " must have dtype " +
                           py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                           py::str(a.dtype()).cast<std::string>());
    }
    if (shape_of(a) != shape) {
      throw py::value_error(name + " must have shape " + desc + " = " + shape_str(shape) +
                            ", got " + shape_str(shape_of(a)));
    }
    if (!(a.flags() & py::array::c_style)) throw py::value_error(name + " must be C-contiguous");
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
      throw py::value_error(name + " must be aligned");
    }
    keep.push_back(a);
    return static_cast<T*>(const_cast<void*>(a.data()));
  }
};

// Whether two arrays' bytes overlap (their [data, data + nbytes) ranges intersect).
inline bool overlaps(const py::array& a, const py::array& b) {
  const char* pa = static_cast<const char*>(a.data());
  const char* pb = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

}  // namespace rnnkit::bindings
