// The stack driver (see stack.h): sizes buffers once per call, then runs the cells layer
// by layer, direction by direction.
#include "rnnkit/stack.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cell_common.h"
#include "rnnkit/dims.h"
#include "rnnkit/gru.h"
#include "rnnkit/lstm.h"
#include "rnnkit/rnn.h"

namespace rnnkit {

using detail::i64;

std::int64_t gate_count(Mode mode) {
  switch (mode) {
    case Mode::rnn_tanh:
    case Mode::rnn_relu:
      return 1;
    case Mode::lstm:
      return 4;
    case Mode::gru:
    case Mode::gru_reset_before:
      return 3;
  }
  throw std::invalid_argument("rnnkit: unknown mode");
}

namespace {

std::uint64_t mix64(std::uint64_t v) {  // splitmix64's finaliser: a bijection
  v ^= v >> 30;
  v *= 0xBF58476D1CE4E5B9ULL;
  v ^= v >> 27;
  v *= 0x94D049BB133111EBULL;
  return v ^ (v >> 31);
}

}  // namespace

std::uint64_t buffer_checksum(const void* p, std::int64_t n) {
  // Eight lanes; 8-byte word w of lane j adds lo32(x) * hi32(x), x = w ^ key_j, into
  // prod_j and w into sum_j (xxh3's accumulation; SSE2's 32x32->64 multiply does two lanes
  // per instruction, ~ memory speed). The tail is zero-padded; the lanes and the length
  // are folded with a bijective mix. The SSE2 and the plain loop give the same value.
  constexpr int kLanes = 8;
  alignas(16) static constexpr std::uint64_t kKey[kLanes] = {
      0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL, 0xA4093822299F31D0ULL,
      0x082EFA98EC4E6C89ULL, 0x452821E638D01377ULL, 0xBE5466CF34E90C6CULL,
      0xC0AC29B7C97C50DDULL, 0x3F84D5B5B5470917ULL};
  constexpr i64 kBlock = 8 * kLanes;  // bytes
  const auto* bytes = static_cast<const unsigned char*>(p);
  alignas(16) std::uint64_t prod[kLanes] = {}, sum[kLanes] = {};
  const i64 blocks = n / kBlock;
  i64 b = 0;
#if defined(__SSE2__)
  {
    __m128i vp[kLanes / 2], vs[kLanes / 2], vk[kLanes / 2];
    for (int v = 0; v < kLanes / 2; ++v) {
      vp[v] = _mm_setzero_si128();
      vs[v] = _mm_setzero_si128();
      vk[v] = _mm_load_si128(reinterpret_cast<const __m128i*>(kKey + 2 * v));
    }
    for (; b < blocks; ++b) {
      const unsigned char* q = bytes + b * kBlock;
      for (int v = 0; v < kLanes / 2; ++v) {
        const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * v));
        const __m128i x = _mm_xor_si128(d, vk[v]);
        vp[v] = _mm_add_epi64(vp[v], _mm_mul_epu32(x, _mm_srli_epi64(x, 32)));
        vs[v] = _mm_add_epi64(vs[v], d);
      }
    }
    for (int v = 0; v < kLanes / 2; ++v) {
      _mm_store_si128(reinterpret_cast<__m128i*>(prod + 2 * v), vp[v]);
      _mm_store_si128(reinterpret_cast<__m128i*>(sum + 2 * v), vs[v]);
    }
  }
#endif
  auto add_block = [&](const unsigned char* q) {
    for (int j = 0; j < kLanes; ++j) {
      std::uint64_t w;
      std::memcpy(&w, q + 8 * j, 8);  // unaligned-safe load
      const std::uint64_t x = w ^ kKey[j];
      prod[j] += (x & 0xFFFFFFFFULL) * (x >> 32);
      sum[j] += w;
    }
  };
  for (; b < blocks; ++b) add_block(bytes + b * kBlock);
  unsigned char tail[kBlock] = {};
  std::memcpy(tail, bytes + blocks * kBlock, static_cast<std::size_t>(n - blocks * kBlock));
  add_block(tail);
  std::uint64_t r = mix64(static_cast<std::uint64_t>(n));
  for (int j = 0; j < kLanes; ++j) r = mix64(r ^ mix64(prod[j] + kKey[j]) ^ sum[j]);
  return r;
}

namespace {

i64 checked_mul(i64 a, i64 b) {
  i64 r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    throw std::length_error("rnnkit: buffer sizes overflow 64-bit integers");
  }
  return r;
}

