// The training cache's layout and checks (stack_cache.h).
#include "stack_cache.h"

#include <algorithm>
#include <string>

#include "rnnkit/checksum.h"

namespace rnnkit::detail {

namespace {

// Whether cell (k, d) keeps h_prev (T, B, R); otherwise it keeps h0 (B, R) and its
// backward reads h_{t-1} from the outputs.
bool cell_keeps_h_prev(const CellKind& kind, const StackDims& s, i64 k) {
  return kind.keeps_h_prev && !(kind.backward_reads_out && k + 1 == s.L);
}

// Whether cell (k, d) keeps no gates of its own: its gates are h_t and the layer's output
// is kept anyway (the last layer's out, which the cache references, and, without dropout,
// a lower layer's output, the next layer's input, which the cache keeps) as exactly
// [h_t forward | h_t reverse] (0 in inactive rows).
bool gates_elsewhere(const CellKind& kind, const StackDims& s, i64 k, bool dropout) {
  return kind.gates_are_h && (k + 1 == s.L || !dropout);
}

constexpr int kArrays = kCellWeightArrays;

// Bytes of cell (k, d)'s w_ih, w_hh, b_ih, b_hh, w_hr (0 for absent arrays).
template <typename T>
void weight_bytes(const StackDims& s, i64 gh, i64 k, i64 bytes[kArrays]) {
  const i64 t = static_cast<i64>(sizeof(T));
  bytes[0] = gh * layer_input_size(s, k) * t;
  bytes[1] = gh * h_size(s) * t;
  bytes[2] = bytes[3] = s.bias ? gh * t : 0;
  bytes[4] = s.P * s.H * t;
}

// The arrays of a CellWeights, in (w_ih, w_hh, b_ih, b_hh, w_hr) order.
template <typename T>
void weight_arrays(const CellWeights<T>& w, const T* arrays[kArrays]) {
  arrays[0] = w.w_ih;
  arrays[1] = w.w_hh;
  arrays[2] = w.b_ih;
  arrays[3] = w.b_hh;
  arrays[4] = w.w_hr;
}

// The checksums of cell's weight arrays (0 for absent ones).
template <typename T>
void weight_checksums(const StackDims& s, i64 gh, i64 cell, const CellWeights<T>& w,
                      std::uint64_t sums[kArrays]) {
  i64 bytes[kArrays];
  const T* arrays[kArrays];
  weight_bytes<T>(s, gh, cell / s.D, bytes);
  weight_arrays(w, arrays);
  for (int j = 0; j < kArrays; ++j) {
    sums[j] = bytes[j] > 0 ? buffer_checksum(arrays[j], bytes[j]) : 0;
  }
}

// The messages of the in-place checks (the NumPy reference raises the same).
const char* const kModifiedInPlace[2] = {
    "backward: x was modified in place after the forward pass (the backward needs its "
    "values); pass a copy or run forward again",
    "backward: out was modified in place after the forward pass (the backward needs its "
    "values); pass a copy or run forward again",
};

// The message for weight j (0..4: w_ih, w_hh, b_ih, b_hh, w_hr) of cell (k, d), named as its
// PyTorch parameter (the NumPy reference raises the same).
std::string weight_modified_message(i64 k, i64 d, int j) {
  return "backward: " + parameter_name(j, k, d) +
         " was modified in place after the forward pass (the backward needs its values); "
         "update parameters after backward, or run forward again";
}

template <typename T>
i64 bytes_of(i64 elements) {
  return elements * static_cast<i64>(sizeof(T));
}

// The checksum of cell's peepholes w_ph (3H,).
template <typename T>
std::uint64_t peephole_checksum(const StackDims& s, const CellWeights<T>& w) {
  return buffer_checksum(w.w_ph, bytes_of<T>(3 * s.H));
}

// Columns of a cell's pre buffer: its G gate blocks, and the LSTM's c_t.
i64 pre_columns(const CellKind& kind, i64 H) {
  return (kind.gates + (kind.has_cell_state ? 1 : 0)) * H;
}

}  // namespace

}  // namespace rnnkit::detail

