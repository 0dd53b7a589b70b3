// Pieces shared by the cells and their time loops (cell_loop.h); internal, not installed.
//
// Threads: only loops whose iterations write disjoint outputs run in parallel (column
// blocks of a bias sum), each element computed exactly as on one thread, so results never
// depend on the thread count. The loops here never enclose a GEMM call (the GEMM kernels
// may run their own team); the cells' time loops run on the teams of team.h, inside which
// GEMMs stay on their calling thread.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>

#include "rnnkit/dims.h"
#include "rnnkit/gemm.h"
#include "rnnkit/threads.h"
#include "thread_pool.h"

namespace rnnkit::detail {

using i64 = std::int64_t;

// Below this many elements of work a loop stays on the calling thread: starting a team
// costs more than it saves.
constexpr i64 kMinParallelWork = 1 << 14;

// Calls f(i) for i in [0, n). Runs on a team (thread_pool.h) when more than one thread
// is requested and n * work_per_item is large enough, thread k of n taking the k-th of n
// near-equal ranges of items. f must only write outputs of item i.
template <typename F>
inline void for_each_item(i64 n, i64 work_per_item, const F& f) {
  const int threads = get_num_threads();
  if (threads > 1 && n > 1 && n * work_per_item >= kMinParallelWork) {
    const int wanted = static_cast<int>(std::min<i64>(threads, n));
    run_parallel(wanted, n * work_per_item, [&](int id, int parts, TeamBarrier&) {
      const i64 i0 = n * id / parts, i1 = n * (id + 1) / parts;
      for (i64 i = i0; i < i1; ++i) f(i);
    });
    return;
  }
  for (i64 i = 0; i < n; ++i) f(i);
}

// The rows of each step that the step's GEMMs run on (the recurrent products, the input
// projection, dX and the weight gradients). When the lengths are non-increasing (a
// PackedSequence's sorted order, or a caller's sorted batch) the active rows of step t are
// a prefix of the batch, and only that prefix is computed: a finished sequence's row costs
// no GEMM work (its cell code keeps its state and writes 0, as for any inactive row; its
// dX row is 0). Otherwise, or without lengths, every step runs on all B rows (the GEMM
// rows of inactive sequences are computed and not read). Either way the active rows get
// the same bits: a GEMM's row of C does not depend on the other rows of A (for the weight
// gradients see chunk_gemm_tn). A step leaves rows out only when at least kMinSkippedRows
// have finished: a product split into more calls costs a pass over its output (or packed
// operand) per call, more than a few rows of arithmetic.
class ActiveRows {
 public:
  static constexpr i64 kMinSkippedRows = 4;

  // lengths (B,) read, or nullptr; must outlive this.
  ActiveRows(const std::int64_t* lengths, const Dims& d) : B_(d.B) {
    if (lengths != nullptr && std::is_sorted(lengths, lengths + d.B, std::greater<>())) {
      lengths_ = lengths;
      if (at(d.T - 1) == B_) lengths_ = nullptr;  // too few rows ever finish
    }
  }

  // Whether some steps run on their active rows only (the lengths are non-increasing).
  bool by_prefix() const { return lengths_ != nullptr; }

  // Rows [0, at(t)) of step t hold every active sequence: B, or the active rows when at
  // least kMinSkippedRows have finished.
  i64 at(i64 t) const {
    if (lengths_ == nullptr) return B_;
    const i64 n =
        std::partition_point(lengths_, lengths_ + B_, [t](std::int64_t len) { return len > t; }) -
        lengths_;
    return B_ - n >= kMinSkippedRows ? n : B_;
  }

  // Steps [t, end) with end <= t1 whose rows are contiguous: the steps of all B rows from t
  // on, and the first one after them with fewer (it ends the run). rows: the run's rows.
  i64 run_end(i64 t, i64 t1, i64* rows) const {
    *rows = 0;
    for (; t < t1; ++t) {
      const i64 n = at(t);
      *rows += n;
      if (n < B_) return t + 1;
    }
    return t1;
  }

