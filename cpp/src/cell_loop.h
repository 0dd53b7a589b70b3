// The time loops every cell kind runs on, written once; internal, not installed. A cell
// supplies only its per-step code, as a small struct (its forward and backward side by
// side in the cell's file):
//
// Forward struct (forward_loop):
//   static constexpr i64 kGates;  // G: gate blocks of the input projection
//   T* pre; i64 ld_pre;           // (T, B, ld_pre): where x W_ih^T goes, G*H columns
//   template <class Barrier>
//   void step(Slice s, i64 t, i64 rows, const T* hp, T* hn, const Barrier& barrier) const;
//     For this thread's units [s.u0, s.u1): the step's GEMM with hp (B, R) = h_{t-1}
//     (all units, read) on its first `rows` rows (ActiveRows) and the elementwise cell,
//     writing hn (B, R) = h_t (its units of h, h_slice) and out. Rows of `pre` past `rows`
//     hold no input projection (ActiveRows): nothing may read them. It may call barrier()
//     inside (a second GEMM on a complete intermediate); the loop calls it once after the
//     step. R = h_size(d) (dims.h).
//
// Backward struct (backward_loop):
//   static constexpr i64 kGates;
//   T* db_ih; T* db_hh; i64 hh_cols;  // the chunk's bias sums (input_backward_chunk)
//   void begin_chunk(const TimeChunk& c);  // before the chunk's steps (one thread)
//   template <class Barrier>
//   void step_da(Slice s, i64 n, i64 t, i64 rows, const TimeChunk& c,
//                const Barrier& barrier) const;
//     This thread's units of dA_t (dgates' rows of step t: row (t - c.t0)*B + b at
//     a.dgates + row * a.ld_dgates, every reader and writer using that stride) and the
//     direct terms of dh;
//     GEMMs inside it run on the first `rows` rows. Rows of dgates past `rows` are never
//     read (dX, dW and the bias sums stop there too): they may be left unwritten.
//   void step_dh(Slice s, i64 n, i64 t, i64 rows, const TimeChunk& c) const;
//     After a barrier (dA_t complete): dh += dA_t W_hh for this thread's part of dh
//     (h_slice), on the first `rows` rows (the others' dA rows are 0: their dh passes
//     through).
//   void end_chunk(const TimeChunk& c, bool first, const ActiveRows& active);
//     The hidden side's dW_hh (db_hh) of the chunk (on the active rows: chunk_gemm_tn).
//
// Threads: one team (team.h) per forward loop and per backward chunk; a thread owns a
// slice of hidden units and meets the others at one barrier per step (plus any the cell
// adds). Every element is computed as on one thread, so results never depend on the
// thread count.
#pragma once
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cell_common.h"
#include "rnnkit/cell.h"
#include "team.h"

namespace rnnkit::detail {

// A thread's part of h (R = h_size(d) wide): its hidden units, or with a projection the
// columns [u0*P/H, u1*P/H) of h's P, which may be empty; the team's slices of h partition
// [0, P) as their slices of units partition [0, H).
inline Slice h_slice(Slice s, const Dims& d) {
  if (d.P == 0) return s;
  return Slice{s.u0 * d.P / d.H, s.u1 * d.P / d.H};
}

// The input projection of a one-row forward (B = 1, no lengths, forward direction),
// computed along the time loop instead of before it. The loop's product per step,
// h_{t-1} W_hh^T, reads each weight once and waits on L2 for them; the projection
// x W_ih^T is the opposite, multiply-adds on weights kept in L1. So the projection goes
// in tiles of R = 2G rows (G gate blocks, at most kGemvTileMaxRows / 2) x one panel of
// gate columns, inside the steps' gemv_panels calls: a thread with `count` panels of
// units per gate block has G * count tiles for each R rows. The rows of steps [0, G)
// are computed before the loop (rows_before_loop); those of steps [G, G + R) during the
// steps [0, G), a tile with every call; then those of steps [G + (g+1)R, G + (g+2)R)
// during the steps of group g, [G + gR, G + (g+1)R), a tile with every other call (the
// sizes that timed fastest, docs/performance.md, "B = 1 sequences"). Each thread
// computes its own units' gate columns, as InputProjection does; the bits are
// gemm_packed's.
template <typename T>
class ProjectionAlongSteps {
 public:
  static constexpr i64 kPanel = kernels::PackedB<T>::kPanel;

