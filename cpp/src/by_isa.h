// Internal: the run-time choice between a cell pass's vector copies (vector_cells.h) and
// its portable loop. Not included by the vector units (isa.h's inline functions must
// not be compiled with their flags).
#pragma once
#include "rnnkit/isa.h"
#include "vector_cells.h"

namespace rnnkit::detail {

// pass(Avx512{}) when `isa` is avx512, pass(Avx2{}) when it is avx2 (each when this
// build has that ISA's kernels), and true; false otherwise (ISA plain: the caller runs
// its portable loops, the vector passes' reference).
template <class Pass>
bool by_vector_isa(kernels::Isa isa, const Pass& pass) {
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (isa == kernels::Isa::avx512) {
    pass(Avx512{});
    return true;
  }
#endif
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (isa == kernels::Isa::avx2) {
    pass(Avx2{});
    return true;
  }
#endif
  static_cast<void>(isa);
  static_cast<void>(pass);
  return false;
}

// by_vector_isa, else pass(Plain{}). `pass` calls the pass unqualified, as f(tag, ...):
// the tag's namespace (detail) brings in the vector overloads, ordinary lookup the cell's
// own portable one.
template <class Pass>
void by_isa(kernels::Isa isa, const Pass& pass) {
  if (!by_vector_isa(isa, pass)) pass(Plain{});
}

}  // namespace rnnkit::detail
