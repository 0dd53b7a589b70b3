// How one GEMM call is split between threads (gemm_internal.h: run_split): whether it
// forks at all, and into which grid of row x column regions of C. The split never changes
// the bits: each element of C is computed whole by one thread, over all of K.
#include <algorithm>

#include "gemm_internal.h"
#include "rnnkit/threads.h"
#include "thread_pool.h"

namespace rnnkit::kernels::gemm_detail {

namespace {

// Below this much work (multiply-adds, counting at least 4 rows: with fewer rows a GEMM
// is bound by streaming B, not by the FMA units) a GEMM runs on the calling thread. Two
// thresholds, by how the team is likely found:
// - prepacked B (gemm_packed*): the same B is multiplied again and again back to back (a
//   time loop), so the team is awake and a fork/join costs a few microseconds;
// - the one-off entry points (gemm_nt/nn/tn): the team has usually gone to sleep since the
//   last parallel region, and waking it costs tens of microseconds (more when another
//   process holds the other core), so a one-off product must be several times larger to
//   gain from a second thread (docs/performance.md, "When a GEMM forks").
constexpr i64 kMinParallelWorkPacked = i64(1) << 19;
constexpr i64 kMinParallelWorkOneOff = i64(1) << 21;

// Threads for an M x N x K product: 1 when below min_work multiply-adds or already inside
// a team (thread_pool.h).
int choose_threads(i64 M, i64 N, i64 K, i64 min_work) {
  if (rnnkit::detail::in_team()) return 1;
  if (std::max<i64>(M, 4) * N * std::max<i64>(K, 1) < min_work) return 1;
  return std::max(1, rnnkit::get_num_threads());
}


// Grid of tm x tn thread regions over mb row blocks x nb column panels. Cost: the tiles on
// the busiest thread. Among the grids within 1/16 of the lowest cost, the one with the most
// splits the preferred way, then the fewest threads.
struct Grid {
  int tm = 1, tn = 1;
};
Grid choose_grid(int t, i64 mb, i64 nb, Split prefer) {
  auto valid = [&](int tm, int tn) { return tm <= mb && tn <= nb; };
  auto cost = [&](int tm, int tn) { return ((mb + tm - 1) / tm) * ((nb + tn - 1) / tn); };
  i64 lowest = mb * nb;
  for (int tm = 1; tm <= t; ++tm) {
    for (int tn = 1; tm * tn <= t; ++tn) {
      if (valid(tm, tn)) lowest = std::min(lowest, cost(tm, tn));
    }
  }
  Grid best;
  int best_splits = 0;
  for (int tm = 1; tm <= t; ++tm) {
    for (int tn = 1; tm * tn <= t; ++tn) {
      if (!valid(tm, tn) || cost(tm, tn) > lowest + lowest / 16) continue;
      const int splits = prefer == Split::rows ? tm : tn;
      if (splits > best_splits || (splits == best_splits && tm * tn < best.tm * best.tn)) {
        best_splits = splits;
        best = Grid{tm, tn};
      }
    }
  }
  return best;
}

// Split [0, blocks) into `parts` near-equal ranges; returns the start of range `i`.
i64 split_at(i64 blocks, int parts, int i) {
  return (blocks / parts) * i + std::min<i64>(i, blocks % parts);
}

}  // namespace

void run_split(i64 M, i64 n_begin, i64 n_end, i64 K, i64 panel, Calls calls, Split prefer,
               RegionRef region) {
  const i64 N = n_end - n_begin;
  const i64 min_work = calls == Calls::prepacked ? kMinParallelWorkPacked : kMinParallelWorkOneOff;
  const int t = choose_threads(M, N, K, min_work);
  const i64 p0 = n_begin / panel;
  const i64 nb = (n_end + panel - 1) / panel - p0;
  const i64 mb = (M + kMR - 1) / kMR;
  const Grid g = t > 1 ? choose_grid(t, mb, nb, prefer) : Grid{};
  if (g.tm * g.tn == 1) {
    region(0, M, n_begin, n_end);
    return;
  }
  auto part = [&](int id) {
    const int im = id / g.tn, in = id % g.tn;
    const i64 m0 = std::min(M, split_at(mb, g.tm, im) * kMR);
    const i64 m1 = std::min(M, split_at(mb, g.tm, im + 1) * kMR);
    const i64 n0 = std::max(n_begin, (p0 + split_at(nb, g.tn, in)) * panel);
    const i64 n1 = std::min(n_end, (p0 + split_at(nb, g.tn, in + 1)) * panel);
    if (m0 < m1 && n0 < n1) region(m0, m1, n0, n1);
  };
  // Region id on thread id % n (all on the caller when the pool gives one thread).
  const int regions = g.tm * g.tn;
  rnnkit::detail::run_parallel(regions, M * N * K, [&](int id, int n, rnnkit::detail::TeamBarrier&) {
    for (int r = id; r < regions; r += n) part(r);
  });
}

}  // namespace rnnkit::kernels::gemm_detail
