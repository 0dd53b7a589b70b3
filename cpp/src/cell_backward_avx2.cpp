// The cells' backward elementwise passes over AVX2 registers (see cells_avx2.h):
// cell_backward_vec.h over vector_math_avx2.h.
#include "cell_backward_vec.h"
#include "cells_avx2.h"
#include "vector_math_avx2.h"

namespace rnnkit::detail {

using i64 = std::int64_t;

using kernels::detail::avx2::vec::F32;
using kernels::detail::avx2::vec::F64;

RNNKIT_DEFINE_BACKWARD_PASSES(Avx2, float, F32)
RNNKIT_DEFINE_BACKWARD_PASSES(Avx2, double, F64)
#undef RNNKIT_DEFINE_BACKWARD_PASSES

}  // namespace rnnkit::detail