// Hands out consecutive offsets into one buffer, checking for overflow.
class Arena {
 public:
  i64 take(i64 n) {
    const i64 offset = size_;
    if (__builtin_add_overflow(size_, n, &size_)) {
      throw std::length_error("rnnkit: buffer sizes overflow 64-bit integers");
    }
    return offset;
  }
  i64 size() const { return size_; }

 private:
  i64 size_ = 0;
};

// Whether a cell's forward keeps h_prev (T, B, H). The RNN does not: its gates are h_t,
// and its backward reads them shifted by one step (plus h0, kept instead) as h_{t-1}.
bool keeps_h_prev(Mode mode) { return mode != Mode::rnn_tanh && mode != Mode::rnn_relu; }

// Whether the backward reads the returned out (which the cache then references): the RNN's
// last layer reads its h_t there (its gates), the GRU's last layer its h_{t-1} (out shifted
// by one step, and h0, which the cache keeps instead of h_prev, where sequences start).
bool reads_out(Mode mode) { return mode != Mode::lstm; }

// Whether cell (k, d) keeps h_prev (T, B, H); otherwise it keeps h0 (B, H).
bool cell_keeps_h_prev(Mode mode, const StackDims& s, i64 k) {
  return keeps_h_prev(mode) && !(reads_out(mode) && k + 1 == s.L);
}

// Whether the RNN cells of layer k keep no gates of their own: the last layer's output
// (out, which the cache references) and, without dropout, a lower layer's output (the next
// layer's input, which the cache keeps) is exactly [h_t forward | h_t reverse] (0 in
// inactive rows), which is what the RNN backward reads its gates for.
bool gates_elsewhere(Mode mode, const StackDims& s, i64 k, bool dropout) {
  return !keeps_h_prev(mode) && (k + 1 == s.L || !dropout);
}

// Rows of the backward's dgates (and GRU dgates_h) workspace: every cell's backward works
// through chunks of time steps.
i64 dgates_rows(Mode mode, const Dims& d) {
  switch (mode) {
    case Mode::rnn_tanh:
    case Mode::rnn_relu:
      return rnn_backward_chunk_rows(d);
    case Mode::lstm:
      return lstm_backward_chunk_rows(d);
    default:
      return gru_backward_chunk_rows(d);
  }
}

// (T, B, H) buffers a cell's forward keeps besides gates and h_prev: LSTM c_prev and
// tanh_c, reset-before GRU extra (r * h). The reset-after GRU's backward recomputes its
// extra (h W_hn^T + b_hn) instead.
i64 saved_state_buffers(Mode mode) {
  switch (mode) {
    case Mode::lstm:
      return 2;
    case Mode::gru_reset_before:
      return 1;
    default:
      return 0;
  }
}

// Scratch elements the cells of `mode` need (forward and backward).
i64 cell_work_size(Mode mode, const Dims& d) {
  switch (mode) {
    case Mode::rnn_tanh:
    case Mode::rnn_relu:
      return rnn_work_size(d);
    case Mode::lstm:
      return lstm_work_size(d);
    default:
      return gru_work_size(d);
  }
}

i64 layer_input_size(const StackDims& s, i64 k) { return k == 0 ? s.I : s.D * s.H; }

// Dims of cell (k, d): outputs of the two directions side by side in rows of D*H.
Dims cell_dims(const StackDims& s, i64 k, i64 d) {
  Dims cd;
  cd.T = s.T;
  cd.B = s.B;
  cd.I = layer_input_size(s, k);
  cd.H = s.H;
  cd.ldo = s.D * s.H;
  cd.reverse = d == 1;
  return cd;
}

// Bytes of cell (k, d)'s w_ih, w_hh, b_ih, b_hh (0 for absent biases).
template <typename T>
void weight_bytes(const StackDims& s, i64 gh, i64 k, i64 bytes[4]) {
  const i64 t = static_cast<i64>(sizeof(T));
  bytes[0] = gh * layer_input_size(s, k) * t;
  bytes[1] = gh * s.H * t;
  bytes[2] = bytes[3] = s.bias ? gh * t : 0;
}

// The four arrays of a CellWeights, in (w_ih, w_hh, b_ih, b_hh) order.
template <typename T>
void weight_arrays(const CellWeights<T>& w, const T* arrays[4]) {
  arrays[0] = w.w_ih;
  arrays[1] = w.w_hh;
  arrays[2] = w.b_ih;
  arrays[3] = w.b_hh;
}

