// Internal to the word2vec and doc2vec cores: the update steps both train with (the
// sigmoid table, the RNG, the vector arithmetic, one negative-sampling or hierarchical-
// softmax prediction, the context mean). Not installed.
//
// Vector arithmetic: dot products accumulate in 16 fixed lanes summed in a fixed tree
// (no reassociation left to the compiler) and the files including this header build with
// -ffp-contract=off, so every instruction set the training functions are cloned for
// (AVX-512F, AVX2, SSE2; chosen at load time) gives the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "rnnkit/word2vec.h"
#include "word2vec_rows.h"

// One body, compiled once per instruction set and picked by the loader (GCC's function
// multiversioning: needs an ifunc-capable x86-64 ELF platform).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RNNKIT_W2V_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RNNKIT_W2V_CLONES
#endif
#define RNNKIT_W2V_INLINE inline __attribute__((always_inline))

namespace rnnkit::embeddings::detail {


using i64 = std::int64_t;
using u64 = std::uint64_t;

// gensim's sigmoid table: entry i holds sigmoid(x) at x = (i / 1000 * 2 - 1) * 6, built in
// float as gensim does; a dot product f maps to entry int((f + 6) * 1000 / 6 / 2).
constexpr int kExpTableSize = 1000;
constexpr float kMaxExp = 6.0f;
constexpr double kExpTableScale = 1000.0 / 6.0 / 2.0;

struct SigmoidTable {
  float value[kExpTableSize];
  SigmoidTable() {
    for (int i = 0; i < kExpTableSize; ++i) {
      const float x = (static_cast<float>(i) / static_cast<float>(kExpTableSize) * 2.0f - 1.0f) *
                      kMaxExp;
      const float e = static_cast<float>(std::exp(static_cast<double>(x)));
      value[i] = e / (e + 1.0f);
    }
  }
};
inline const SigmoidTable kSigmoid;  // one table for the whole library

// sigmoid(f) from the table; false when f is outside (-6, 6) (or NaN): gensim skips the pair.
RNNKIT_W2V_INLINE bool table_sigmoid(float f, float* out) {
  if (!(f > -kMaxExp && f < kMaxExp)) return false;
  *out = kSigmoid.value[static_cast<int>(static_cast<double>(f + kMaxExp) * kExpTableScale)];
  return true;
}

// The 48-bit LCG: returns the current draw (state >> 16, 32 bits) and advances the state.
RNNKIT_W2V_INLINE u64 draw(u64& state) {
  const u64 r = state >> 16;
  state = (state * 25214903917ULL + 11ULL) & ((u64(1) << 48) - 1);
  return r;
}

constexpr int kLanes = 16;  // the reduction in dot() is written for 16

RNNKIT_W2V_INLINE float dot(const float* __restrict a, const float* __restrict b, i64 n) {
  float acc[kLanes] = {};
  i64 i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  // A fixed tree, written out so that it compiles to a few vector adds: lane k + width
  // folds into lane k for width 8, 4, 2, 1.
  float s8[8], s4[4];
  for (int k = 0; k < 8; ++k) s8[k] = acc[k] + acc[k + 8];
  for (int k = 0; k < 4; ++k) s4[k] = s8[k] + s8[k + 4];
  return ((s4[0] + s4[2]) + (s4[1] + s4[3])) + tail;
}

// y += a * x
RNNKIT_W2V_INLINE void axpy(float a, const float* __restrict x, float* __restrict y, i64 n) {
  for (i64 i = 0; i < n; ++i) y[i] += a * x[i];
}

// The first word w with cum_table[w] >= x (what bisection finds, for x < the table's last
// entry): the guide names the first word of x's bucket, a short scan finds w.
RNNKIT_W2V_INLINE i64 guided_negative_word(const Word2VecModel& m, std::uint32_t x) {
  i64 w = m.negative_guide[x >> m.negative_guide_shift];
  while (m.cum_table[w] < x) ++w;
  return w;
}

// Negative sampling for one prediction: input vector l1 (D,) predicts `word` against
// `negative` drawn words; the input's gradient is added to work (D,), and the output
// vectors are updated when learn_hidden (inference leaves them as trained). A drawn word
// equal to `word` is skipped (gensim's rule).
RNNKIT_W2V_INLINE void negative_step(const Word2VecModel& m, Rows& syn1neg, int negative,
                                     std::int32_t word, const float* l1, float alpha,
                                     float* work, u64& rng, bool learn_hidden = true) {
  const i64 D = m.dim;
  const std::uint32_t* cum = m.cum_table;
  const std::uint32_t cum_last = cum[m.vocab_size - 1];
  for (int d = 0; d <= negative; ++d) {
    i64 target = word;
    float label = 1.0f;
    if (d > 0) {
      const std::uint32_t x = static_cast<std::uint32_t>((rng >> 16) % cum_last);
      target = guided_negative_word(m, x);
      draw(rng);
      if (target == word) continue;
      label = 0.0f;
    }
    float* l2 = syn1neg.get(target);
    float f;
    if (!table_sigmoid(dot(l1, l2, D), &f)) continue;
    const float g = (label - f) * alpha;
    axpy(g, l2, work, D);
    if (learn_hidden) axpy(g, l1, l2, D);
  }
}

// Hierarchical softmax for one prediction: l1 (D,) walks `word`'s Huffman path; the
// gradient and the output updates as in negative_step.
RNNKIT_W2V_INLINE void softmax_tree_step(const Word2VecModel& m, Rows& syn1,
                                         std::int32_t word, const float* l1, float alpha,
                                         float* work, bool learn_hidden = true) {
  const i64 D = m.dim;
  const std::uint8_t* code = m.codes + word * m.max_code_length;
  const std::uint32_t* point = m.points + word * m.max_code_length;
  for (std::int32_t b = 0; b < m.code_lengths[word]; ++b) {
    float* l2 = syn1.get(point[b]);
    float f;
    if (!table_sigmoid(dot(l1, l2, D), &f)) continue;
    const float g = (1.0f - static_cast<float>(code[b]) - f) * alpha;
    axpy(g, l2, work, D);
    if (learn_hidden) axpy(g, l1, l2, D);
  }
}

// Skip-gram style prediction: the input vector l1 (D,) predicts `word` by each objective
// the options turn on (hierarchical softmax, then negative sampling); l1 takes each
// objective's gradient right after it when learn_input. work (D,) is scratch.
RNNKIT_W2V_INLINE void predict_word(const Word2VecModel& m, const Word2VecOptions& o, Rows& syn1,
                                    Rows& syn1neg, std::int32_t word, float* l1, float alpha,
                                    float* work, u64& rng, bool learn_input = true,
                                    bool learn_hidden = true) {
  const i64 D = m.dim;
  if (o.hierarchical_softmax) {
    std::memset(work, 0, sizeof(float) * D);
    softmax_tree_step(m, syn1, word, l1, alpha, work, learn_hidden);
    if (learn_input) axpy(1.0f, work, l1, D);
  }
  if (o.negative > 0) {
    std::memset(work, 0, sizeof(float) * D);
    negative_step(m, syn1neg, o.negative, word, l1, alpha, work, rng, learn_hidden);
    if (learn_input) axpy(1.0f, work, l1, D);
  }
}

// neu1 (D,) += the input vectors of kept[j0..j1) except position i; returns their count.
RNNKIT_W2V_INLINE int add_context(const Word2VecModel& m, Rows& syn0, const std::int32_t* kept,
                                  i64 i, i64 j0, i64 j1, float* neu1) {
  int count = 0;
  for (i64 j = j0; j < j1; ++j) {
    if (j == i) continue;
    axpy(1.0f, syn0.get(kept[j]), neu1, m.dim);
    ++count;
  }
  return count;
}

// x (n,) *= 1 / count
RNNKIT_W2V_INLINE void divide(float* x, int count, i64 n) {
  const float inv = 1.0f / static_cast<float>(count);
  for (i64 k = 0; k < n; ++k) x[k] *= inv;
}

// neu1 (D,) = mean of the input vectors of kept[j0..j1) except position i; returns the
// count of context words.
RNNKIT_W2V_INLINE int context_mean(const Word2VecModel& m, Rows& syn0,
                                   const std::int32_t* kept, i64 i, i64 j0, i64 j1, float* neu1) {
  std::memset(neu1, 0, sizeof(float) * m.dim);
  const int count = add_context(m, syn0, kept, i, j0, j1, neu1);
  if (count > 0) divide(neu1, count, m.dim);
  return count;
}

// Copies sentence s of the batch into kept (its ids after dropping the out-of-vocabulary
// and, drawing from rng, the subsampled words); returns how many were kept.
RNNKIT_W2V_INLINE i64 keep_words(const Word2VecModel& m, const Word2VecOptions& o,
                                 const Word2VecBatch& batch, i64 s, std::int32_t* kept,
                                 u64& rng) {
  const i64 begin = s > 0 ? batch.sentence_ends[s - 1] : 0;
  const i64 end = batch.sentence_ends[s];
  i64 n = 0;
  for (i64 t = begin; t < end; ++t) {
    const std::int32_t id = batch.ids[t];
    if (id < 0) continue;
    if (o.subsample && m.sample_int[id] < draw(rng)) continue;
    kept[n++] = id;
  }
  return n;
}

// The window around position i of n kept words, shrunk by a draw in 0..window-1 (the
// reduced-window trick): [*j0, *j1).
RNNKIT_W2V_INLINE void reduced_window(const Word2VecOptions& o, i64 i, i64 n, u64& rng, i64* j0,
                                      i64* j1) {
  const i64 reduce = static_cast<i64>(draw(rng) % static_cast<u64>(o.window));
  *j0 = i - o.window + reduce > 0 ? i - o.window + reduce : 0;
  *j1 = i + o.window + 1 - reduce < n ? i + o.window + 1 - reduce : n;
}

}  // namespace rnnkit::embeddings::detail
