// rnnkit._core: the only translation unit family that includes pybind11.
// Bindings are thin: check arguments, allocate results, release the GIL, call the core.
#include <pybind11/pybind11.h>

#include "rnnkit/threads.h"

namespace py = pybind11;

namespace rnnkit::bindings {
void bind_kernels(py::module_& m);  // bind_kernels.cpp
}  // namespace rnnkit::bindings

#ifndef RNNKIT_VERSION
#define RNNKIT_VERSION "0.0.0"
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit native core";
  m.attr("__version__") = RNNKIT_VERSION;
  m.def("have_openmp", &rnnkit::have_openmp, "True when the core was compiled with OpenMP.");
  m.def("get_num_threads", &rnnkit::get_num_threads, "Threads used by native compute.");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) {
          throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
        }
        rnnkit::set_num_threads(n);
      },
      py::arg("n"), "Set the number of threads used by native compute (n >= 1).");
  rnnkit::bindings::bind_kernels(m);
}