namespace rnnkit {

template <typename T>
void pack_stack(PackedStack<T>& packed, const CellWeights<T>* weights, Mode mode,
                const StackDims& s) {
  const detail::i64 cells = s.L * s.D, gh = detail::checked_mul(cell_kind(mode).gates, s.H);
  packed.mode = mode;
  packed.dims = s;
  packed.w_ih.resize(cells);
  packed.w_hh.resize(mode == Mode::gru_reset_before ? 0 : cells);
  packed.w_hr.resize(s.P > 0 ? cells : 0);
  packed.checksums.assign(detail::kArrays * cells, 0);
  const detail::i64 R = detail::h_size(s);
  for (detail::i64 cell = 0; cell < cells; ++cell) {
    const CellWeights<T>& w = weights[cell];
    const detail::i64 in_k = detail::layer_input_size(s, cell / s.D);
    packed.w_ih[cell].pack_nt(gh, in_k, w.w_ih, in_k);
    if (!packed.w_hh.empty()) packed.w_hh[cell].pack_nt(gh, R, w.w_hh, R);
    if (!packed.w_hr.empty()) packed.w_hr[cell].pack_nt(s.P, s.H, w.w_hr, s.H);
    detail::weight_checksums(s, gh, cell, w, &packed.checksums[detail::kArrays * cell]);
  }
}

template void pack_stack<float>(PackedStack<float>&, const CellWeights<float>*, Mode,
                                const StackDims&);
template void pack_stack<double>(PackedStack<double>&, const CellWeights<double>*, Mode,
                                 const StackDims&);

}  // namespace rnnkit

