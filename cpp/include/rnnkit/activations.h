// Elementwise activations over contiguous arrays. They know nothing of RNNs.
//
//   sigmoid: y[i] = 1 / (1 + exp(-x[i]))
//   tanh:    y[i] = tanh(x[i])
//
// x is read, y is written; y may alias x (exactly, not partially). Each element's result
// depends only on its own input and the ISA (isa.h), never on its position or on n, so
// splitting an array between threads gives the same bits.
//
// ISA "plain" runs the libm formulas below (sigmoid_scalar, std::tanh). ISA "avx2" runs
// exp-based vector code (activations_avx2.cpp). Both are within 3 ulp of the exact value
// for float and for double (tests/test_kernels.py checks it; docs/performance.md has the
// worst error found); no overflow for large |x| (tanh(+-1e4) = +-1, sigmoid(-1e4) = 0,
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

// Defined for T = float and double.
template <typename T>
void sigmoid(std::int64_t n, const T* x, T* y);
template <typename T>
void tanh(std::int64_t n, const T* x, T* y);

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
