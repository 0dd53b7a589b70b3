// Doc2vec training on one batch of documents (rnnkit/doc2vec.h says what and why). The
// update steps are word2vec's (word2vec_steps.h); the batch is split, trained and merged by
// word2vec's driver, with the document vectors as one more matrix.
#include "rnnkit/doc2vec.h"

#include <cstring>

#include "word2vec_rows.h"
#include "word2vec_steps.h"

namespace rnnkit::embeddings {
namespace detail {
namespace {

// Trains documents [s_begin, s_end) of the batch through rows (kMatrices,) with one RNG
// state (advanced in place); returns the words trained on.
RNNKIT_W2V_CLONES
i64 train_documents(const Word2VecModel& m, const Doc2VecOptions& o, const Doc2VecBatch& batch,
                    i64 s_begin, i64 s_end, float alpha, u64* rng_state, Rows* rows,
                    WorkerBuffers& buffers) {
  const Word2VecOptions& wo = o.word;
  const i64 D = m.dim;
  Rows& syn0 = rows[kSyn0];
  Rows& syn1neg = rows[kSyn1neg];
  Rows& syn1 = rows[kSyn1];
  Rows& doctags = rows[kDoctags];
  std::int32_t* kept = buffers.kept.data();
  float* neu1 = buffers.neu1.data();
  float* work = buffers.work.data();
  u64 rng = *rng_state;
  i64 trained = 0;
  for (i64 s = s_begin; s < s_end; ++s) {
    const std::int32_t* tags = batch.tags + (s > 0 ? batch.tag_ends[s - 1] : 0);
    const i64 n_tags = batch.tags + batch.tag_ends[s] - tags;
    const i64 n = keep_words(m, wo, batch.words, s, kept, rng);
    trained += n;
    for (i64 i = 0; i < n; ++i) {
      if (!o.dm) {
        // PV-DBOW: skip-gram word pairs first (dbow_words), then each tag predicts word i.
        if (o.dbow_words) {
          i64 j0, j1;
          reduced_window(wo, i, n, rng, &j0, &j1);
          for (i64 j = j0; j < j1; ++j) {
            if (j == i) continue;
            predict_word(m, wo, syn1, syn1neg, kept[i], syn0.get(kept[j]), alpha, work, rng,
                         o.learn_words, o.learn_hidden);
          }
        }
        for (i64 t = 0; t < n_tags; ++t) {
          predict_word(m, wo, syn1, syn1neg, kept[i], doctags.get(tags[t]), alpha, work, rng,
                       o.learn_doctags, o.learn_hidden);
        }
        continue;
      }
      // PV-DM: the context words and the tags, summed (and averaged with dm_mean), predict
      // word i by both objectives at once; every input gets the whole gradient (divided by
      // the count without dm_mean).
      i64 j0, j1;
      reduced_window(wo, i, n, rng, &j0, &j1);
      std::memset(neu1, 0, sizeof(float) * D);
      int count = add_context(m, syn0, kept, i, j0, j1, neu1);
      for (i64 t = 0; t < n_tags; ++t) axpy(1.0f, doctags.get(tags[t]), neu1, D);
      count += static_cast<int>(n_tags);
      if (count == 0) continue;
      if (o.dm_mean) divide(neu1, count, D);
      std::memset(work, 0, sizeof(float) * D);
      if (wo.hierarchical_softmax) {
        softmax_tree_step(m, syn1, kept[i], neu1, alpha, work, o.learn_hidden);
      }
      if (wo.negative > 0) {
        negative_step(m, syn1neg, wo.negative, kept[i], neu1, alpha, work, rng, o.learn_hidden);
      }
      if (!o.dm_mean) divide(work, count, D);
      if (o.learn_doctags) {
        for (i64 t = 0; t < n_tags; ++t) axpy(1.0f, work, doctags.get(tags[t]), D);
      }
      if (o.learn_words) {
        for (i64 j = j0; j < j1; ++j) {
          if (j != i) axpy(1.0f, work, syn0.get(kept[j]), D);
        }
      }
    }
  }
  *rng_state = rng;
  return trained;
}

}  // namespace
}  // namespace detail

std::int64_t doc2vec_train_batch(const Word2VecModel& model, float* doctag_vectors,
                                 std::int64_t n_doctags, const Doc2VecOptions& options,
                                 const Doc2VecBatch& batch, float alpha,
                                 std::uint64_t* rng_states, int workers,
                                 Word2VecWorkspace& workspace) {
  using namespace detail;
  const Word2VecOptions& wo = options.word;
  SharedMatrices matrices;
  matrices.dim = model.dim;
  // A matrix training only reads is left out: its rows are read in place, not merged.
  if (options.learn_words) {
    matrices.shared[kSyn0] = model.syn0;
    matrices.n_rows[kSyn0] = model.vocab_size;
  }
  if (options.learn_hidden && wo.negative > 0) {
    matrices.shared[kSyn1neg] = model.syn1neg;
    matrices.n_rows[kSyn1neg] = model.vocab_size;
  }
  if (options.learn_hidden && wo.hierarchical_softmax) {
    matrices.shared[kSyn1] = model.syn1;
    matrices.n_rows[kSyn1] = model.vocab_size - 1;
  }
  if (options.learn_doctags) {
    matrices.shared[kDoctags] = doctag_vectors;
    matrices.n_rows[kDoctags] = n_doctags;
  }
  const Word2VecBatch& words = batch.words;
  // Distinct rows a shard can touch: syn0 its words, the document vectors its tags,
  // syn1neg each prediction's word and negatives, syn1 the words' Huffman paths.
  auto capacity = [&](i64 s_begin, i64 s_end, i64* rows) {
    i64 n_words = 0, n_tags = 0, predictions = 0;
    for (i64 s = s_begin; s < s_end; ++s) {
      const i64 doc_words = words.sentence_ends[s] - (s > 0 ? words.sentence_ends[s - 1] : 0);
      const i64 doc_tags = batch.tag_ends[s] - (s > 0 ? batch.tag_ends[s - 1] : 0);
      n_words += doc_words;
      n_tags += doc_tags;
      const i64 per_word =
          options.dm ? 1 : doc_tags + (options.dbow_words ? 2 * wo.window : 0);
      predictions += doc_words * per_word;
    }
    rows[kSyn0] = n_words;
    rows[kDoctags] = n_tags;
    rows[kSyn1neg] = n_words + predictions * wo.negative;
    rows[kSyn1] = n_words * model.max_code_length;
  };
  auto train = [&](i64 s_begin, i64 s_end, std::uint64_t* rng, Rows* rows,
                   WorkerBuffers& buffers) {
    // The matrices left out above are read in place.
    Rows all[kMatrices] = {rows[kSyn0], rows[kSyn1neg], rows[kSyn1], rows[kDoctags]};
    float* direct[kMatrices] = {model.syn0, model.syn1neg, model.syn1, doctag_vectors};
    for (int k = 0; k < kMatrices; ++k) {
      if (all[k].shared == nullptr) all[k] = Rows{direct[k], model.dim};
    }
    const i64 trained = train_documents(model, options, batch, s_begin, s_end, alpha, rng, all,
                                        buffers);
    for (int k = 0; k < kMatrices; ++k) rows[k].count = all[k].count;
    return trained;
  };
  return train_sharded(matrices, words, workers, rng_states, workspace, capacity, train);
}

}  // namespace rnnkit::embeddings
