// Activation entry points (see activations.h): dispatch on the run-time ISA.
#include "rnnkit/activations.h"

#include "kernels_isa.h"
#include "rnnkit/isa.h"

namespace rnnkit::kernels {

template <typename T>
void sigmoid(std::int64_t n, const T* x, T* y) {
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (current_isa() == Isa::avx512) return detail::avx512::sigmoid(n, x, y);
#endif
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (uses_avx2(current_isa())) return detail::avx2::sigmoid(n, x, y);
#endif
  plain::sigmoid(n, x, y);
}

template <typename T>
void tanh(std::int64_t n, const T* x, T* y) {
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (current_isa() == Isa::avx512) return detail::avx512::tanh(n, x, y);
#endif
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

// The generic activations (activations.h): one loop per kind, the kind chosen outside it
// so that each loop vectorises.
namespace rnnkit::kernels {

template <typename T>
void activate(const Activation& act, std::int64_t n, const T* x, T* y) {
  const T alpha = static_cast<T>(act.alpha), beta = static_cast<T>(act.beta);
  switch (act.kind) {
    case ActivationKind::sigmoid:
      return sigmoid(n, x, y);
    case ActivationKind::tanh:
      return tanh(n, x, y);
    case ActivationKind::relu:
      for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN passes
      return;
    case ActivationKind::hard_sigmoid:
      for (std::int64_t i = 0; i < n; ++i) {
        const T a = alpha * x[i] + beta;
        y[i] = a < T(0) ? T(0) : (a > T(1) ? T(1) : a);
      }
      return;
    case ActivationKind::leaky_relu:
      for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] >= T(0) ? x[i] : alpha * x[i];
      return;
    case ActivationKind::thresholded_relu:
      for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > alpha ? x[i] : T(0);
      return;
    case ActivationKind::scaled_tanh:
      for (std::int64_t i = 0; i < n; ++i) y[i] = beta * x[i];
      tanh(n, y, y);
      for (std::int64_t i = 0; i < n; ++i) y[i] *= alpha;
      return;
    case ActivationKind::affine:
      for (std::int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta;
      return;
    case ActivationKind::elu:
      for (std::int64_t i = 0; i < n; ++i) {
        y[i] = x[i] >= T(0) ? x[i] : alpha * std::expm1(x[i]);
      }
      return;
    case ActivationKind::softsign:
      for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] / (T(1) + std::abs(x[i]));
      return;
    case ActivationKind::softplus:
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x.
      for (std::int64_t i = 0; i < n; ++i) {
        y[i] = (x[i] > T(0) ? x[i] : T(0)) + std::log1p(std::exp(-std::abs(x[i])));
      }
      return;
  }
}

template <typename T>
void activation_backprop(const Activation& act, std::int64_t n, const T* x, const T* y,
                         const T* dy, T* dx) {
  const T alpha = static_cast<T>(act.alpha), beta = static_cast<T>(act.beta);
  switch (act.kind) {
    case ActivationKind::sigmoid:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      return;
    case ActivationKind::tanh:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
      return;
    case ActivationKind::relu:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
      return;
    case ActivationKind::hard_sigmoid:
      for (std::int64_t i = 0; i < n; ++i) {
        const T a = alpha * x[i] + beta;
        dx[i] = a > T(0) && a < T(1) ? dy[i] * alpha : T(0);
      }
      return;
    case ActivationKind::leaky_relu:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : dy[i] * alpha;
      return;
    case ActivationKind::thresholded_relu:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] > alpha ? dy[i] : T(0);
      return;
    case ActivationKind::scaled_tanh:
      for (std::int64_t i = 0; i < n; ++i) {
        const T t = std::tanh(beta * x[i]);
        dx[i] = dy[i] * (alpha * beta * (T(1) - t * t));
      }
      return;
    case ActivationKind::affine:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * alpha;
      return;
    case ActivationKind::elu:
      for (std::int64_t i = 0; i < n; ++i) {
        dx[i] = x[i] > T(0) ? dy[i] : dy[i] * (alpha * std::exp(x[i] < T(0) ? x[i] : T(0)));
      }
      return;
    case ActivationKind::softsign:
      for (std::int64_t i = 0; i < n; ++i) {
        const T s = T(1) + std::abs(x[i]);
        dx[i] = dy[i] / (s * s);
      }
      return;
    case ActivationKind::softplus:
      for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * sigmoid_scalar(x[i]);
      return;
  }
}

template <typename T>
void clamp(std::int64_t n, T bound, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) {
    y[i] = x[i] < -bound ? -bound : (x[i] > bound ? bound : x[i]);
  }
}

template <typename T>
void clamp_backprop(std::int64_t n, T bound, const T* x, T* d) {
  for (std::int64_t i = 0; i < n; ++i) d[i] = std::abs(x[i]) <= bound ? d[i] : T(0);
}

#define RNNKIT_INSTANTIATE(T)                                                             \
  template void activate<T>(const Activation&, std::int64_t, const T*, T*);              \
  template void activation_backprop<T>(const Activation&, std::int64_t, const T*,        \
                                       const T*, const T*, T*);                          \
  template void clamp<T>(std::int64_t, T, const T*, T*);                                 \
  template void clamp_backprop<T>(std::int64_t, T, const T*, T*);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels
