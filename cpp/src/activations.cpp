// Activation entry points (see activations.h): dispatch on the run-time ISA.
#include "rnnkit/activations.h"

#include "kernels_isa.h"
#include "rnnkit/isa.h"

namespace rnnkit::kernels {

template <typename T>
void sigmoid(std::int64_t n, const T* x, T* y) {
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (uses_avx2(current_isa())) return detail::avx2::sigmoid(n, x, y);
#endif
  plain::sigmoid(n, x, y);
}

template <typename T>
void tanh(std::int64_t n, const T* x, T* y) {
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (uses_avx2(current_isa())) return detail::avx2::tanh(n, x, y);
#endif
  plain::tanh(n, x, y);
}

template void sigmoid<float>(std::int64_t, const float*, float*);
template void sigmoid<double>(std::int64_t, const double*, double*);
template void tanh<float>(std::int64_t, const float*, float*);
template void tanh<double>(std::int64_t, const double*, double*);

}  // namespace rnnkit::kernels
