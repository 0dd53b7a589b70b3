// AVX2/FMA sigmoid and tanh over arrays (see activations.h): activations_vec.h over the
// AVX2 registers of vector_math_avx2.h. Compiled with -mavx2 -mfma -ffp-contract=off;
// called only when the CPU has AVX2 and FMA.
#include "activations_vec.h"
#include "kernels_isa.h"
#include "vector_math_avx2.h"

namespace rnnkit::kernels::detail::avx2 {

using vec::F32;
using vec::F64;
using vec::sigmoid_v;
using vec::tanh_v;
using vec_math::apply_each;

void sigmoid(i64 n, const float* x, float* y) { apply_each<F32, sigmoid_v<F32>>(n, x, y); }
void sigmoid(i64 n, const double* x, double* y) { apply_each<F64, sigmoid_v<F64>>(n, x, y); }
void tanh(i64 n, const float* x, float* y) { apply_each<F32, tanh_v<F32>>(n, x, y); }
void tanh(i64 n, const double* x, double* y) { apply_each<F64, tanh_v<F64>>(n, x, y); }

}  // namespace rnnkit::kernels::detail::avx2
