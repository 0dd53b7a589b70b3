// Word2vec training on one batch of sentences (rnnkit/word2vec.h says what and why).
//
// Vector arithmetic: dot products accumulate in 16 fixed lanes summed in a fixed tree
// (no reassociation left to the compiler) and this file builds with -ffp-contract=off, so
// every instruction set the training function is cloned for (AVX-512F, AVX2, SSE2; chosen
// at load time) gives the same bits.
#include "rnnkit/word2vec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

// One body, compiled once per instruction set and picked by the loader (GCC's function
// multiversioning: needs an ifunc-capable x86-64 ELF platform).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RNNKIT_W2V_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RNNKIT_W2V_CLONES
#endif
#define RNNKIT_W2V_INLINE inline __attribute__((always_inline))

namespace rnnkit::embeddings {
namespace {

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
const SigmoidTable kSigmoid;

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

constexpr int kLanes = 16;

RNNKIT_W2V_INLINE float dot(const float* __restrict a, const float* __restrict b, i64 n) {
  float acc[kLanes] = {};
  i64 i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int width = kLanes / 2; width >= 1; width /= 2) {
    for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
  }
  return acc[0] + tail;
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
// `negative` drawn words; output vectors are updated, the input's gradient is added to
// work (D,). A drawn word equal to `word` is skipped (gensim's rule).
RNNKIT_W2V_INLINE void negative_step(const Word2VecModel& m, int negative, std::int32_t word,
                                     const float* l1, float alpha, float* work, u64& rng) {
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
    float* l2 = m.syn1neg + target * D;
    float f;
    if (!table_sigmoid(dot(l1, l2, D), &f)) continue;
    const float g = (label - f) * alpha;
    axpy(g, l2, work, D);
    axpy(g, l1, l2, D);
  }
}

// Hierarchical softmax for one prediction: l1 (D,) walks `word`'s Huffman path.
RNNKIT_W2V_INLINE void softmax_tree_step(const Word2VecModel& m, std::int32_t word,
                                         const float* l1, float alpha, float* work) {
  const i64 D = m.dim;
  const std::uint8_t* code = m.codes + word * m.max_code_length;
  const std::uint32_t* point = m.points + word * m.max_code_length;
  for (std::int32_t b = 0; b < m.code_lengths[word]; ++b) {
    float* l2 = m.syn1 + static_cast<i64>(point[b]) * D;
    float f;
    if (!table_sigmoid(dot(l1, l2, D), &f)) continue;
    const float g = (1.0f - static_cast<float>(code[b]) - f) * alpha;
    axpy(g, l2, work, D);
    axpy(g, l1, l2, D);
  }
}

// neu1 (D,) = mean of the input vectors of kept[j0..j1) except position i; returns the
// count of context words.
RNNKIT_W2V_INLINE int context_mean(const Word2VecModel& m, const std::int32_t* kept, i64 i,
                                   i64 j0, i64 j1, float* neu1) {
  const i64 D = m.dim;
  std::memset(neu1, 0, sizeof(float) * D);
  int count = 0;
  for (i64 j = j0; j < j1; ++j) {
    if (j == i) continue;
    axpy(1.0f, m.syn0 + static_cast<i64>(kept[j]) * D, neu1, D);
    ++count;
  }
  if (count > 0) {
    const float inv = 1.0f / static_cast<float>(count);
    for (i64 k = 0; k < D; ++k) neu1[k] *= inv;
  }
  return count;
}

}  // namespace

std::vector<std::uint32_t> build_negative_guide(const std::uint32_t* cum_table, std::int64_t V,
                                                int* shift) {
  int bits = 1;
  while (bits < 24 && (std::int64_t(1) << bits) < 4 * V) ++bits;
  *shift = 31 - bits;
  std::vector<std::uint32_t> guide(std::size_t(1) << bits);
  std::int64_t w = 0;
  for (std::size_t b = 0; b < guide.size(); ++b) {
    const std::uint64_t x = std::uint64_t(b) << *shift;
    while (w < V - 1 && cum_table[w] < x) ++w;
    guide[b] = static_cast<std::uint32_t>(w);
  }
  return guide;
}

std::int64_t negative_word(const Word2VecModel& model, std::uint32_t x) {
  return guided_negative_word(model, x);
}