// Lays out and allocates the cache's storage, and copies the inputs the backward needs
// (x and the weights are referenced, with their checksums; stack_forward adds out's).
template <typename T>
void prepare_cache(StackCache<T>& cache, const T* x, const T* h0,
                   const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& s) {
  const i64 G = gate_count(mode), H = s.H, rows = checked_mul(s.T, s.B);
  const i64 gh = checked_mul(G, H), layer_out = checked_mul(rows, s.D * H);
  cache.mode = mode;
  cache.dims = s;
  cache.has_lengths = lengths != nullptr;
  cache.has_masks = masks != nullptr && s.L > 1;
  cache.lengths.assign(lengths, lengths == nullptr ? lengths : lengths + s.B);

  Arena arena;
  cache.x = x;
  cache.x_checksum = buffer_checksum(x, rows * s.I * static_cast<i64>(sizeof(T)));
  cache.out = nullptr;
  cache.weights.assign(weights, weights + s.L * s.D);
  cache.weight_checksums.assign(4 * s.L * s.D, 0);
  for (i64 cell = 0; cell < s.L * s.D; ++cell) {
    i64 bytes[4];
    const T* arrays[4];
    weight_bytes<T>(s, gh, cell / s.D, bytes);
    weight_arrays(weights[cell], arrays);
    for (int j = 0; j < 4; ++j) {
      if (bytes[j] > 0) cache.weight_checksums[4 * cell + j] = buffer_checksum(arrays[j], bytes[j]);
    }
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
      if (!gates_elsewhere(mode, s, k, cache.has_masks)) {
        o.gates = arena.take(checked_mul(rows, gh));
      }
      if (cell_keeps_h_prev(mode, s, k)) {
        o.h_prev = arena.take(state);
      } else {
        o.h0 = arena.take(checked_mul(s.B, H));
      }
      if (saved_state_buffers(mode) >= 1) o.saved1 = arena.take(state);
      if (saved_state_buffers(mode) >= 2) o.saved2 = arena.take(state);
    }
  }
  cache.storage.reset();  // release a previous content first
  cache.storage = PooledArray<T>(arena.size());
  cache.storage_size = arena.size();

  T* st = cache.storage.get();
  for (i64 k = 0; k + 1 < s.L && cache.has_masks; ++k) {
    std::copy(masks[k], masks[k] + layer_out, st + cache.mask_offsets[k]);
  }
  for (i64 k = 0; k < s.L; ++k) {
    for (i64 d = 0; d < s.D; ++d) {
      const auto& o = cache.cells[k * s.D + d];
      if (o.h0 >= 0) {
        const T* h0_cell = h0 + (k * s.D + d) * s.B * H;
        std::copy(h0_cell, h0_cell + s.B * H, st + o.h0);
      }
    }
  }
}

// y (rows, cols) *= m (rows, cols), elementwise.
template <typename T>
void apply_mask(T* y, const T* m, i64 rows, i64 cols) {
  detail::for_each_item(rows, cols, [&](i64 r) {
    T* yr = y + r * cols;
    const T* mr = m + r * cols;
    for (i64 j = 0; j < cols; ++j) yr[j] *= mr[j];
  });
}

// Buffers one cell's forward writes for the backward (nullptr at inference, except the
// LSTM and GRU gates, which are always needed; the RNN's gates may be nullptr: rnn.h).
template <typename T>
struct SavedBuffers {
  T* gates = nullptr;
  T* h_prev = nullptr;
  T* saved1 = nullptr;
  T* saved2 = nullptr;
};

template <typename T>
void cell_forward(Mode mode, T* out, T* h, T* c, const SavedBuffers<T>& s, T* work,
                  const T* x, const CellWeights<T>& w, const std::int64_t* lengths,
                  const Dims& d) {
  switch (mode) {
    case Mode::rnn_tanh:
    case Mode::rnn_relu:
      rnn_forward(out, h, s.gates, work, x, w.w_ih, w.w_hh, w.b_ih, w.b_hh, lengths,
                  d, mode == Mode::rnn_tanh ? RnnActivation::tanh : RnnActivation::relu);
      return;
    case Mode::lstm:
      lstm_forward(out, h, c, s.gates, s.h_prev, s.saved1, s.saved2, work, x, w.w_ih, w.w_hh,
                   w.b_ih, w.b_hh, lengths, d);
      return;
    case Mode::gru:
    case Mode::gru_reset_before:
      gru_forward(out, h, s.gates, s.h_prev, s.saved1, work, x, w.w_ih, w.w_hh, w.b_ih,
                  w.b_hh, lengths, d, mode == Mode::gru);
      return;
  }
}

