// Word2vec training (CBOW and skip-gram, negative sampling and hierarchical softmax) on
// batches of sentences given as int32 word ids. Knows nothing of Python: the caller owns
// every buffer, builds the vocabulary tables and checks them once (bind_embeddings.cpp).
//
// The update rules are gensim's (which follow the original C word2vec): the averaged
// context (cbow_mean=1) for CBOW; skip-gram trains the context word's input vector to
// predict the centre word; the reduced-window trick (each centre word draws b uniform in
// 0..window-1 and uses window - b); subsampling of frequent words before windowing; the
// negative-sampling table is searched by bisection; the sigmoid is gensim's 1000-entry
// table over (-6, 6), pairs with a dot product outside that range are skipped.
//
// Randomness: the 48-bit linear congruential generator of gensim and word2vec,
//   next = (next * 25214903917 + 11) mod 2^48,  draw = next >> 16,
// one state per worker, owned by the caller and advanced in place.
#pragma once
#include <cstdint>
#include <vector>

namespace rnnkit::embeddings {

// The model's matrices and vocabulary tables (V words, D dimensions, L = longest
// Huffman code). All row-major and contiguous; pointers not used by the options may be
// null.
struct Word2VecModel {
  std::int64_t vocab_size = 0;       // V >= 1
  std::int64_t dim = 0;              // D >= 1
  float* syn0 = nullptr;             // (V, D) input vectors: the word vectors
  float* syn1neg = nullptr;          // (V, D) output vectors for negative sampling
  float* syn1 = nullptr;             // (V - 1, D) Huffman inner-node vectors (hs)
  const std::uint32_t* cum_table = nullptr;   // (V,) nondecreasing, last > 0 (negative)
  const std::uint32_t* negative_guide = nullptr;  // from build_negative_guide (negative)
  int negative_guide_shift = 0;
  const std::uint32_t* sample_int = nullptr;  // (V,) keep word w when draw <= sample_int[w]
  const std::uint8_t* codes = nullptr;        // (V, L) Huffman code bits, 0 or 1 (hs)
  const std::uint32_t* points = nullptr;      // (V, L) inner-node ids < V - 1 (hs)
  const std::int32_t* code_lengths = nullptr;  // (V,) in 0..L (hs)
  std::int64_t max_code_length = 0;            // L
};

// Bucket b of the guide holds the first word w with cum_table[w] >= b << shift (last word
// at most), so that a negative draw x starts its search at guide[x >> shift] and scans a
// few entries instead of bisecting: the same word bisection finds. About 4 buckets per
// word, at most 2^24. cum_table (V,) nondecreasing, V >= 1, last entry < 2^31.
std::vector<std::uint32_t> build_negative_guide(const std::uint32_t* cum_table, std::int64_t V,
                                                int* shift);

// The word negative sampling picks for a draw x < cum_table[V - 1]: the first w with
// cum_table[w] >= x, found through the model's guide.
std::int64_t negative_word(const Word2VecModel& model, std::uint32_t x);

struct Word2VecOptions {
  bool skip_gram = false;  // false: CBOW
  bool hierarchical_softmax = false;
  int negative = 5;        // negative samples per prediction; 0 turns it off
  int window = 5;          // >= 1
  bool subsample = true;   // drop frequent words by sample_int
};

// One batch: n_sentences sentences, sentence s is ids[sentence_ends[s-1] .. sentence_ends[s])
// (sentence_ends[-1] taken as 0). Ids < 0 are words outside the vocabulary and are
// dropped before windowing, like subsampled words; ids must be < V.
struct Word2VecBatch {
  const std::int32_t* ids = nullptr;
  const std::int64_t* sentence_ends = nullptr;  // (n_sentences,) nondecreasing
  std::int64_t n_sentences = 0;
};

// Trains on one batch at learning rate alpha. The sentences are split into `workers`
// contiguous shards of about equal word counts; worker w trains shard w with the RNG state
// rng_states[w] (workers states, advanced in place). With workers > 1 the shards run in
// parallel and update the shared matrices without locks, as gensim and word2vec do, so the
// result then depends on thread timing. Returns the number of words trained on (after
// dropping out-of-vocabulary and subsampled words).
std::int64_t word2vec_train_batch(const Word2VecModel& model, const Word2VecOptions& options,
                                  const Word2VecBatch& batch, float alpha,
                                  std::uint64_t* rng_states, int workers);

}  // namespace rnnkit::embeddings