 private:
  i64 B_;
  const std::int64_t* lengths_ = nullptr;  // (B,) when non-increasing, else nullptr
};

// The forward's input projection x W_ih^T: for all T*B rows (gates, ld apart, `blocks`
// gate blocks of H columns), before the time loop, or in chunks of about
// kProjectionChunkRows rows inside it: each thread computes its own units' columns for
// the next chunk of steps just before them, so the chunk's pre-activations are still in
// its cache (L2) when its steps read them, instead of one product whose output (32 MiB
// at T=1000, B=16, H=128 for the LSTM) goes out to memory and comes back step by step.
// Chunks need W_ih packed once (it is then read again for every chunk): they are used
// when that copy is at most 256 KiB (an LSTM with H = I = 128), so it stays in L2 and
// costs little memory; otherwise one product runs on construction. Either way every
// element is the one of a single x W_ih^T product (gemm.h: the same bits however the
// rows and columns are split). With lengths sorted (ActiveRows::by_prefix) the chunks are
// always used and each step of a chunk runs on its active rows only. The biases are not
// added here: every cell adds them in its step.
constexpr i64 kProjectionChunkRows = 256;

// A GEMM's packed B operand for one call: the caller's copy when it has one (kept across
// calls), else packed here. Not copyable (it may point at its own member).
template <typename T>
class PackedOrOwn {
 public:
  PackedOrOwn() = default;
  PackedOrOwn(const PackedOrOwn&) = delete;
  PackedOrOwn& operator=(const PackedOrOwn&) = delete;

  // Uses `given` when not nullptr, else packs gemm_nt's B (N x K, ldb apart; read).
  void pack_nt(const kernels::PackedB<T>* given, i64 N, i64 K, const T* B, i64 ldb) {
    if (given != nullptr) {
      p_ = given;
      return;
    }
    own_.pack_nt(N, K, B, ldb);
    p_ = &own_;
  }
  operator const kernels::PackedB<T>&() const { return *p_; }

 private:
  kernels::PackedB<T> own_;
  const kernels::PackedB<T>* p_ = &own_;
};

template <typename T>
class InputProjection {
 public:
  // gates (T*B rows, ld apart) written: all of it on construction, or chunk by chunk by
  // before_step. x (T*B, I) and w_ih (blocks*H, I) read; both must outlive this.
  // w_ih_packed: W_ih^T packed by the caller (kept across calls), or nullptr; with it the
  // projection is chunked at any size (packing costs nothing more).
  // active: the rows each step needs (must outlive this).
  InputProjection(T* gates, i64 ld, const T* x, const T* w_ih,
                  const kernels::PackedB<T>* w_ih_packed, i64 blocks, const Dims& d,
                  const ActiveRows& active)
      : gates_(gates), ld_(ld), x_(x), blocks_(blocks), d_(d), active_(active) {
    const i64 gh = blocks * d.H;
    steps_ = std::min(d.T, std::max<i64>(1, (kProjectionChunkRows + d.B - 1) / d.B));
    const bool small = gh * d.I * i64(sizeof(T)) <= (i64(256) << 10);
    if (active.by_prefix() || (steps_ < d.T && (w_ih_packed != nullptr || small))) {
      w_ih_p_.pack_nt(w_ih_packed, gh, d.I, w_ih, d.I);
    } else if (w_ih_packed != nullptr) {
      steps_ = 0;  // one product, now
      kernels::gemm_packed<T>(d.T * d.B, x, d.I, *w_ih_packed, gates, ld, false);
    } else {
      steps_ = 0;
      kernels::gemm_nt<T>(d.T * d.B, gh, d.I, x, d.I, w_ih, d.I, gates, ld, false);
    }
  }

  // Called by each thread at every visit n of the time loop before it reads its rows of
  // gates: when visit n starts a chunk, computes the chunk's columns [q*H + u0, q*H + u1)
  // of every gate block (a thread's units; u0 = 0, u1 = H: all columns).
  void before_step(i64 n, i64 u0, i64 u1) const {
    if (steps_ == 0 || n % steps_ != 0) return;
    const i64 n1 = std::min(d_.T, n + steps_);
    const i64 t0 = d_.reverse ? d_.T - n1 : n;  // the chunk's steps are contiguous in t
    // Runs of contiguous rows (all rows of the chunk without sorted lengths).
    for (i64 t = t0, rows = 0, end = 0; t < t0 + (n1 - n); t = end) {
      end = active_.run_end(t, t0 + (n1 - n), &rows);
      project(rows, x_ + t * d_.B * d_.I, gates_ + t * d_.B * ld_, u0, u1);
    }
  }

