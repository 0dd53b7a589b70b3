// Pieces the cells share for their variants (cell_options.h: other activations, clip,
// peepholes, input_forget); internal. The cells run these only when given options, so
// their usual code (and its bits) is untouched.
#pragma once
#include <algorithm>

#include "cell_common.h"
#include "rnnkit/activations.h"
#include "rnnkit/cell_options.h"

namespace rnnkit::detail {

// Units per pass of a cell's variant code, whose temporaries (a few of this many
// elements) live on the stack.
constexpr i64 kVariantChunk = 256;

// One gate block: a (n,) read as pre-activations, written act(clip(a)); pre (n,) written
// with a before the clip (the backward takes the derivatives there), or nullptr.
template <typename T>
void activate_gate(const kernels::Activation& act, double clip, i64 n, T* a, T* pre) {
  if (pre != nullptr) std::copy(a, a + n, pre);
  if (clip > 0) kernels::clamp(n, static_cast<T>(clip), a, a);
  kernels::activate(act, n, a, a);
}

// The gradient through activate_gate: da (n,) written dy * act'(clip(pre)), 0 where the
// clip cut (|pre| > clip). pre, y = act(clip(pre)), dy (n,) read; tmp (n,) scratch; da
// may alias dy.
template <typename T>
void backprop_gate(const kernels::Activation& act, double clip, i64 n, const T* pre,
                   const T* y, const T* dy, T* da, T* tmp) {
  const T* x = pre;
  if (clip > 0) {
    kernels::clamp(n, static_cast<T>(clip), pre, tmp);
    x = tmp;
  }
  kernels::activation_backprop(act, n, x, y, dy, da);
  if (clip > 0) kernels::clamp_backprop(n, static_cast<T>(clip), pre, da);
}

// Calls f(j, m) for the chunks [j, j + m) of [0, n), m <= kVariantChunk.
template <class F>
void for_each_variant_chunk(i64 n, const F& f) {
  for (i64 j = 0; j < n; j += kVariantChunk) f(j, std::min(kVariantChunk, n - j));
}

}  // namespace rnnkit::detail
