// AVX2/FMA sigmoid and tanh over arrays (see activations.h), built on the one-register
// functions of vector_math_avx2.h. Compiled with -mavx2 -mfma -ffp-contract=off; called
// only when the CPU has AVX2 and FMA. A tail shorter than one register is padded and runs
// through the same vector code, so an element's bits never depend on its position or on n.
#include "kernels_isa.h"
#include "vector_math_avx2.h"

namespace rnnkit::kernels::detail::avx2 {

namespace {

using vec::F32;
using vec::F64;
using vec::sigmoid_v;
using vec::tanh_v;

template <class O, typename O::V (*F)(typename O::V)>
void apply(i64 n, const typename O::T* x, typename O::T* y) {
  constexpr int L = O::L;
  i64 i = 0;
  // Two independent vectors per iteration: more work in flight along the long chains.
  for (; i + 2 * L <= n; i += 2 * L) {
    const typename O::V a = F(O::load(x + i));
    const typename O::V b = F(O::load(x + i + L));
    O::store(y + i, a);
    O::store(y + i + L, b);
  }
  for (; i + L <= n; i += L) O::store(y + i, F(O::load(x + i)));
  if (i < n) {
    alignas(32) typename O::T buf[L] = {};
    for (i64 j = i; j < n; ++j) buf[j - i] = x[j];
    O::store(buf, F(O::load(buf)));
    for (i64 j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

}  // namespace

void sigmoid(i64 n, const float* x, float* y) { apply<F32, sigmoid_v<F32>>(n, x, y); }
void sigmoid(i64 n, const double* x, double* y) { apply<F64, sigmoid_v<F64>>(n, x, y); }
void tanh(i64 n, const float* x, float* y) { apply<F32, tanh_v<F32>>(n, x, y); }
void tanh(i64 n, const double* x, double* y) { apply<F64, tanh_v<F64>>(n, x, y); }

}  // namespace rnnkit::kernels::detail::avx2