  // gates (T, G*H) written: step t's row at gates + t*ld; x (T, I) read; w_ih (G*H, I)
  // read, or its packed W_ih^T (kept across calls) when not nullptr.
  ProjectionAlongSteps(T* gates, i64 ld, const T* x, const T* w_ih,
                       const kernels::PackedB<T>* w_ih_packed, i64 blocks, const Dims& d)
      : gates_(gates), ld_(ld), x_(x), d_(d), first_rows_(blocks), rows_(2 * blocks) {
    if (2 * blocks > kernels::kGemvTileMaxRows) {
      throw std::invalid_argument("ProjectionAlongSteps: at most " +
                                  std::to_string(kernels::kGemvTileMaxRows / 2) +
                                  " gate blocks, got " + std::to_string(blocks));
    }
    if (d.T > first_rows_) w_ih_p_.pack_nt(w_ih_packed, blocks * d.H, d.I, w_ih, d.I);
  }

  // Whether a forward of these dimensions can use it (and one_row_step): one row, whole
  // panels of units.
  static bool applies(const std::int64_t* lengths, const Dims& d) {
    return d.B == 1 && lengths == nullptr && !d.reverse && d.I >= 1 && d.H % kPanel == 0;
  }
  // Rows of the projection the loop must compute before its first step.
  i64 rows_before_loop() const { return std::min(d_.T, first_rows_); }

  // Whether step n (0-based) ends a group of steps, given rows_before_loop(): the steps
  // [0, G) and then each 2G steps. A thread computes its own units' tiles of a group over
  // the group's calls, so a team's slices may change only after such a step.
  static bool ends_group(i64 n, i64 rows_before_loop) {
    const i64 G = rows_before_loop;
    return n + 1 >= G && (n + 1 - G) % (2 * G) == 0;
  }

  // The tile, if any, for call n (0 <= n < count) of step t of the thread whose units are
  // the panels [first, first + count) of a gate block. The calls of the steps that carry
  // a group of tiles are numbered in order; tile j goes with call j in the first G steps,
  // call 2j + 1 later, tile j being panel j % count of the thread's panels in gate block
  // j / count. Returns false when there is none.
  bool tile(i64 t, i64 first, i64 count, i64 n, kernels::GemvTile<T>* out) const {
    i64 j = 0, r0 = 0;  // the tile, its first row
    if (t < first_rows_) {
      j = t * count + n;
      r0 = first_rows_;
    } else {
      const i64 step_in_group = (t - first_rows_) % rows_, call = step_in_group * count + n;
      if (call % 2 == 0) return false;
      j = call / 2;
      r0 = t - step_in_group + rows_;
    }
    if (r0 >= d_.T) return false;
    const i64 block = j / count;
    const i64 panel = block * (d_.H / kPanel) + first + (j - block * count);
    *out = kernels::GemvTile<T>{x_ + r0 * d_.I, d_.I, static_cast<int>(std::min(rows_, d_.T - r0)),
                                &static_cast<const kernels::PackedB<T>&>(w_ih_p_), panel,
                                gates_ + r0 * ld_ + panel * kPanel, ld_};
    return true;
  }

