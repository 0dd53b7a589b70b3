// Internal to the word2vec and doc2vec cores: how a worker reaches the rows of the model's
// matrices, each worker's buffers, and the driver that trains a batch in shards. Not
// installed.
//
// One worker trains on the shared matrices directly. Several workers would race on rows
// they share (hogwild), which makes the result depend on thread timing; instead each
// worker copies a row into its own pool the first time it touches it in a batch and
// trains its copy, and at the end of the batch the driver adds every worker's change
// (copy - shared row) into the shared row, in worker order. So a batch's result is a fixed
// function of the batch, the worker count and the RNG states.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "rnnkit/word2vec.h"

namespace rnnkit::embeddings::detail {

// The rows of one (n_rows, D) matrix as one worker sees them.
struct Rows {
  float* shared = nullptr;          // (n_rows, D) the model's matrix
  std::int64_t dim = 0;             // D
  std::int32_t* slot = nullptr;     // (n_rows,) -1 or the row's index in pool; null: direct
  float* pool = nullptr;            // (capacity, D) the worker's copies
  std::int32_t* touched = nullptr;  // (capacity,) row ids in the order first touched
  std::int64_t count = 0;           // rows copied so far this batch (<= capacity)

  float* get(std::int64_t row) {
    if (slot == nullptr) return shared + row * dim;
    std::int32_t s = slot[row];
    if (s < 0) {
      s = static_cast<std::int32_t>(count++);
      slot[row] = s;
      touched[s] = static_cast<std::int32_t>(row);
      std::memcpy(pool + s * dim, shared + row * dim, sizeof(float) * dim);
    }
    return pool + static_cast<std::int64_t>(s) * dim;
  }
};

// The buffers behind one worker's private Rows of one matrix. The pool is left
// uninitialised: the OS backs only the pages of rows actually copied.
struct PrivateRows {
  std::vector<std::int32_t> slot;  // all -1 between batches
  std::vector<std::int32_t> touched;
  std::unique_ptr<float[]> pool;
  std::int64_t pool_rows = 0;

  // Rows over `shared` for a batch that touches at most `capacity` distinct rows.
  Rows prepare(float* shared, std::int64_t n_rows, std::int64_t dim, std::int64_t capacity);
};

// The matrices training reaches through Rows, as indexes of the arrays below.
enum Matrix { kSyn0, kSyn1neg, kSyn1, kDoctags, kMatrices };

// One worker's scratch and private rows.
struct WorkerBuffers {
  std::vector<std::int32_t> kept;  // (longest sentence,) a sentence's ids after dropping
  std::vector<float> neu1, work;   // (D,) each
  PrivateRows rows[kMatrices];
};

// The matrices of one kind of training: matrix k is shared[k] (n_rows[k], D), null when
// the options do not use it.
struct SharedMatrices {
  float* shared[kMatrices] = {};
  std::int64_t n_rows[kMatrices] = {};
  std::int64_t dim = 0;  // D
};

// capacity(s_begin, s_end, out): out[k] = at most how many distinct rows of matrix k
// sentences [s_begin, s_end) touch (an upper bound; only for the matrices in use).
using CapacityFn = std::function<void(std::int64_t, std::int64_t, std::int64_t*)>;
// train(s_begin, s_end, rng_state, rows (kMatrices,), buffers): trains those sentences
// with one RNG state (advanced in place) through rows; returns the words trained on.
using ShardFn = std::function<std::int64_t(std::int64_t, std::int64_t, std::uint64_t*, Rows*,
                                           WorkerBuffers&)>;

// The batch driver shared by word2vec and doc2vec (word2vec.h, word2vec_train_batch, says
// how a batch is split into shards and merged). Sizes every buffer before any thread starts.
std::int64_t train_sharded(const SharedMatrices& matrices, const Word2VecBatch& batch,
                           int workers, std::uint64_t* rng_states,
                           Word2VecWorkspace& workspace, const CapacityFn& capacity,
                           const ShardFn& train);

// Trains sentences [s_begin, s_end) of the batch with one RNG state (advanced in place),
// through the given rows of syn0, syn1neg and syn1; returns the words trained on.
std::int64_t train_shard(const Word2VecModel& m, const Word2VecOptions& o,
                         const Word2VecBatch& batch, std::int64_t s_begin, std::int64_t s_end,
                         float alpha, std::uint64_t* rng_state, Rows& syn0, Rows& syn1neg,
                         Rows& syn1, WorkerBuffers& buffers);

}  // namespace rnnkit::embeddings::detail

namespace rnnkit::embeddings {

struct Word2VecWorkspace::Impl {
  std::vector<detail::WorkerBuffers> workers;
};

}  // namespace rnnkit::embeddings
