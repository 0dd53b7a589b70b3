// Elementwise activations over contiguous arrays. They know nothing of RNNs.
//
//   sigmoid: y[i] = 1 / (1 + exp(-x[i]))
//   tanh:    y[i] = tanh(x[i])
//
// x is read, y is written; y may alias x. Each element's result depends only on its own
// input (never on its position or on n), so splitting an array between threads gives
// the same bits.
#pragma once
#include <cmath>
#include <cstdint>

namespace rnnkit::kernels {

template <typename T>
inline T sigmoid_scalar(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline void sigmoid(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(x[i]);
}

template <typename T>
inline void tanh(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

}  // namespace rnnkit::kernels
