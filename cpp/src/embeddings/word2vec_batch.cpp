// The batch driver of word2vec and doc2vec: split a batch into shards, train them (in
// parallel when there are several workers, each on private copies of the rows it touches),
// then add the workers' changes into the model in worker order (word2vec_rows.h says why).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../thread_pool.h"
#include "rnnkit/word2vec.h"
#include "word2vec_rows.h"

namespace rnnkit::embeddings {

using i64 = std::int64_t;

Word2VecWorkspace::Word2VecWorkspace() : impl(new Impl) {}
Word2VecWorkspace::~Word2VecWorkspace() = default;

namespace detail {

Rows PrivateRows::prepare(float* shared, i64 n_rows, i64 dim, i64 capacity) {
  capacity = std::max<i64>(1, std::min(capacity, n_rows));
  if (static_cast<i64>(slot.size()) != n_rows) slot.assign(n_rows, -1);
  if (static_cast<i64>(touched.size()) < capacity) touched.resize(capacity);
  if (pool_rows < capacity) {
    pool.reset(new float[capacity * dim]);
    pool_rows = capacity;
  }
  return Rows{shared, dim, slot.data(), pool.get(), touched.data(), 0};
}

namespace {

// Words per worker between two merges of the workers' changes. A worker's copies go stale
// by what the others learn meanwhile: merging every ~1000 words keeps the vectors as good
// as one worker's (sums of larger changes overshoot on rows every worker moves, such as
// the frequent words and the top of the Huffman tree).
constexpr std::int64_t kRoundWords = 1000;

// One matrix as every worker sees it: rows[w] and the storage behind it.
struct WorkerMatrices {
  std::vector<Rows> rows;
  std::vector<PrivateRows*> storage;
};

// Run by every thread t of T of the team: shared[r] += copy - shared[r] for every worker's
// copy of row r, in worker order; then the workers' slots are cleared.
void merge_rows(std::vector<WorkerMatrices*>& matrices, int workers, int t, int T,
                rnnkit::detail::TeamBarrier& barrier) {
  // Each worker's copies become its changes; the shared rows are only read here.
  for (WorkerMatrices* m : matrices) {
    for (int w = t; w < workers; w += T) {
      const Rows& rows = m->rows[w];
      for (i64 k = 0; k < rows.count; ++k) {
        const float* base = rows.shared + static_cast<i64>(rows.touched[k]) * rows.dim;
        float* copy = rows.pool + k * rows.dim;
        for (i64 c = 0; c < rows.dim; ++c) copy[c] -= base[c];
      }
    }
  }
  barrier.arrive_and_wait();
  // Thread t adds the changes to the rows r with r % T == t, each in worker order.
  for (WorkerMatrices* m : matrices) {
    for (int w = 0; w < workers; ++w) {
      const Rows& rows = m->rows[w];
      for (i64 k = 0; k < rows.count; ++k) {
        const i64 r = rows.touched[k];
        if (r % T != t) continue;
        const float* change = rows.pool + k * rows.dim;
        float* target = rows.shared + r * rows.dim;
        for (i64 c = 0; c < rows.dim; ++c) target[c] += change[c];
      }
    }
  }
  barrier.arrive_and_wait();
  for (WorkerMatrices* m : matrices) {
    for (int w = t; w < workers; w += T) {
      Rows& rows = m->rows[w];
      for (i64 k = 0; k < rows.count; ++k) m->storage[w]->slot[rows.touched[k]] = -1;
      rows.count = 0;
    }
  }
}

}  // namespace

std::int64_t train_sharded(const SharedMatrices& matrices, const Word2VecBatch& batch,
                           int workers, std::uint64_t* rng_states,
                           Word2VecWorkspace& workspace, const CapacityFn& capacity,
                           const ShardFn& train) {
  const i64 n_sentences = batch.n_sentences;
  if (n_sentences <= 0) return 0;
  workers = std::max(workers, 1);
  const i64 n_words = batch.sentence_ends[n_sentences - 1];
  const i64 D = matrices.dim;

  // Shard w holds the sentences ending after (w - 1) / workers and at or before w / workers
  // of the batch's words: a fixed function of the batch and the worker count.
  std::vector<i64> shard_begin(workers + 1, n_sentences);
  shard_begin[0] = 0;
  for (int w = 1; w < workers; ++w) {
    const i64 target = n_words / workers * w + n_words % workers * w / workers;
    shard_begin[w] =
        std::upper_bound(batch.sentence_ends, batch.sentence_ends + n_sentences, target) -
        batch.sentence_ends;
  }
  auto sentence_start = [&](i64 s) { return s > 0 ? batch.sentence_ends[s - 1] : i64(0); };

  // Round r of worker w: the sentences of its shard ending after (r - 1) / rounds and at or
  // before r / rounds of the shard's words.
  i64 most_words = 0;
  for (int w = 0; w < workers; ++w) {
    most_words = std::max(most_words,
                          sentence_start(shard_begin[w + 1]) - sentence_start(shard_begin[w]));
  }
  const i64 round_words = kRoundWords;
  const i64 rounds =
      workers == 1 ? 1 : std::max<i64>(1, (most_words + round_words - 1) / round_words);
  std::vector<i64> round_begin(workers * (rounds + 1));  // [w * (rounds + 1) + r]
  for (int w = 0; w < workers; ++w) {
    const i64 first = sentence_start(shard_begin[w]);
    const i64 words = sentence_start(shard_begin[w + 1]) - first;
    i64* begin = round_begin.data() + w * (rounds + 1);
    begin[0] = shard_begin[w];
    begin[rounds] = shard_begin[w + 1];
    for (i64 r = 1; r < rounds; ++r) {
      const i64 target = first + words / rounds * r + words % rounds * r / rounds;
      begin[r] = std::upper_bound(batch.sentence_ends + shard_begin[w],
                                  batch.sentence_ends + shard_begin[w + 1], target) -
                 batch.sentence_ends;
    }
  }

  // Every buffer is sized here, before any thread starts.
  std::vector<WorkerBuffers>& buffers = workspace.impl->workers;
  if (static_cast<int>(buffers.size()) < workers) buffers.resize(workers);
  WorkerMatrices per_matrix[kMatrices];
  for (WorkerMatrices& m : per_matrix) {
    m.rows.resize(workers);
    m.storage.resize(workers);
  }
  for (int w = 0; w < workers; ++w) {
    WorkerBuffers& b = buffers[w];
    i64 longest = 1;
    for (i64 s = shard_begin[w]; s < shard_begin[w + 1]; ++s) {
      longest = std::max(longest, batch.sentence_ends[s] - sentence_start(s));
    }
    if (static_cast<i64>(b.kept.size()) < longest) b.kept.resize(longest);
    b.neu1.resize(D);
    b.work.resize(D);
    i64 rows_needed[kMatrices] = {};
    if (workers > 1) capacity(shard_begin[w], shard_begin[w + 1], rows_needed);
    for (int k = 0; k < kMatrices; ++k) {
      if (workers == 1 || matrices.shared[k] == nullptr) {
        per_matrix[k].rows[w] = Rows{matrices.shared[k], D};
        continue;
      }
      per_matrix[k].rows[w] =
          b.rows[k].prepare(matrices.shared[k], matrices.n_rows[k], D, rows_needed[k]);
      per_matrix[k].storage[w] = &b.rows[k];
    }
  }
  std::vector<WorkerMatrices*> merged;
  for (int k = 0; k < kMatrices; ++k) {
    if (matrices.shared[k] != nullptr) merged.push_back(&per_matrix[k]);
  }

  auto run = [&](int w, i64 r) {
    const i64* begin = round_begin.data() + w * (rounds + 1);
    Rows rows[kMatrices];
    for (int k = 0; k < kMatrices; ++k) rows[k] = per_matrix[k].rows[w];
    const i64 trained = train(begin[r], begin[r + 1], rng_states + w, rows, buffers[w]);
    for (int k = 0; k < kMatrices; ++k) per_matrix[k].rows[w].count = rows[k].count;
    return trained;
  };
  if (workers == 1) return run(0, 0);
  // Words trained per worker (each written by the one thread that runs the worker).
  std::vector<i64> trained_by(workers, 0);
  rnnkit::detail::run_parallel(workers, rnnkit::detail::kLongJob, [&](int t, int T,
                                                                    rnnkit::detail::TeamBarrier& barrier) {
    for (i64 r = 0; r < rounds; ++r) {
      for (int w = t; w < workers; w += T) trained_by[w] += run(w, r);
      barrier.arrive_and_wait();
      merge_rows(merged, workers, t, T, barrier);
    }
  });
  i64 trained = 0;
  for (const i64 n : trained_by) trained += n;
  return trained;
}

}  // namespace detail

std::int64_t word2vec_train_batch(const Word2VecModel& model, const Word2VecOptions& options,
                                  const Word2VecBatch& batch, float alpha,
                                  std::uint64_t* rng_states, int workers,
                                  Word2VecWorkspace& workspace) {
  using detail::kSyn0, detail::kSyn1neg, detail::kSyn1;
  detail::SharedMatrices matrices;
  matrices.dim = model.dim;
  matrices.shared[kSyn0] = model.syn0;
  matrices.n_rows[kSyn0] = model.vocab_size;
  if (options.negative > 0) {
    matrices.shared[kSyn1neg] = model.syn1neg;
    matrices.n_rows[kSyn1neg] = model.vocab_size;
  }
  if (options.hierarchical_softmax) {
    matrices.shared[kSyn1] = model.syn1;
    matrices.n_rows[kSyn1] = model.vocab_size - 1;
  }
  // At most this many distinct rows of each matrix can be touched by a shard's words:
  // syn0 the words themselves, syn1neg each prediction's word and negatives (skip-gram
  // makes up to 2 * window predictions per word), syn1 the words' Huffman paths.
  auto capacity = [&](i64 s_begin, i64 s_end, i64* rows) {
    auto start = [&](i64 s) { return s > 0 ? batch.sentence_ends[s - 1] : i64(0); };
    const i64 words = start(s_end) - start(s_begin);  // the shard may be empty
    const i64 predictions = words * (options.skip_gram ? 2 * options.window : 1);
    rows[kSyn0] = words;
    rows[kSyn1neg] = words + predictions * options.negative;
    rows[kSyn1] = words * model.max_code_length;
  };
  auto train = [&](i64 s_begin, i64 s_end, std::uint64_t* rng, detail::Rows* rows,
                   detail::WorkerBuffers& buffers) {
    return detail::train_shard(model, options, batch, s_begin, s_end, alpha, rng, rows[kSyn0],
                               rows[kSyn1neg], rows[kSyn1], buffers);
  };
  return detail::train_sharded(matrices, batch, workers, rng_states, workspace, capacity,
                               train);
}

}  // namespace rnnkit::embeddings
