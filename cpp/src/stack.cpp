// The stack driver (see stack.h): sizes buffers once per call, then runs the cells layer
// by layer, direction by direction, through the entry points of the table of cell kinds
// (cell_kinds.h). The cache layout and its checks are stack_cache.cpp's.
#include "rnnkit/stack.h"

#include <algorithm>

#include "cell_common.h"
#include "rnnkit/cell_kinds.h"
#include "stack_cache.h"

namespace rnnkit {

using detail::Arena;
using detail::cell_dims;
using detail::checked_mul;
using detail::h_size;
using detail::i64;

namespace {

// y (rows, cols) *= m (rows, cols), elementwise.
template <typename T>
void apply_mask(T* y, const T* m, i64 rows, i64 cols) {
  detail::for_each_item(rows, cols, [&](i64 r) {
    T* yr = y + r * cols;
    const T* mr = m + r * cols;
    for (i64 j = 0; j < cols; ++j) yr[j] *= mr[j];
  });
}

}  // namespace

template <typename T>
void stack_forward(T* out, T* h_n, T* c_n, StackCache<T>* cache, const T* x, const T* h0,
                   const T* c0, const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& s,
                   PackedStack<T>* packed, const CellOptions* options) {
  const CellKind& kind = cell_kind(mode);
  const CellOps<T>& ops = cell_ops<T>(mode);
  const bool training = cache != nullptr;
  const i64 H = s.H, R = h_size(s), DR = s.D * R;  // DR: a layer's output width
  const i64 rows = checked_mul(s.T, s.B);
  const i64 gh = checked_mul(kind.gates, H);
  const i64 state = checked_mul(checked_mul(s.L * s.D, s.B), R);  // (L*D, B, R)
  const i64 cell_state = checked_mul(checked_mul(s.L * s.D, s.B), H);  // (L*D, B, H)
  if (training) {
    detail::prepare_cache(*cache, x, h0, weights, lengths, masks, mode, s, options);
  }
  if (training && packed != nullptr && packed->checksums != cache->weight_checksums) {
    pack_stack(*packed, weights, mode, s);
  }
  const bool dropout = masks != nullptr && s.L > 1;

  // Scratch for this call: cell work; the gates (T, B, G*H) at inference, except where
  // they are h_t, which the cell computes in its output; and at inference two layer
  // buffers (layer k writes buffer k % 2; in training the cache holds these instead).
  Arena arena;
  const i64 work_at = arena.take(ops.work_size(cell_dims(s, 0, 0)));
  const bool gates_scratch = !training && !kind.gates_are_h;
  const i64 gates_at = gates_scratch ? arena.take(checked_mul(rows, gh)) : -1;
  const i64 layer_at =
      training || s.L == 1 ? -1 : arena.take(checked_mul(checked_mul(2, rows), DR));
  PooledArray<T> scratch(arena.size());

  std::copy(h0, h0 + state, h_n);
  if (kind.has_cell_state) std::copy(c0, c0 + cell_state, c_n);
  // Layer k's output (T, B, D*R) at inference: scratch buffer k % 2.
  auto layer_buffer = [&](i64 k) { return scratch.get() + layer_at + (k % 2) * rows * DR; };
  T* st = training ? cache->storage.get() : nullptr;
  for (i64 k = 0; k < s.L; ++k) {
    const T* in = x;  // (T, B, I_k), after dropout
    if (k > 0) in = training ? st + cache->input_offsets[k] : layer_buffer(k - 1);
    T* y = out;  // (T, B, D*R)
    if (k + 1 < s.L) y = training ? st + cache->input_offsets[k + 1] : layer_buffer(k);
    for (i64 d = 0; d < s.D; ++d) {
      const i64 cell = k * s.D + d;
      ForwardArgs<T> a;
      a.out = y + d * R;
      a.h = h_n + cell * s.B * R;
      a.c = kind.has_cell_state ? c_n + cell * s.B * H : nullptr;
      a.work = scratch.get() + work_at;
      a.x = in;
      a.w = weights[cell];
      if (packed != nullptr) {
        a.w.w_ih_packed = &packed->w_ih[cell];
        if (!packed->w_hh.empty()) a.w.w_hh_packed = &packed->w_hh[cell];
        if (!packed->w_hr.empty()) a.w.w_hr_packed = &packed->w_hr[cell];
      }
      a.lengths = lengths;
      a.options = options;
      if (training) {
        a.keep = detail::forward_state(*cache, k, d);
      } else if (gates_scratch) {
        a.keep.gates = scratch.get() + gates_at;
        a.keep.ld_gates = gh;
      }
      ops.forward(a, cell_dims(s, k, d));
    }
    if (k + 1 < s.L && dropout) apply_mask(y, masks[k], rows, DR);
  }
  if (training) detail::record_out(*cache, out);
}

template <typename T>
void stack_backward(T* dx, T* dh0, T* dc0, const CellGrads<T>* grads, bool accumulate_grads,
                    const StackCache<T>& cache, const T* dout, const T* dh_n, const T* dc_n) {
  const StackDims& s = cache.dims;
  const CellKind& kind = cell_kind(cache.mode);
  const CellOps<T>& ops = cell_ops<T>(cache.mode);
  const i64 H = s.H, R = h_size(s), DR = s.D * R, BH = s.B * H, BR = s.B * R;
  const i64 rows = checked_mul(s.T, s.B);
  const i64 gh = checked_mul(kind.gates, H);
  const i64 state = checked_mul(s.L * s.D, BR);  // (L*D, B, R)
  const i64 cell_state = checked_mul(s.L * s.D, BH);  // (L*D, B, H)
  // The caller's x, out and weights, which the cache references, must be as the forward
  // left them.
  detail::check_unchanged(cache);

  // Scratch: dgates (C, ld_dgates) and, where the kind needs it, dgates_h (C, H) and,
  // with a projection, dh_rows (C, P), C being the rows of one chunk of time steps
  // (backward_chunk_rows); cell work; two buffers (T, B, D*R) for the gradient w.r.t. a
  // layer's input (layer k writes buffer k % 2, which becomes layer k-1's output
  // gradient). ld_dgates: G*H, or G*H plus one cache line where rows of G*H values would
  // share L1 sets (dgates_row_stride); the padding costs C * 64 bytes.
  const i64 chunk_rows = backward_chunk_rows(cell_dims(s, 0, 0));
  const i64 ld_dgates = detail::dgates_row_stride<T>(gh);
  Arena arena;
  const i64 dgates_at = arena.take(checked_mul(chunk_rows, ld_dgates));
  const i64 dgates_h_at = kind.needs_dgates_h ? arena.take(checked_mul(chunk_rows, H)) : -1;
  const i64 dh_rows_at = s.P > 0 ? arena.take(checked_mul(chunk_rows, s.P)) : -1;
  const i64 work_at = arena.take(ops.work_size(cell_dims(s, 0, 0)));
  const i64 layer_at = s.L == 1 ? -1 : arena.take(checked_mul(checked_mul(2, rows), DR));
  PooledArray<T> scratch(arena.size());

  std::copy(dh_n, dh_n + state, dh0);
  if (kind.has_cell_state) std::copy(dc_n, dc_n + cell_state, dc0);
  const std::int64_t* lengths = cache.has_lengths ? cache.lengths.data() : nullptr;
  const T* st = cache.storage.get();
  const T* d_out = dout;  // (T, B, D*R): dL/d(layer k's output)
  for (i64 k = s.L - 1; k >= 0; --k) {
    T* d_in = k == 0 ? dx : scratch.get() + layer_at + (k % 2) * rows * DR;  // (T, B, I_k)
    for (i64 d = 0; d < s.D; ++d) {
      const i64 cell = k * s.D + d;
      BackwardArgs<T> a;
      a.dx = d_in;
      a.dh = dh0 + cell * BR;
      a.dc = kind.has_cell_state ? dc0 + cell * BH : nullptr;
      a.g = grads[cell];
      a.dgates = scratch.get() + dgates_at;
      a.ld_dgates = ld_dgates;
      a.dgates_h = dgates_h_at < 0 ? nullptr : scratch.get() + dgates_h_at;
      a.dh_rows = dh_rows_at < 0 ? nullptr : scratch.get() + dh_rows_at;
      a.work = scratch.get() + work_at;
      a.dout = d_out + d * R;
      a.x = k == 0 ? cache.x : st + cache.input_offsets[k];
      a.w = cache.weights[cell];
      a.lengths = lengths;
      a.saved = detail::saved_state(cache, k, d);
      a.options = cache.has_options ? &cache.options : nullptr;
      a.accumulate_dx = d > 0;  // the reverse direction adds into the same d_in
      a.accumulate_dw = accumulate_grads;
      ops.backward(a, cell_dims(s, k, d));
    }
    if (k > 0 && cache.has_masks) apply_mask(d_in, st + cache.mask_offsets[k - 1], rows, DR);
    d_out = d_in;
  }
}

#define RNNKIT_INSTANTIATE(T)                                                                 \
  template void stack_forward<T>(T*, T*, T*, StackCache<T>*, const T*, const T*, const T*,    \
                                 const CellWeights<T>*, const std::int64_t*, const T* const*, \
                                 Mode, const StackDims&, PackedStack<T>*,                     \
                                 const CellOptions*);                                         \
  template void stack_backward<T>(T*, T*, T*, const CellGrads<T>*, bool,                      \
                                  const StackCache<T>&, const T*, const T*, const T*);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