// dst += src, elementwise over n elements (parallel over blocks: each element's sum is the
// same on any number of threads).
template <typename T>
void add_into(T* dst, const T* src, i64 n) {
  constexpr i64 kBlock = 4096;
  detail::for_each_item((n + kBlock - 1) / kBlock, kBlock, [&](i64 blk) {
    const i64 j1 = std::min(n, (blk + 1) * kBlock);
    for (i64 j = blk * kBlock; j < j1; ++j) dst[j] += src[j];
  });
}

// grads += fresh: n_ih elements of dw_ih, n_hh of dw_hh, n_b of each bias (0: no bias).
template <typename T>
void add_grads(const CellGrads<T>& grads, const CellGrads<T>& fresh, i64 n_ih, i64 n_hh,
               i64 n_b) {
  add_into(grads.dw_ih, fresh.dw_ih, n_ih);
  add_into(grads.dw_hh, fresh.dw_hh, n_hh);
  if (n_b > 0) {
    add_into(grads.db_ih, fresh.db_ih, n_b);
    add_into(grads.db_hh, fresh.db_hh, n_b);
  }
}

// The messages of stack_backward's in-place checks (the NumPy reference raises the same).
const char* const kModifiedInPlace[2] = {
    "backward: x was modified in place after the forward pass (the backward needs its "
    "values); pass a copy or run forward again",
    "backward: out was modified in place after the forward pass (the backward needs its "
    "values); pass a copy or run forward again",
};

// The message for weight j (0..3: w_ih, w_hh, b_ih, b_hh) of cell (k, d), named as its
// PyTorch parameter (the NumPy reference raises the same).
std::string weight_modified_message(i64 k, i64 d, int j) {
  static const char* const kKinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  return std::string("backward: ") + kKinds[j] + "_l" + std::to_string(k) +
         (d == 1 ? "_reverse" : "") +
         " was modified in place after the forward pass (the backward needs its values); "
         "update parameters after backward, or run forward again";
}

}  // namespace

template <typename T>
void stack_forward(T* out, T* h_n, T* c_n, StackCache<T>* cache, const T* x, const T* h0,
                   const T* c0, const CellWeights<T>* weights, const std::int64_t* lengths,
                   const T* const* masks, Mode mode, const StackDims& s) {
  const bool training = cache != nullptr;
  const i64 H = s.H, DH = s.D * H;
  const i64 rows = checked_mul(s.T, s.B);
  const i64 gh = checked_mul(gate_count(mode), H);
  const i64 state = checked_mul(checked_mul(s.L * s.D, s.B), H);  // (L*D, B, H)
  if (training) prepare_cache(*cache, x, h0, weights, lengths, masks, mode, s);
  const bool dropout = masks != nullptr && s.L > 1;

  // Scratch for this call: cell work, the LSTM and GRU gates at inference (the RNN
  // computes its gates in its output where the cache keeps none: gates_elsewhere, always
  // at inference), and at inference two layer buffers (layer k writes buffer k % 2; in
  // training the cache holds these instead).
  Arena arena;
  const i64 work_at = arena.take(cell_work_size(mode, cell_dims(s, 0, 0)));
  const bool gates_scratch = !training && keeps_h_prev(mode);
  const i64 gates_at = gates_scratch ? arena.take(checked_mul(rows, gh)) : -1;
  const i64 layer_at =
      training || s.L == 1 ? -1 : arena.take(checked_mul(checked_mul(2, rows), DH));
  PooledArray<T> scratch(arena.size());
  T* st = training ? cache->storage.get() : nullptr;

  std::copy(h0, h0 + state, h_n);
  if (mode == Mode::lstm) std::copy(c0, c0 + state, c_n);
  // Layer k's output (T, B, D*H) at inference: scratch buffer k % 2.
  auto layer_buffer = [&](i64 k) { return scratch.get() + layer_at + (k % 2) * rows * DH; };
  for (i64 k = 0; k < s.L; ++k) {
    const T* in = x;  // (T, B, I_k), after dropout
    if (k > 0) in = training ? st + cache->input_offsets[k] : layer_buffer(k - 1);
    T* y = out;  // (T, B, D*H)
    if (k + 1 < s.L) y = training ? st + cache->input_offsets[k + 1] : layer_buffer(k);
    for (i64 d = 0; d < s.D; ++d) {
      const i64 cell = k * s.D + d;
      SavedBuffers<T> saved;
      if (training) {
        const auto& o = cache->cells[cell];
        saved.gates = o.gates < 0 ? nullptr : st + o.gates;  // nullptr: RNN, in y
        saved.h_prev = o.h_prev < 0 ? nullptr : st + o.h_prev;
        saved.saved1 = o.saved1 < 0 ? nullptr : st + o.saved1;
        saved.saved2 = o.saved2 < 0 ? nullptr : st + o.saved2;
      } else {
        saved.gates = gates_scratch ? scratch.get() + gates_at : nullptr;  // RNN: in y
      }
      T* c = mode == Mode::lstm ? c_n + cell * s.B * H : nullptr;
      cell_forward(mode, y + d * H, h_n + cell * s.B * H, c, saved, scratch.get() + work_at,
                   in, weights[cell], lengths, cell_dims(s, k, d));
    }
    if (k + 1 < s.L && dropout) apply_mask(y, masks[k], rows, DH);
  }
  if (training && reads_out(mode)) {
    cache->out = out;
    cache->out_checksum = buffer_checksum(out, rows * DH * static_cast<i64>(sizeof(T)));
  }
}

