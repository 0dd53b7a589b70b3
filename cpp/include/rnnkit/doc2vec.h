// Doc2vec training (paragraph vectors: PV-DM and PV-DBOW) on batches of documents given as
// int32 word ids and int32 document-vector ids (tags). Knows nothing of Python: the caller
// owns every buffer and checks them (bind_embeddings.cpp).
//
// The update rules are gensim's Doc2Vec: PV-DM is CBOW with the document's tag vectors as
// extra context words (the mean of all of them, or their sum with dm_mean off, in which
// case the gradient is divided by their count); PV-DBOW trains each tag vector to predict
// every word of the document, like skip-gram with the tag as the context word, and with
// dbow_words it also trains skip-gram word vectors on the same document. The vocabulary
// tables, the RNG, subsampling, the reduced window and the batch split into workers are
// word2vec's (word2vec.h).
#pragma once
#include <cstdint>

#include "rnnkit/word2vec.h"

namespace rnnkit::embeddings {

struct Doc2VecOptions {
  Word2VecOptions word;       // window, negative, hierarchical softmax, subsampling
  bool dm = true;             // true: PV-DM; false: PV-DBOW
  bool dm_mean = true;        // PV-DM: mean of the context (else the sum)
  bool dbow_words = false;    // PV-DBOW: also train skip-gram word vectors
  bool learn_words = true;    // update the word vectors (syn0)
  bool learn_hidden = true;   // update the output vectors (syn1neg, syn1)
  bool learn_doctags = true;  // update the document vectors
};

// A batch of documents: the words of document s are words' sentence s, its tags are
// tags[tag_ends[s-1] .. tag_ends[s]) (tag_ends[-1] taken as 0), each a row of the
// document-vector matrix.
struct Doc2VecBatch {
  Word2VecBatch words;
  const std::int32_t* tags = nullptr;
  const std::int64_t* tag_ends = nullptr;  // (n_sentences,) nondecreasing
};

// Trains one batch at learning rate alpha; doctag_vectors (n_doctags, D) is the
// document-vector matrix. Workers, shards and determinism as word2vec_train_batch. Returns
// the number of words trained on (after dropping out-of-vocabulary and subsampled words).
std::int64_t doc2vec_train_batch(const Word2VecModel& model, float* doctag_vectors,
                                 std::int64_t n_doctags, const Doc2VecOptions& options,
                                 const Doc2VecBatch& batch, float alpha,
                                 std::uint64_t* rng_states, int workers,
                                 Word2VecWorkspace& workspace);

}  // namespace rnnkit::embeddings
