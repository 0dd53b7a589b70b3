// Bindings of the table of cell kinds (cell_kinds.h): rnnkit._core.cell_kinds() and
// parameter_kinds(), so that Python and the tests read the kinds' facts from the core.
#include <pybind11/pybind11.h>

#include <utility>

#include "rnnkit/cell_kinds.h"

namespace py = pybind11;

namespace {

py::dict cell_kinds() {
  py::dict kinds;
  for (const rnnkit::CellKind& kind : rnnkit::kCellKinds) {
    py::list gate_names, saved_state;
    for (int q = 0; q < kind.gates; ++q) gate_names.append(kind.gate_names[q]);
    const std::pair<bool, const char*> kept[] = {{kind.keeps_h_prev, "h_prev"},
                                                 {kind.keeps_c_prev, "c_prev"},
                                                 {kind.keeps_tanh_c, "tanh_c"},
                                                 {kind.keeps_reset_h, "reset_h"},
                                                 {kind.keeps_h_w_hn, "h_w_hn"}};
    for (const auto& [keeps, name] : kept) {
      if (keeps) saved_state.append(name);
    }
    py::dict facts;
    facts["gates"] = kind.gates;
    facts["gate_names"] = gate_names;
    facts["has_cell_state"] = kind.has_cell_state;
    facts["saved_state"] = saved_state;
    facts["backward_reads_out"] = kind.backward_reads_out;
    facts["gates_are_h"] = kind.gates_are_h;
    kinds[kind.name] = facts;
  }
  return kinds;
}

py::list parameter_kinds() {
  py::list kinds;
  for (const char* kind : rnnkit::kParameterKinds) kinds.append(kind);
  return kinds;
}

}  // namespace

void bind_cell_kinds(py::module_& m) {
  m.def("cell_kinds", &cell_kinds,
        "The cell kinds (modes) of the core and their facts, in the core's order:\n"
        "{name: {'gates': G, 'gate_names': [...] (PyTorch's order), 'has_cell_state':\n"
        "bool (the LSTM's c), 'saved_state': [...] ((T, B, H) buffers a training forward\n"
        "keeps besides its gates), 'backward_reads_out': bool, 'gates_are_h': bool}}.");
  m.def("parameter_kinds", &parameter_kinds,
        "The kinds of a cell's parameters in PyTorch's order: weight_ih, weight_hh,\n"
        "bias_ih, bias_hh (parameter j of layer k is kinds[j] + '_l{k}', with '_reverse'\n"
        "for the reverse direction).");
}
