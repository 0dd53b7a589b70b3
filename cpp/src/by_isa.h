// Internal: the run-time choice between a cell pass's vector copies (cells_avx2.h) and
// its portable loop. Not included by the vector units (isa.h's inline functions must
// not be compiled with their flags).
#pragma once
#include "cells_avx2.h"
#include "rnnkit/isa.h"

namespace rnnkit::detail {

// pass(Avx512{}) when `isa` is avx512, pass(Avx2{}) when it is avx2 (each when this
// build has that ISA's kernels), else pass(Plain{}). `pass` calls the pass unqualified,
// as f(tag, ...): the tag's namespace (detail) brings in the vector overloads, ordinary
// lookup the cell's own portable one.
template <class Pass>
void by_isa(kernels::Isa isa, const Pass& pass) {
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (isa == kernels::Isa::avx512) {
    pass(Avx512{});
    return;
  }
#endif
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (isa == kernels::Isa::avx2) {
    pass(Avx2{});
    return;
  }
#endif
  static_cast<void>(isa);
  pass(Plain{});
}

}  // namespace rnnkit::detail