namespace rnnkit::detail {

template <typename T>
void prepare_cache(StackCache<T>& cache, const T* x, const T* h0,
                   const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& s,
                   const CellOptions* options) {
  const CellKind& kind = cell_kind(mode);
  const i64 H = s.H, R = h_size(s), rows = checked_mul(s.T, s.B);
  const i64 gh = checked_mul(kind.gates, H), layer_out = checked_mul(rows, s.D * R);
  cache.mode = mode;
  cache.dims = s;
  cache.has_lengths = lengths != nullptr;
  cache.has_masks = masks != nullptr && s.L > 1;
  cache.lengths.assign(lengths, lengths == nullptr ? lengths : lengths + s.B);

  Arena arena;
  cache.x = x;
  cache.x_checksum = buffer_checksum(x, bytes_of<T>(rows * s.I));
  cache.out = nullptr;
  cache.weights.assign(weights, weights + s.L * s.D);
  cache.weight_checksums.assign(kArrays * s.L * s.D, 0);
  for (i64 cell = 0; cell < s.L * s.D; ++cell) {
    weight_checksums(s, gh, cell, weights[cell], &cache.weight_checksums[kArrays * cell]);
  }
  cache.has_options = options != nullptr;
  cache.options = options != nullptr ? *options : CellOptions{};
  cache.peephole_checksums.clear();
  for (i64 cell = 0; cell < s.L * s.D && cache.options.peepholes; ++cell) {
    cache.peephole_checksums.push_back(peephole_checksum(s, weights[cell]));
  }
  cache.input_offsets.assign(s.L, -1);
  for (i64 k = 1; k < s.L; ++k) {
    cache.input_offsets[k] = arena.take(checked_mul(rows, layer_input_size(s, k)));
  }
  cache.mask_offsets.assign(cache.has_masks ? s.L - 1 : 0, -1);
  for (auto& offset : cache.mask_offsets) offset = arena.take(layer_out);
  cache.cells.assign(s.L * s.D, {});
  const i64 state = checked_mul(rows, H);
  for (i64 k = 0; k < s.L; ++k) {
    for (i64 d = 0; d < s.D; ++d) {
      auto& o = cache.cells[k * s.D + d];
      if (!gates_elsewhere(kind, s, k, cache.has_masks)) o.gates = arena.take(checked_mul(rows, gh));
      if (cell_keeps_h_prev(kind, s, k)) {
        o.h_prev = arena.take(checked_mul(rows, R));
      } else {
        o.h0 = arena.take(checked_mul(s.B, R));
      }
      if (kind.keeps_c_prev) o.c_prev = arena.take(state);
      if (kind.keeps_tanh_c) o.tanh_c = arena.take(state);
      if (kind.keeps_reset_h) o.reset_h = arena.take(state);
      if (kind.keeps_h_w_hn) o.h_w_hn = arena.take(state);
      if (cache.has_options) o.pre = arena.take(checked_mul(rows, pre_columns(kind, H)));
      if (s.P > 0) o.proj_in = arena.take(state);
    }
  }
  cache.storage.reset();  // release a previous content first
  cache.storage = PooledArray<T>(arena.size());
  cache.storage_size = arena.size();

  T* st = cache.storage.get();
  for (i64 k = 0; k + 1 < s.L && cache.has_masks; ++k) {
    std::copy(masks[k], masks[k] + layer_out, st + cache.mask_offsets[k]);
  }
  for (i64 cell = 0; cell < s.L * s.D; ++cell) {
    const auto& o = cache.cells[cell];
    if (o.h0 >= 0) std::copy(h0 + cell * s.B * R, h0 + (cell + 1) * s.B * R, st + o.h0);
  }
}

template <typename T>
void record_out(StackCache<T>& cache, const T* out) {
  if (!cell_kind(cache.mode).backward_reads_out) return;
  const StackDims& s = cache.dims;
  cache.out = out;
  cache.out_checksum = buffer_checksum(out, bytes_of<T>(s.T * s.B * s.D * h_size(s)));
}

template <typename T>
StateBuffers<T*> forward_state(StackCache<T>& cache, i64 k, i64 d) {
  const auto& o = cache.cells[k * cache.dims.D + d];
  T* st = cache.storage.get();
  auto at = [&](i64 offset) { return offset < 0 ? nullptr : st + offset; };
  StateBuffers<T*> keep;
  keep.gates = at(o.gates);  // nullptr: an RNN computing its gates in its output
  keep.ld_gates = cell_kind(cache.mode).gates * cache.dims.H;
  keep.h_prev = at(o.h_prev);
  keep.c_prev = at(o.c_prev);
  keep.tanh_c = at(o.tanh_c);
  keep.reset_h = at(o.reset_h);
  keep.h_w_hn = at(o.h_w_hn);
  keep.pre = at(o.pre);
  keep.ld_pre = pre_columns(cell_kind(cache.mode), cache.dims.H);
  keep.proj_in = at(o.proj_in);
  return keep;
}

template <typename T>
StateBuffers<const T*> saved_state(const StackCache<T>& cache, i64 k, i64 d) {
  const StackDims& s = cache.dims;
  const auto& o = cache.cells[k * s.D + d];
  const T* st = cache.storage.get();
  auto at = [&](i64 offset) { return offset < 0 ? nullptr : st + offset; };
  // The layer's output columns of this direction: in out (last layer) or in the next
  // layer's input, rows D*H apart.
  auto outputs = [&] {
    return (k + 1 == s.L ? cache.out : st + cache.input_offsets[k + 1]) + d * h_size(s);
  };
  StateBuffers<const T*> saved;
  saved.gates = at(o.gates);
  saved.ld_gates = cell_kind(cache.mode).gates * s.H;
  if (saved.gates == nullptr) {  // an RNN layer without gates of its own
    saved.gates = outputs();
    saved.ld_gates = s.D * s.H;
  }
  saved.h_prev = at(o.h_prev);
  saved.c_prev = at(o.c_prev);
  saved.tanh_c = at(o.tanh_c);
  saved.reset_h = at(o.reset_h);
  saved.h_w_hn = at(o.h_w_hn);
  saved.pre = at(o.pre);
  saved.ld_pre = pre_columns(cell_kind(cache.mode), s.H);
  saved.proj_in = at(o.proj_in);
  saved.h0 = at(o.h0);
  if (saved.h_prev == nullptr && k + 1 == s.L && cache.out != nullptr) {
    // h_{t-1}: out shifted by one step, and h0
    saved.hs = outputs();
    saved.ld_hs = s.D * h_size(s);
  }
  return saved;
}

template <typename T>
void check_unchanged(const StackCache<T>& cache) {
  const StackDims& s = cache.dims;
  const i64 rows = s.T * s.B;
  if (buffer_checksum(cache.x, bytes_of<T>(rows * s.I)) != cache.x_checksum) {
    throw std::runtime_error(kModifiedInPlace[0]);
  }
  if (cache.out != nullptr &&
      buffer_checksum(cache.out, bytes_of<T>(rows * s.D * h_size(s))) != cache.out_checksum) {
    throw std::runtime_error(kModifiedInPlace[1]);
  }
  const i64 gh = cell_kind(cache.mode).gates * s.H;
  for (i64 cell = 0; cell < s.L * s.D; ++cell) {
    std::uint64_t sums[kArrays];
    weight_checksums(s, gh, cell, cache.weights[cell], sums);
    for (int j = 0; j < kArrays; ++j) {
      if (sums[j] != cache.weight_checksums[kArrays * cell + j]) {
        throw std::runtime_error(weight_modified_message(cell / s.D, cell % s.D, j));
      }
    }
    if (!cache.peephole_checksums.empty() &&
        peephole_checksum(s, cache.weights[cell]) != cache.peephole_checksums[cell]) {
      const std::string suffix = parameter_name(0, cell / s.D, cell % s.D).substr(9);
      throw std::runtime_error("backward: weight_ph" + suffix +
                               " was modified in place after the forward pass (the backward "
                               "needs its values); update parameters after backward, or run "
                               "forward again");
    }
  }
}

#define RNNKIT_INSTANTIATE(T)                                                                \
  template void prepare_cache<T>(StackCache<T>&, const T*, const T*, const CellWeights<T>*, \
                                 const std::int64_t*, const T* const*, Mode,                \
                                 const StackDims&, const CellOptions*);                     \
  template void record_out<T>(StackCache<T>&, const T*);                                    \
  template StateBuffers<T*> forward_state<T>(StackCache<T>&, i64, i64);                     \
  template StateBuffers<const T*> saved_state<T>(const StackCache<T>&, i64, i64);           \
  template void check_unchanged<T>(const StackCache<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::detail
