// Sigmoid and tanh over arrays (see activations.h) for any vector ISA: a template over
// the ISA's operations struct O (vector_math.h), instantiated by activations_avx2.cpp and
// activations_avx512.cpp. A tail shorter than one register is padded and runs through the
// same vector code, so an element's bits never depend on its position, on n or on O.
#pragma once
#include <cstdint>

namespace rnnkit::kernels::detail::vec_math {

// y[i] = F(x[i]) for i < n; y may alias x.
template <class O, typename O::V (*F)(typename O::V)>
void apply_each(std::int64_t n, const typename O::T* x, typename O::T* y) {
  using i64 = std::int64_t;
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
    alignas(64) typename O::T buf[L] = {};
    for (i64 j = i; j < n; ++j) buf[j - i] = x[j];
    O::store(buf, F(O::load(buf)));
    for (i64 j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

}  // namespace rnnkit::kernels::detail::vec_math