namespace detail {

// Trains sentences [s_begin, s_end) of the batch with one RNG state. kept (longest
// sentence,) holds a sentence's ids after dropping; neu1 and work are (D,) scratch.
RNNKIT_W2V_CLONES
i64 train_shard(const Word2VecModel& m, const Word2VecOptions& o, const Word2VecBatch& batch,
                i64 s_begin, i64 s_end, float alpha, u64* rng_state, std::int32_t* kept,
                float* neu1, float* work) {
  const i64 D = m.dim;
  u64 rng = *rng_state;
  i64 trained = 0;
  for (i64 s = s_begin; s < s_end; ++s) {
    const i64 begin = s > 0 ? batch.sentence_ends[s - 1] : 0;
    const i64 end = batch.sentence_ends[s];
    i64 n = 0;
    for (i64 t = begin; t < end; ++t) {
      const std::int32_t id = batch.ids[t];
      if (id < 0) continue;
      if (o.subsample && m.sample_int[id] < draw(rng)) continue;
      kept[n++] = id;
    }
    trained += n;
    for (i64 i = 0; i < n; ++i) {
      const i64 reduce = static_cast<i64>(draw(rng) % static_cast<u64>(o.window));
      const i64 j0 = std::max<i64>(0, i - o.window + reduce);
      const i64 j1 = std::min<i64>(n, i + o.window + 1 - reduce);
      if (o.skip_gram) {
        for (i64 j = j0; j < j1; ++j) {
          if (j == i) continue;
          float* l1 = m.syn0 + static_cast<i64>(kept[j]) * D;
          if (o.hierarchical_softmax) {
            std::memset(work, 0, sizeof(float) * D);
            softmax_tree_step(m, kept[i], l1, alpha, work);
            axpy(1.0f, work, l1, D);
          }
          if (o.negative > 0) {
            std::memset(work, 0, sizeof(float) * D);
            negative_step(m, o.negative, kept[i], l1, alpha, work, rng);
            axpy(1.0f, work, l1, D);
          }
        }
        continue;
      }
      // CBOW: the mean of the context predicts the centre word; every context word gets
      // the whole gradient (gensim's cbow_mean=1). Each objective recomputes the mean
      // after the previous one's update, as gensim does.
      for (int objective = 0; objective < 2; ++objective) {
        const bool hs = objective == 0;
        if (hs ? !o.hierarchical_softmax : o.negative <= 0) continue;
        if (context_mean(m, kept, i, j0, j1, neu1) == 0) continue;
        std::memset(work, 0, sizeof(float) * D);
        if (hs) {
          softmax_tree_step(m, kept[i], neu1, alpha, work);
        } else {
          negative_step(m, o.negative, kept[i], neu1, alpha, work, rng);
        }
        for (i64 j = j0; j < j1; ++j) {
          if (j != i) axpy(1.0f, work, m.syn0 + static_cast<i64>(kept[j]) * D, D);
        }
      }
    }
  }
  *rng_state = rng;
  return trained;
}

}  // namespace detail

std::int64_t word2vec_train_batch(const Word2VecModel& model, const Word2VecOptions& options,
                                  const Word2VecBatch& batch, float alpha,
                                  std::uint64_t* rng_states, int workers) {
  const i64 n_sentences = batch.n_sentences;
  if (n_sentences <= 0) return 0;
  workers = std::max(workers, 1);
  const i64 n_words = batch.sentence_ends[n_sentences - 1];

  // Shard w holds the sentences ending at or before w / workers of the batch's words
  // (and after (w - 1) / workers): a fixed function of the batch and the worker count.
  std::vector<i64> shard_begin(workers + 1, n_sentences);
  i64 longest = 0;
  for (i64 s = 0; s < n_sentences; ++s) {
    longest = std::max(longest, batch.sentence_ends[s] - (s > 0 ? batch.sentence_ends[s - 1] : 0));
  }
  shard_begin[0] = 0;
  for (int w = 1; w < workers; ++w) {
    const i64 target = n_words / workers * w + n_words % workers * w / workers;
    shard_begin[w] =
        std::upper_bound(batch.sentence_ends, batch.sentence_ends + n_sentences, target) -
        batch.sentence_ends;
  }

  // All scratch up front: nothing allocates while training.
  std::vector<std::int32_t> kept(static_cast<size_t>(workers) * std::max<i64>(longest, 1));
  std::vector<float> vectors(static_cast<size_t>(workers) * 2 * model.dim);
  auto run = [&](int w) {
    return detail::train_shard(model, options, batch, shard_begin[w], shard_begin[w + 1], alpha,
                               rng_states + w, kept.data() + w * std::max<i64>(longest, 1),
                               vectors.data() + 2 * w * model.dim,
                               vectors.data() + (2 * w + 1) * model.dim);
  };
  i64 trained = 0;
  if (workers == 1) return run(0);
#ifdef RNNKIT_HAVE_OPENMP
#pragma omp parallel for num_threads(workers) schedule(static, 1) reduction(+ : trained)
#endif
  for (int w = 0; w < workers; ++w) trained += run(w);
  return trained;
}

}  // namespace rnnkit::embeddings
