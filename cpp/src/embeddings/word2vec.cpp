// Word2vec training on one batch of sentences (rnnkit/word2vec.h says what and why; the
// update steps are in word2vec_steps.h, shared with doc2vec).
#include "rnnkit/word2vec.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "word2vec_rows.h"
#include "word2vec_steps.h"

namespace rnnkit::embeddings {

using detail::guided_negative_word;

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

RNNKIT_W2V_CLONES
i64 train_shard(const Word2VecModel& m, const Word2VecOptions& o, const Word2VecBatch& batch,
                i64 s_begin, i64 s_end, float alpha, u64* rng_state, Rows& syn0, Rows& syn1neg,
                Rows& syn1, WorkerBuffers& buffers) {
  const i64 D = m.dim;
  std::int32_t* kept = buffers.kept.data();
  float* neu1 = buffers.neu1.data();
  float* work = buffers.work.data();
  u64 rng = *rng_state;
  i64 trained = 0;
  for (i64 s = s_begin; s < s_end; ++s) {
    const i64 n = keep_words(m, o, batch, s, kept, rng);
    trained += n;
    for (i64 i = 0; i < n; ++i) {
      i64 j0, j1;
      reduced_window(o, i, n, rng, &j0, &j1);
      if (o.skip_gram) {
        for (i64 j = j0; j < j1; ++j) {
          if (j == i) continue;
          predict_word(m, o, syn1, syn1neg, kept[i], syn0.get(kept[j]), alpha, work, rng);
        }
        continue;
      }
      // CBOW: the mean of the context predicts the centre word; every context word gets
      // the whole gradient (gensim's cbow_mean=1). Each objective recomputes the mean
      // after the previous one's update, as gensim does.
      for (int objective = 0; objective < 2; ++objective) {
        const bool hs = objective == 0;
        if (hs ? !o.hierarchical_softmax : o.negative <= 0) continue;
        if (context_mean(m, syn0, kept, i, j0, j1, neu1) == 0) continue;
        std::memset(work, 0, sizeof(float) * D);
        if (hs) {
          softmax_tree_step(m, syn1, kept[i], neu1, alpha, work);
        } else {
          negative_step(m, syn1neg, o.negative, kept[i], neu1, alpha, work, rng);
        }
        for (i64 j = j0; j < j1; ++j) {
          if (j != i) axpy(1.0f, work, syn0.get(kept[j]), D);
        }
      }
    }
  }
  *rng_state = rng;
  return trained;
}

}  // namespace detail

}  // namespace rnnkit::embeddings