template <typename T>
void stack_backward(T* dx, T* dh0, T* dc0, const CellGrads<T>* grads, bool accumulate_grads,
                    const StackCache<T>& cache, const T* dout, const T* dh_n, const T* dc_n) {
  const StackDims& s = cache.dims;
  const Mode mode = cache.mode;
  const i64 H = s.H, DH = s.D * H, BH = s.B * H;
  const i64 rows = checked_mul(s.T, s.B);
  const i64 gh = checked_mul(gate_count(mode), H);
  const i64 state = checked_mul(s.L * s.D, BH);
  const std::int64_t* lengths = cache.has_lengths ? cache.lengths.data() : nullptr;
  const T* st = cache.storage.get();
  // The caller's x and out, which the cache references, must be as the forward left them.
  if (buffer_checksum(cache.x, rows * s.I * static_cast<i64>(sizeof(T))) != cache.x_checksum) {
    throw std::runtime_error(kModifiedInPlace[0]);
  }
  if (cache.out != nullptr && buffer_checksum(cache.out, rows * DH * static_cast<i64>(
                                                             sizeof(T))) != cache.out_checksum) {
    throw std::runtime_error(kModifiedInPlace[1]);
  }
  for (i64 cell = 0; cell < s.L * s.D; ++cell) {  // and so must the weights
    i64 bytes[4];
    const T* arrays[4];
    weight_bytes<T>(s, gh, cell / s.D, bytes);
    weight_arrays(cache.weights[cell], arrays);
    for (int j = 0; j < 4; ++j) {
      if (bytes[j] > 0 &&
          buffer_checksum(arrays[j], bytes[j]) != cache.weight_checksums[4 * cell + j]) {
        throw std::runtime_error(weight_modified_message(cell / s.D, cell % s.D, j));
      }
    }
  }

  // Scratch: dgates (R, G*H), for the reset-after GRU dgates_h (R, H), where R is one
  // chunk of time steps (see dgates_rows); cell work; two buffers (T, B, D*H) for the
  // gradient w.r.t. a layer's input (layer k writes buffer k % 2, which becomes layer
  // k-1's output gradient); and, for the LSTM when the gradients are accumulated, one
  // cell's fresh parameter gradients (its cell writes them; the RNN and GRU cells add
  // into grads themselves).
  Arena arena;
  const i64 dgates_size = checked_mul(dgates_rows(mode, cell_dims(s, 0, 0)), gh);
  const i64 dgates_at = arena.take(dgates_size);
  const i64 dgates_h_at =
      mode == Mode::gru ? arena.take(checked_mul(dgates_rows(mode, cell_dims(s, 0, 0)), H))
                        : -1;
  const i64 work_at = arena.take(cell_work_size(mode, cell_dims(s, 0, 0)));
  const i64 layer_at = s.L == 1 ? -1 : arena.take(checked_mul(checked_mul(2, rows), DH));
  const bool lstm_fresh = mode == Mode::lstm && accumulate_grads;
  const i64 w_in_max = std::max(s.I, s.L > 1 ? DH : i64(0));  // widest w_ih
  const i64 fresh_at = lstm_fresh ? arena.take(checked_mul(gh, w_in_max + H + 2)) : -1;
  PooledArray<T> scratch(arena.size());
  T* dgates = scratch.get() + dgates_at;
  T* dgates_h = dgates_h_at < 0 ? nullptr : scratch.get() + dgates_h_at;
  T* work = scratch.get() + work_at;

  std::copy(dh_n, dh_n + state, dh0);
  if (mode == Mode::lstm) std::copy(dc_n, dc_n + state, dc0);
  const T* d_out = dout;  // (T, B, D*H): dL/d(layer k's output)
  for (i64 k = s.L - 1; k >= 0; --k) {
    T* d_in = k == 0 ? dx : scratch.get() + layer_at + (k % 2) * rows * DH;  // (T, B, I_k)
    const T* in = k == 0 ? cache.x : st + cache.input_offsets[k];
    for (i64 d = 0; d < s.D; ++d) {
      const i64 cell = k * s.D + d;
      const auto& o = cache.cells[cell];
      // Where the cell's parameter gradients go: grads[cell], or (LSTM, accumulating)
      // fresh buffers added into grads[cell] after the cell.
      CellGrads<T> g = grads[cell];
      const i64 in_k = layer_input_size(s, k);
      if (lstm_fresh) {
        T* f = scratch.get() + fresh_at;
        g = {f, f + gh * in_k, s.bias ? f + gh * (in_k + H) : nullptr,
             s.bias ? f + gh * (in_k + H + 1) : nullptr};
      }
      const CellWeights<T>& w = cache.weights[cell];
      // (T, B, ld_gates); an RNN layer without gates of its own reads its output columns
      // in out or in the next layer's input (gates_elsewhere).
      const T* gates = st + o.gates;
      i64 ld_gates = gh;
      if (o.gates < 0) {
        gates = (k + 1 == s.L ? cache.out : st + cache.input_offsets[k + 1]) + d * H;
        ld_gates = DH;
      }
      const T* h_prev = o.h_prev < 0 ? nullptr : st + o.h_prev;
      const Dims cd = cell_dims(s, k, d);
      const bool accumulate = d > 0;  // the reverse direction adds into the same d_in
      T* dh = dh0 + cell * BH;
      switch (mode) {
        case Mode::rnn_tanh:
        case Mode::rnn_relu:
          rnn_backward(d_in, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh, dh, dgates, work,
                       d_out + d * H, in, w.w_ih, w.w_hh, gates, ld_gates, st + o.h0,
                       lengths, cd,
                       mode == Mode::rnn_tanh ? RnnActivation::tanh : RnnActivation::relu,
                       accumulate, accumulate_grads);
          break;
        case Mode::lstm:
          lstm_backward(d_in, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh, dh, dc0 + cell * BH, dgates,
                        d_out + d * H, in, w.w_ih, w.w_hh, gates, h_prev, st + o.saved1,
                        st + o.saved2, lengths, cd, accumulate);
          if (lstm_fresh) add_grads(grads[cell], g, gh * in_k, gh * H, s.bias ? gh : 0);
          break;
        case Mode::gru:
        case Mode::gru_reset_before:
          // The last layer keeps no h_prev: the backward reads out shifted, and h0.
          gru_backward(d_in, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh, dh, dgates, dgates_h, work,
                       d_out + d * H, in, w.w_ih, w.w_hh, w.b_hh,
                       gates, h_prev, h_prev != nullptr ? nullptr : cache.out + d * H, DH,
                       o.h0 < 0 ? nullptr : st + o.h0, o.saved1 < 0 ? nullptr : st + o.saved1,
                       lengths, cd, mode == Mode::gru, accumulate, accumulate_grads);
          break;
      }
    }
    if (k > 0 && cache.has_masks) apply_mask(d_in, st + cache.mask_offsets[k - 1], rows, DH);
    d_out = d_in;
  }
}

#define RNNKIT_INSTANTIATE(T)                                                                 \
  template void stack_forward<T>(T*, T*, T*, StackCache<T>*, const T*, const T*, const T*,    \
                                 const CellWeights<T>*, const std::int64_t*, const T* const*, \
                                 Mode, const StackDims&);                                     \
  template void stack_backward<T>(T*, T*, T*, const CellGrads<T>*, bool,                      \
                                  const StackCache<T>&, const T*, const T*, const T*);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
