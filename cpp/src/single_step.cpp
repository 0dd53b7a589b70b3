// One step of a one-direction stack at inference (single_step.h): the layer loop of
// stack_forward (stack.cpp) at T = 1, with the scratch kept per thread across calls.
#include "rnnkit/single_step.h"

#include <vector>

#include "rnnkit/cell_kinds.h"
#include "rnnkit/gemm.h"
#include "stack_cache.h"

namespace rnnkit {

using detail::Arena;
using detail::cell_dims;
using detail::checked_mul;
using detail::i64;
using detail::layer_input_size;

std::int64_t step_multiply_adds(Mode mode, const StackDims& s) {
  const i64 gh = checked_mul(cell_kind(mode).gates, s.H);
  i64 total = 0;
  for (i64 k = 0; k < s.L; ++k) {
    const i64 per_row = checked_mul(gh, layer_input_size(s, k) + s.H);
    if (__builtin_add_overflow(total, checked_mul(s.B, per_row), &total)) {
      throw std::length_error("rnnkit: buffer sizes overflow 64-bit integers");
    }
  }
  return total;
}

// Bytes of scratch a thread keeps between steps.
constexpr i64 kKeptScratchBytes = i64(256) << 10;

template <typename T>
void stack_step(T* out, T* h, T* c, const T* x, const CellWeights<T>* weights,
                const PackedStack<T>& packed, Mode mode, const StackDims& s) {
  const CellKind& kind = cell_kind(mode);
  const CellOps<T>& ops = cell_ops<T>(mode);
  const i64 B = s.B, H = s.H;
  const i64 gh = checked_mul(kind.gates, H);

  // Scratch, as stack_forward's at inference: cell work; the gates (B, G*H) except where
  // they are h_t; two layer outputs (B, H) (layer k writes buffer k % 2, the last layer
  // only without `out`). A step never runs inside another on one thread, so one buffer
  // per thread serves every call, up to kKeptScratchBytes; a larger step takes its
  // scratch from the memory pool for the call, so that no thread keeps much.
  Arena arena;
  const i64 work_at = arena.take(ops.work_size(cell_dims(s, 0, 0)));
  const i64 gates_at = kind.gates_are_h ? -1 : arena.take(checked_mul(B, gh));
  const i64 layer_at = s.L == 1 && out != nullptr ? -1 : arena.take(checked_mul(2 * B, H));
  thread_local std::vector<T, kernels::AlignedAllocator<T>> kept;
  PooledArray<T> for_this_call;
  T* base = nullptr;
  if (checked_mul(arena.size(), i64(sizeof(T))) > kKeptScratchBytes) {
    for_this_call = PooledArray<T>(arena.size());
    base = for_this_call.get();
  } else {
    if (static_cast<i64>(kept.size()) < arena.size()) kept.resize(size_t(arena.size()));
    base = kept.data();
  }

  for (i64 k = 0; k < s.L; ++k) {
    ForwardArgs<T> a;
    a.out = k + 1 == s.L && out != nullptr ? out : base + layer_at + (k % 2) * B * H;
    a.h = h + k * B * H;
    a.c = kind.has_cell_state ? c + k * B * H : nullptr;
    a.work = base + work_at;
    a.x = k == 0 ? x : base + layer_at + ((k - 1) % 2) * B * H;
    a.w = weights[k];
    a.w.w_ih_packed = &packed.w_ih[k];
    if (!packed.w_hh.empty()) a.w.w_hh_packed = &packed.w_hh[k];
    if (!kind.gates_are_h) {
      a.keep.gates = base + gates_at;
      a.keep.ld_gates = gh;
    }
    ops.forward(a, cell_dims(s, k, 0));
  }
}

template void stack_step<float>(float*, float*, float*, const float*, const CellWeights<float>*,
                                const PackedStack<float>&, Mode, const StackDims&);
template void stack_step<double>(double*, double*, double*, const double*,
                                 const CellWeights<double>*, const PackedStack<double>&, Mode,
                                 const StackDims&);

}  // namespace rnnkit