 private:
  // Columns [q*H + u0, q*H + u1) of every gate block of rows [0, rows) of gc = xc W_ih^T.
  void project(i64 rows, const T* xc, T* gc, i64 u0, i64 u1) const {
    const i64 H = d_.H;
    if (u0 == 0 && u1 == H) {
      kernels::gemm_packed<T>(rows, xc, d_.I, w_ih_p_, gc, ld_, false);
      return;
    }
    for (i64 q = 0; q < blocks_; ++q) {
      kernels::gemm_packed_cols<T>(rows, q * H + u0, q * H + u1, xc, d_.I, w_ih_p_, gc, ld_,
                                   false);
    }
  }

  T* gates_;
  i64 ld_;
  const T* x_;
  i64 blocks_;
  Dims d_;
  const ActiveRows& active_;
  i64 steps_ = 0;               // visits per chunk; 0: all rows done on construction
  PackedOrOwn<T> w_ih_p_;  // W_ih^T (I, blocks*H), when chunked
};

// The cells add their biases in the step, where the row is in cache anyway, not in a pass
// over all T*B rows of the projection. bias (gh,) written: b_ih + b_hh on the first
// hh_cols columns, b_ih on the rest (b_ih, b_hh (gh,) read, or nullptr). Returns false,
// writing nothing, when there is no bias.
template <typename T>
bool step_bias(T* bias, const T* b_ih, const T* b_hh, i64 hh_cols, i64 gh) {
  if (b_ih == nullptr && b_hh == nullptr) return false;
  for (i64 j = 0; j < gh; ++j) {
    const T hh = b_hh != nullptr && j < hh_cols ? b_hh[j] : T(0);
    bias[j] = (b_ih != nullptr ? b_ih[j] : T(0)) + hh;
  }
  return true;
}

// x (n,) accumulated: x += b (n,). Restrict-qualified (the buffers never overlap) so that
// the compiler vectorises it without run-time alias checks.
template <typename T>
inline void add_to(i64 n, T* __restrict x, const T* __restrict b) {
  for (i64 j = 0; j < n; ++j) x[j] += b[j];
}

// sums (cols,) written (accumulate = false) or added to (accumulate = true): the sum over
// r = 0..rows-1, in that order, of a[r*lda + j]. Parallel over blocks of columns, so each
// sum has one fixed order. Blocks are wide (1 KiB of floats per row) so that each visit of
// a row reads a long contiguous run: narrow blocks would make the rows, lda apart, short
// runs sharing a few L1 sets.
template <typename T>
void column_sums(T* sums, const T* a, i64 rows, i64 cols, i64 lda, bool accumulate = false) {
  constexpr i64 kBlock = 256;
  const i64 blocks = (cols + kBlock - 1) / kBlock;
  for_each_item(blocks, rows * kBlock, [&](i64 blk) {
    const i64 j0 = blk * kBlock;
    const i64 j1 = std::min(cols, j0 + kBlock);
    if (!accumulate) std::fill(sums + j0, sums + j1, T(0));
    for (i64 r = 0; r < rows; ++r) {
      const T* row = a + r * lda;
      for (i64 j = j0; j < j1; ++j) sums[j] += row[j];
    }
  });
}

// Rows of the backward's chunk of time steps. The cells' backward keeps dA for one chunk
// of consecutive time steps only (not T*B rows) and runs the non-recurrent products
// (dX, dW_ih, dW_hh, bias sums) per chunk while its dA is in cache, accumulating the
// weight gradients chunk after chunk in a fixed order. About this many rows per chunk
// keeps those GEMMs efficient (their K or M dimension) while the chunk buffers stay a
// few MiB.
constexpr i64 kBackwardChunkRows = 512;

// Time steps per backward chunk: ceil(kBackwardChunkRows / B), at most T. Depends on the
// dims only (never on the thread count), so the accumulation order is fixed.
inline i64 backward_chunk_steps(const Dims& d) {
  return std::min(d.T, std::max<i64>(1, (kBackwardChunkRows + d.B - 1) / d.B));
}

// Row stride (elements) of the backward's dgates chunk (BackwardArgs::ld_dgates), whose
// rows hold gh = G*H values of T: gh, plus one cache line when a row of gh values is a
// multiple of 2 KiB smaller than 8 KiB (2, 4 or 6 KiB: the LSTM at H = 128 or 256 in
// float32). The weight gradients' gemm_tn reads dgates in place, one row per k, and the
// per-step products read a step's rows; rows a multiple of 2 KiB apart share a few L1
// sets, and those backward passes ran measurably faster with the rows one line longer,
// except at 8 KiB and more (docs/performance.md, "dgates rows padded off multiples of
// 2 KiB"). Adding a whole line keeps every row as aligned as the first.
constexpr i64 kDgatesAliasBytes = 2048;
constexpr i64 kDgatesUnpaddedFromBytes = 8192;
constexpr i64 kCacheLineBytes = 64;

template <typename T>
inline i64 dgates_row_stride(i64 gh) {
  const i64 row_bytes = gh * i64(sizeof(T));
  const bool pad = row_bytes % kDgatesAliasBytes == 0 && row_bytes < kDgatesUnpaddedFromBytes;
  return pad ? gh + kCacheLineBytes / i64(sizeof(T)) : gh;
}

// Time steps [t0, t1) of the chunk that holds visit index n (the n-th step a direction
// visits, time_at(n, d)). Chunks are counted from the backward's first visit (n = T-1),
// so the first chunk done is full and the last may be short; each is contiguous in t.
struct TimeChunk {
  i64 t0 = 0, t1 = 0;  // time steps [t0, t1)
  bool first = false;  // the chunk the backward does first (it writes, later ones add)
  bool begin = false;  // n is the chunk's first visit
  bool done = false;   // n is the chunk's last visit: its products can run now
};

// The chunk of visit index n, `steps` = backward_chunk_steps(d) steps per chunk.
inline TimeChunk chunk_of(i64 n, i64 steps, const Dims& d) {
  const i64 j = (d.T - 1 - n) / steps;  // chunks done before this one
  const i64 n_hi = d.T - j * steps, n_lo = std::max<i64>(0, n_hi - steps);
  TimeChunk c;
  c.t0 = d.reverse ? d.T - n_hi : n_lo;
  c.t1 = d.reverse ? d.T - n_lo : n_hi;
  c.first = j == 0;
  c.begin = n == n_hi - 1;
  c.done = n == n_lo;
  return c;
}

// A weight gradient's product over the rows of chunk c: C (M, N) written (accumulate =
// false) or added to = A^T Bm, A (rows of c, lda apart) and Bm (rows of c, ldb apart)
// read, row (t - c.t0)*B + b. With sorted lengths (active.by_prefix()) it runs step by
// step on each step's active rows only: the rows it leaves out have A = 0 and add +-0 to
// the one FMA chain each element of C is (gemm.h), which changes no value, so the bits
// are those of the product over all rows (for finite Bm).
template <typename T>
void chunk_gemm_tn(i64 M, i64 N, const T* A, i64 lda, const T* Bm, i64 ldb, T* C, i64 ldc,
                   bool accumulate, const TimeChunk& c, const Dims& d, const ActiveRows& active) {
  // Runs of contiguous rows (all rows of the chunk without sorted lengths).
  for (i64 t = c.t0, rows = 0, end = 0; t < c.t1; t = end) {
    end = active.run_end(t, c.t1, &rows);
    const i64 r = (t - c.t0) * d.B;  // the run's first row
    kernels::gemm_tn<T>(M, N, rows, A + r * lda, lda, Bm + r * ldb, ldb, C, ldc,
                        accumulate || t > c.t0);
  }
}

// column_sums over the rows of chunk c: sums (cols,) written (accumulate = false) or added
// to, a (rows of c, lda apart) read, row (t - c.t0)*B + b. With sorted lengths it sums
// each step's active rows only: the rows it leaves out are 0 and add +0 to each sum, which
// changes no value (as for chunk_gemm_tn). The GRU and RNN bias sums stay this pass
// rather than joining the backward's elementwise pass (as the LSTM's does): they add a
// chunk's steps in increasing t, while the backward of the forward direction visits them
// in decreasing t, so adding in the step would change the order, hence the bits.
template <typename T>
void chunk_column_sums(T* sums, const T* a, i64 cols, i64 lda, bool accumulate,
                       const TimeChunk& c, const Dims& d, const ActiveRows& active) {
  for (i64 t = c.t0, rows = 0, end = 0; t < c.t1; t = end) {
    end = active.run_end(t, c.t1, &rows);
    column_sums(sums, a + (t - c.t0) * d.B * lda, rows, cols, lda, accumulate || t > c.t0);
  }
}

// The non-recurrent products of the backward over the rows of one chunk [t0, t1) of time
// steps:
//   dgates (rows, ld_dgates) read, columns [0, gh), row (t - t0)*B + b: dL/d(input side)
//          of step t, sequence b.
//   dx (T*B, I): rows of the chunk written (accumulated when accumulate_dx) = dgates W_ih
//   dw_ih (gh, I): written (first = true) or accumulated = dgates^T x
//   db_ih (gh,): likewise, the column sums of dgates; skipped when nullptr
//   db_hh (gh,): likewise, the column sums of dgates' first hh_cols columns (the blocks
//                where b_hh enters the same pre-activation as b_ih); nullptr when no bias
// x (T*B, I) and w_ih (gh, I) read. `first`: the first chunk of a backward that writes the
// weight gradients (rather than adding into them). w_ih_nn: W_ih packed as gemm_nn's B,
// or nullptr (dX packs it itself). With sorted lengths (active.by_prefix()) it is given
// and dX runs step by step on the active rows (the others' dgates rows are 0: their dX
// rows are 0). gemm_packed and gemm_nn give the same bits.
template <typename T>
void input_backward_chunk(T* dx, T* dw_ih, T* db_ih, T* db_hh, i64 hh_cols, const T* dgates,
                          i64 ld_dgates, const T* x, const T* w_ih, i64 gh, const Dims& d,
                          const TimeChunk& c,
                          bool first, bool accumulate_dx, const ActiveRows& active,
                          const kernels::PackedB<T>* w_ih_nn) {
  const i64 rows = (c.t1 - c.t0) * d.B, row0 = c.t0 * d.B;
  if (w_ih_nn != nullptr && active.by_prefix()) {
    for (i64 t = c.t0, n = 0, end = 0; t < c.t1; t = end) {
      end = active.run_end(t, c.t1, &n);  // n rows from step t's first
      T* dx_t = dx + t * d.B * d.I;
      kernels::gemm_packed<T>(n, dgates + (t - c.t0) * d.B * ld_dgates, ld_dgates, *w_ih_nn,
                              dx_t, d.I, accumulate_dx);
      if (!accumulate_dx) std::fill(dx_t + n * d.I, dx + end * d.B * d.I, T(0));
    }
  } else if (w_ih_nn != nullptr) {
    kernels::gemm_packed<T>(rows, dgates, ld_dgates, *w_ih_nn, dx + row0 * d.I, d.I,
                            accumulate_dx);
  } else {
    kernels::gemm_nn<T>(rows, d.I, gh, dgates, ld_dgates, w_ih, d.I, dx + row0 * d.I, d.I,
                        accumulate_dx);
  }
  chunk_gemm_tn<T>(gh, d.I, dgates, ld_dgates, x + row0 * d.I, d.I, dw_ih, d.I, !first, c, d,
                   active);
  if (db_ih != nullptr) chunk_column_sums(db_ih, dgates, gh, ld_dgates, !first, c, d, active);
  if (db_hh != nullptr) {
    chunk_column_sums(db_hh, dgates, hh_cols, ld_dgates, !first, c, d, active);
  }
}

// Time index of the n-th step a direction visits.
inline i64 time_at(i64 n, const Dims& d) { return d.reverse ? d.T - 1 - n : n; }

}  // namespace rnnkit::detail
