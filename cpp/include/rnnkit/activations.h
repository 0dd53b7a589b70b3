// Elementwise activations over contiguous arrays. They know nothing of RNNs.
//
//   sigmoid: y[i] = 1 / (1 + exp(-x[i]))
//   tanh:    y[i] = tanh(x[i])
//
// x is read, y is written; y may alias x (exactly, not partially). Each element's result
// depends only on its own input and the ISA (isa.h), never on its position or on n, so
// splitting an array between threads gives the same bits.
//
// ISA "plain" runs the libm formulas below (sigmoid_scalar, std::tanh). ISAs "avx2" and
// "avx512" run exp-based vector code (vector_math.h), with the same bits. All are within
// 3 ulp of the exact value for float and for double (tests/test_kernels.py checks it;
// docs/performance.md has the worst error found); no overflow for large |x| (tanh(+-1e4) = +-1, sigmoid(-1e4) = 0,
// sigmoid(1e4) = 1);
// NaN in, NaN out; tanh(-0) = -0.
#pragma once
#include <cmath>
#include <cstdint>

namespace rnnkit::kernels {

// The libm formula: the definition, and what ISA "plain" computes.
template <typename T>
inline T sigmoid_scalar(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// The activation functions a cell may be given (ONNX's, with its definitions):
//   sigmoid, tanh, relu max(x, 0), hard_sigmoid clamp(alpha*x + beta, 0, 1),
//   leaky_relu x >= 0 ? x : alpha*x, thresholded_relu x > alpha ? x : 0,
//   scaled_tanh alpha*tanh(beta*x), affine alpha*x + beta,
//   elu x >= 0 ? x : alpha*(exp(x) - 1), softsign x / (1 + |x|), softplus log(1 + exp(x)).
enum class ActivationKind {
  sigmoid,
  tanh,
  relu,
  hard_sigmoid,
  leaky_relu,
  thresholded_relu,
  scaled_tanh,
  affine,
  elu,
  softsign,
  softplus
};
struct Activation {
  ActivationKind kind = ActivationKind::sigmoid;
  double alpha = 0;  // the parameters of the kinds that take them, else unused
  double beta = 0;
};

// Defined for T = float and double.
template <typename T>
void sigmoid(std::int64_t n, const T* x, T* y);
template <typename T>
void tanh(std::int64_t n, const T* x, T* y);

// y[i] = act(x[i]), i < n; y may alias x. sigmoid and tanh are the functions above; the
// others are one loop each (the same bits on every ISA).
template <typename T>
void activate(const Activation& act, std::int64_t n, const T* x, T* y);

// dx[i] = dy[i] * act'(x[i]) given y = act(x); dx may alias dy. sigmoid and tanh read y
// only (dy*y*(1-y), dy*(1-y*y); x may be nullptr), the others x. At a kink the one-sided
// derivative torch's backward functions take: relu at 0 gives 0, leaky_relu at 0 alpha,
// thresholded_relu at alpha 0, hard_sigmoid where alpha*x + beta is 0 or 1 gives 0, elu
// at 0 alpha.
template <typename T>
void activation_backprop(const Activation& act, std::int64_t n, const T* x, const T* y,
                         const T* dy, T* dx);

// y[i] = x[i] clamped to [-bound, bound]; y may alias x.
template <typename T>
void clamp(std::int64_t n, T bound, const T* x, T* y);

// d[i] = 0 where |x[i]| > bound (the gradient through clamp; at the bounds it passes).
template <typename T>
void clamp_backprop(std::int64_t n, T bound, const T* x, T* d);

// The portable loops (ISA "plain").
namespace plain {
template <typename T>
inline void sigmoid(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(x[i]);
}
template <typename T>
inline void tanh(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
}  // namespace plain

}  // namespace rnnkit::kernels