 private:
  T* gates_;
  i64 ld_;
  const T* x_;
  Dims d_;
  i64 first_rows_;         // G: rows before the loop, steps with a tile on every call
  i64 rows_;               // 2G: rows of a tile, steps of a group
  PackedOrOwn<T> w_ih_p_;  // W_ih^T (I, G*H)
};

// Step t of a one-row forward (B = 1) whose input projection runs along the steps, for
// this thread's units: their products a panel of units at a time (that panel of the
// `gates` gate blocks' columns: one gemv_panels call, with the projection's tile for the
// call), then finish(u, n), the cell on all of them, units [u, u + n). Gate block q's
// columns of h W_hh^T (G*H columns, panels) go to outs[q] + u, accumulated where bit q of
// `accumulate` is set. One cell call after the products rather than one per panel: the
// cell's fixed costs are paid once a step (docs/performance.md, "B = 1 sequences"). Odd
// steps go through the panels backwards: a step starts on the weights the previous one
// read last, still in L1. The products' bits are gemm_packed's, so the cell's are those
// of the general path.
template <typename T, class Finish>
void one_row_step(Slice s, i64 t, const T* hp, const kernels::PackedB<T>& w_hh, i64 H,
                  int gates, T* const* outs, unsigned accumulate,
                  const ProjectionAlongSteps<T>& along, const Finish& finish) {
  constexpr i64 NR = kernels::PackedB<T>::kPanel;
  const i64 first = s.u0 / NR, count = (s.u1 - s.u0) / NR;
  for (i64 n = 0; n < count; ++n) {
    const i64 u = (first + (t % 2 == 0 ? n : count - 1 - n)) * NR;  // the panel's first unit
    i64 panels[kernels::kGemvMaxPanels];
    T* y[kernels::kGemvMaxPanels];
    for (int q = 0; q < gates; ++q) {
      panels[q] = (q * H + u) / NR;
      y[q] = outs[q] + u;
    }
    kernels::GemvTile<T> tile;
    const bool with_tile = along.tile(t, first, count, n, &tile);
    kernels::gemv_panels<T>(hp, w_hh, gates, panels, y, accumulate, with_tile ? &tile : nullptr);
  }
  finish(s.u0, s.u1 - s.u0);
}

// Runs the forward time loop of `cell` over d.T steps. a.h (B, R) read as h0, written as
// h_n; h_spare (B, R) scratch: h is double buffered so that one barrier per step
// suffices (step n's GEMM reads all units of hbuf[n % 2] while each thread writes its
// part of h_t into hbuf[(n + 1) % 2]; the barrier orders those writes before step n+1's
// GEMM, and nobody writes hbuf[n % 2] again before the next barrier). When a.keep.h_prev
// is given, each thread copies its part of h_{t-1} there. The input projection of the
// steps [0, projected_steps) (all by default) is computed here; the cell's steps compute
// the rest (ProjectionAlongSteps).
template <typename T, class Cell>
void forward_loop(const Cell& cell, const ForwardArgs<T>& a, T* h_spare, const Dims& d,
                  i64 projected_steps = -1) {
  const ActiveRows active(a.lengths, d);
  Dims projected = d;
  if (projected_steps >= 0) projected.T = projected_steps;
  const InputProjection<T> projection(cell.pre, cell.ld_pre, a.x, a.w.w_ih, a.w.w_ih_packed,
                                     Cell::kGates, projected, active);
  T* hbuf[2] = {a.h, h_spare};
  T* h_prev = a.keep.h_prev;
  const i64 R = h_size(d);
  const i64 step_work = d.B * Cell::kGates * d.H * R;  // h_{t-1} W_hh^T
  // The slices may change after any step (the new owner of a unit finds its state and
  // h_{t-1} complete after the barrier), except inside a group of steps whose input
  // projection the cell computes along the steps (projected_steps > 0 comes from
  // ProjectionAlongSteps::rows_before_loop, each thread computing its own units' tiles):
  // only where a group ends.
  auto may_shrink_after = [projected_steps](i64 n) {
    return projected_steps <= 0 || ProjectionAlongSteps<T>::ends_group(n, projected_steps);
  };
  run_team<T>(team_size<T>(d.B, Cell::kGates * d.H, d.H), d.H, d.T * step_work, [&](auto& member) {
    auto barrier = [&member] { member.barrier(); };
    for (i64 n = 0; n < d.T; ++n) {
      const Slice s = member.slice();
      const i64 t = time_at(n, d);
      const T* hp = hbuf[n % 2];  // (B, R) read: h_{t-1}
      T* hn = hbuf[(n + 1) % 2];  // (B, R) written (this thread's part, h_slice): h_t
      projection.before_step(n, s.u0, s.u1);  // x W_ih^T of this thread's units
      if (h_prev != nullptr) copy_units(d.B, R, h_slice(s, d), hp, h_prev + t * d.B * R);
      cell.step(s, t, active.at(t), hp, hn, barrier);
      if (!member.end_step(may_shrink_after(n))) return;  // the team shrank without it
    }
    // After an odd number of steps h_n is in h_spare: copy this thread's part back (it
    // wrote it itself, or got it after a barrier, so no barrier is needed).
    if (d.T % 2 == 1) copy_units(d.B, R, h_slice(member.slice(), d), h_spare, a.h);
  });
}

// Runs the backward of `cell` chunk after chunk of time steps (chunk_of), in the order
// the backward visits them: the chunk's steps on one team, then its non-recurrent
// products while its dA is in cache (dX, dW_ih and the bias sums here, the hidden side in
// the cell's end_chunk). The first chunk writes the weight gradients unless they are
// accumulated into. One barrier per step suffices: the next step touches only the
// thread's own units of dh (and the cell's per-unit state) and writes another step's
// rows of dgates.
template <typename T, class Cell>
void backward_loop(Cell& cell, const BackwardArgs<T>& a, const Dims& d) {
  if (a.ld_dgates < Cell::kGates * d.H) {
    throw std::invalid_argument("backward: ld_dgates must be at least G*H = " +
                                std::to_string(Cell::kGates * d.H) + ", got " +
                                std::to_string(a.ld_dgates));
  }
  const i64 steps = backward_chunk_steps(d);
  const ActiveRows active(a.lengths, d);
  // W_ih packed once for dX (input_backward_chunk) when it runs step by step (sorted
  // lengths) or over several chunks, each of which would pack it again.
  kernels::PackedB<T> w_ih_nn;
  const bool pack_w_ih = active.by_prefix() || steps < d.T;
  if (pack_w_ih) w_ih_nn.pack_nn(Cell::kGates * d.H, d.I, a.w.w_ih, d.I);
  TeamLog log;  // the chunks' teams judge and shrink as one
  for (i64 n_hi = d.T - 1; n_hi >= 0;) {
    const TimeChunk c = chunk_of(n_hi, steps, d);
    const i64 n_lo = n_hi - (c.t1 - c.t0) + 1;
    cell.begin_chunk(c);
    const i64 chunk_work = (n_hi - n_lo + 1) * d.B * Cell::kGates * d.H * h_size(d);
    // The slices may change only between step_da and step_dh: step_dh reads all of dA_t
    // (complete after the barrier), while step_da reads the units of dh that the same
    // thread's step_dh wrote, with no barrier in between.
    run_team<T>(team_size<T>(d.B, Cell::kGates * d.H, d.H), d.H, chunk_work, [&](auto& member) {
      auto barrier = [&member] { member.barrier(); };
      for (i64 n = n_hi; n >= n_lo; --n) {
        const i64 t = time_at(n, d);
        const i64 rows = active.at(t);
        cell.step_da(member.slice(), n, t, rows, c, barrier);
        if (!member.end_step(true)) return;  // the team shrank without this thread
        cell.step_dh(member.slice(), n, t, rows, c);
      }
    }, &log);
    const bool first = c.first && !a.accumulate_dw;
    input_backward_chunk(a.dx, a.g.dw_ih, cell.db_ih, cell.db_hh, cell.hh_cols, a.dgates,
                         a.ld_dgates, a.x, a.w.w_ih, Cell::kGates * d.H, d, c, first,
                         a.accumulate_dx, active, pack_w_ih ? &w_ih_nn : nullptr);
    cell.end_chunk(c, first, active);
    n_hi = n_lo - 1;
  }
}

// The states h_{t-1} entering the steps of chunk c, (rows of c, H), row (t - c.t0)*B + b:
// rows of s.h_prev (T, B, H) when the forward kept it; otherwise gathered into buf (rows
// of c, H) from s.hs shifted by one step and s.h0 at the step where each sequence starts
// (0 forward; lengths[b]-1 or T-1 reverse); 0 in inactive rows (never used: their dA rows
// are 0). Where that gather would copy whole consecutive rows of hs (forward direction,
// no lengths, hs rows H apart: one direction; the chunk does not hold step 0) the rows of
// hs are returned instead: only the chunk holding step 0 fills (and makes resident) rows
// of buf.
template <typename T>
const T* chunk_h_prev(T* buf, const StateBuffers<const T*>& s, const std::int64_t* lengths,
                      const TimeChunk& c, const Dims& d) {
  const i64 B = d.B, H = d.H;
  if (s.h_prev != nullptr) return s.h_prev + c.t0 * B * H;
  if (!d.reverse && lengths == nullptr && s.ld_hs == H && c.t0 >= 1) {
    return s.hs + (c.t0 - 1) * B * H;
  }
  for (i64 t = c.t0; t < c.t1; ++t) {
    for (i64 b = 0; b < B; ++b) {
      T* dst = buf + ((t - c.t0) * B + b) * H;
      const i64 start = d.reverse ? (lengths == nullptr ? d.T - 1 : lengths[b] - 1) : 0;
      const T* src = nullptr;  // stays nullptr in an inactive row: zeros
      if (step_active(lengths, b, t)) {
        src = t == start ? s.h0 + b * H : s.hs + ((d.reverse ? t + 1 : t - 1) * B + b) * s.ld_hs;
      }
      if (src == nullptr) {
        std::fill(dst, dst + H, T(0));
      } else {
        std::copy(src, src + H, dst);
      }
    }
  }
  return buf;
}

// Zeroes units [0, n) of the `blocks` gate blocks (H apart) of a row.
template <typename T>
void zero_gate_units(i64 n, i64 H, i64 blocks, T* row) {
  for (i64 q = 0; q < blocks; ++q) std::fill(row + q * H, row + q * H + n, T(0));
}

}  // namespace rnnkit::detail
