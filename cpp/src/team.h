// One thread team (thread_pool.h) for a whole time loop, shared by the three cells;
// internal, not installed.
//
// Thread k of the team owns the hidden units [u0, u1) of its slice: per step it computes
// only its units' gate columns of the recurrent GEMM (gemm_packed_cols gives each column
// the bits of the whole product), the elementwise cell of its units for every row, and
// meets the others at a barrier. No fork/join per step. Without a team the same body runs
// on the calling thread with the slice [0, H): every element gets the same operations
// whichever thread owns it, so the bits never depend on the thread count.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "rnnkit/gemm.h"
#include "rnnkit/threads.h"
#include "thread_pool.h"

namespace rnnkit::detail {

// Teams that ran with more than one thread since the module loaded (team.cpp): lets the
// tests check that a multi-thread run really split its units. Counted once per team.
extern std::atomic<std::int64_t> teams_formed;
std::int64_t teams_formed_count();

// When a team pays. A step multiplies B rows by W_hh^T (H x gate columns) and reads all
// of W_hh, whatever B. Two threads each compute and read half, and meet at a barrier,
// which pays when the step has enough multiply-adds (kMinTeamWork) or, at small B, when
// the step's time is the read of W_hh from L2, which two threads halve from their own
// caches (kMinTeamWeightBytes). Below both bounds the barrier costs more than the split
// saves. The bounds are the 2-thread break-even points (docs/performance.md, "Thread
// team per time loop"). Below both bounds gemm_packed never forks either (its own
// threshold, gemm_threads.cpp, counts at least 4 rows against 2^19), so a small cell's
// step never pays for a team.
constexpr std::int64_t kMinTeamWork = std::int64_t(1) << 17;         // multiply-adds
constexpr std::int64_t kMinTeamWeightBytes = std::int64_t(192) << 10;  // bytes of W_hh

// Threads for the time loop of a cell with B rows, `gate_cols` gate columns and H hidden
// units (W_hh is gate_cols x H): 1 in a build without threads, with one thread
// requested, when already inside a team, or below both bounds above; otherwise one
// thread per half of either bound reached (the 2-thread break-even, extrapolated to more threads),
// never more than requested nor one per panel of units (a slice narrower than a panel
// wastes the micro-tiles).
template <typename T>
int team_size(std::int64_t B, std::int64_t gate_cols, std::int64_t H) {
  const int requested = get_num_threads();
  if (requested <= 1 || in_team()) return 1;
  const std::int64_t work = B * gate_cols * H;
  const std::int64_t weight_bytes = gate_cols * H * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t worth =
      std::max(work / (kMinTeamWork / 2), weight_bytes / (kMinTeamWeightBytes / 2));
  if (worth < 2) return 1;
  constexpr std::int64_t P = kernels::PackedB<T>::kPanel;
  return static_cast<int>(std::min({std::int64_t(requested), worth, (H + P - 1) / P}));
}

// Hidden units [u0, u1) of one thread; never empty (a team has at most one thread per
// panel of units).
struct Slice {
  std::int64_t u0, u1;
};

// The slice of thread `id` of `parts`: near-equal numbers of whole panels
// (PackedB<T>::kPanel units), so that each thread's gate columns start on a panel
// boundary whenever H is a multiple of the panel width.
template <typename T>
Slice slice_of(std::int64_t H, int parts, int id) {
  constexpr std::int64_t P = kernels::PackedB<T>::kPanel;
  const std::int64_t blocks = (H + P - 1) / P;
  auto at = [&](int i) {
    return std::min(H, ((blocks / parts) * i + std::min<std::int64_t>(i, blocks % parts)) * P);
  };
  return Slice{at(id), at(id + 1)};
}

// Copies units [u0, u1) of each of B rows (H values per row) from src to dst: a thread's
// part of a (B, H) state.
template <typename T>
void copy_units(std::int64_t B, std::int64_t H, Slice s, const T* src, T* dst) {
  for (std::int64_t b = 0; b < B; ++b) {
    std::copy(src + b * H + s.u0, src + b * H + s.u1, dst + b * H + s.u0);
  }
}

// One thread's place in the team of a time loop: its slice of units, the barriers, and
// the rule that makes a team which does not run in parallel give up its extra threads.
//
// Why: a team is only faster than one thread while its threads really run at the same
// time. When they share one core (the other taken by another process or the hypervisor),
// each barrier waits for the other thread to be scheduled and the team is slower than its
// thread 0 alone. So each member times its work and its waits at the barriers of every
// kTimedEvery-th step; when, in kSlowWindows windows in a row of kShrinkWindow each, its
// timed steps took more than 7/8 of what one thread would take for all units (their work
// times H / its slice's width), it asks the team to shrink. At the next step barrier that
// allows it, every member learns the same answer (TeamBarrier::arrive): thread 0 takes
// all units [0, H) from then on, the others leave the loop. Every element gets the same
// operations whichever thread computes it, so the slices may change at a step barrier
// without changing a bit. A team that runs in parallel spends about 0.5-0.6 of the one
// thread time per step, one that shares a core 1 or more; 7/8 shrinks a team that gains
// little even where the one thread left would get a whole core to itself (a competing
// process on the other). A preemption lengthens one step, so it makes at most one window
// slow: only a lasting stall shrinks the team; a call whose threads share a core for its
// whole length shrinks within its first 6 milliseconds.
constexpr std::chrono::microseconds kShrinkWindow{2000};
constexpr int kSlowWindows = 3;
// Steps timed: one in this many (a clock read costs tens of nanoseconds, a small team's
// step about a microsecond).
constexpr std::int64_t kTimedEvery = 8;

// Teams that shrank to one thread since the module loaded (for tests).
std::int64_t teams_shrunk_count();
void count_shrunk_team();
// For tests: every team from now on asks to shrink at its step barrier number `step`
// (0-based, counted from the team's start; shrinking at the first barrier that allows
// it from there), or never when step < 0. Returns the previous setting.
std::int64_t set_forced_shrink_step(std::int64_t step);
std::int64_t forced_shrink_step();

// What the teams of consecutive loops of one job (the chunks of a backward, each a
// millisecond or two) pass on: each member's timing window so far (the time spent in
// teams, not between them), by thread id, and whether a team shrank (the later ones then
// run on one thread). Members past the first kLogged start each team with a fresh window
// (a small log is cheap to clear per call).
struct TeamLog {
  static constexpr int kLogged = 16;
  bool shrank = false;
  std::chrono::steady_clock::duration work[kLogged] = {}, wait[kLogged] = {};
  std::chrono::steady_clock::duration window[kLogged] = {};
  int slow_windows[kLogged] = {};
};

template <typename T>
class TeamMember {
 public:
  // log: where the window starts from and is left for the next team, or nullptr.
  TeamMember(std::int64_t H, int id, int n, TeamBarrier& barrier, TeamLog* log)
      : H_(H), id_(id), n_(n), barrier_(barrier), log_(log), slice_(slice_of<T>(H, n, id)),
        forced_step_(n > 1 ? forced_shrink_step() : -1) {
    if (n <= 1) return;
    if (log_ != nullptr && id >= TeamLog::kLogged) log_ = nullptr;
    if (log_ != nullptr) {
      work_ = log_->work[id];
      wait_ = log_->wait[id];
      window_before_ = log_->window[id];
      slow_windows_ = log_->slow_windows[id];
    }
    running_since_ = Clock::now();
    window_start_ = running_since_;
  }

  ~TeamMember() {
    if (log_ == nullptr || n_ <= 1) return;
    log_->work[id_] = work_;
    log_->wait[id_] = wait_;
    log_->window[id_] = window_before_ + (Clock::now() - window_start_);
    log_->slow_windows[id_] = slow_windows_;
  }

  TeamMember(const TeamMember&) = delete;
  TeamMember& operator=(const TeamMember&) = delete;

  // This thread's units for the coming step (all of [0, H) on one thread).
  Slice slice() const { return slice_; }

  // A barrier inside a step: the whole team meets, the slices stay.
  void barrier() {
    if (n_ <= 1) return;
    if (!timed_) {
      barrier_.arrive_and_wait();
      return;
    }
    const Clock::time_point arrived = Clock::now();
    work_ += arrived - running_since_;
    barrier_.arrive_and_wait();
    running_since_ = Clock::now();
    wait_ += running_since_ - arrived;
  }

  // The barrier that ends a step (in the backward, the one between a step's two halves).
  // `may_shrink`: whether the slices may change here (the same on every member). Returns
  // false when this thread leaves the loop: the team shrank and it is not thread 0.
  bool end_step(bool may_shrink) {
    if (n_ <= 1) return true;
    Clock::time_point arrived;
    if (timed_) {
      arrived = Clock::now();
      work_ += arrived - running_since_;
    }
    if (steps_ == forced_step_) barrier_.request_shrink();
    if (barrier_.arrive(may_shrink)) {
      n_ = 1;
      if (id_ != 0) return false;
      count_shrunk_team();
      if (log_ != nullptr) log_->shrank = true;
      slice_ = Slice{0, H_};
      return true;
    }
    if (timed_) {
      const Clock::time_point now = Clock::now();
      wait_ += now - arrived;
      if (window_before_ + (now - window_start_) >= kShrinkWindow) {
        // step time (work + wait) against 7/8 of one thread's (work * H / width)
        const std::int64_t width = slice_.u1 - slice_.u0;
        const bool slow = (work_ + wait_).count() * width * 8 > work_.count() * H_ * 7;
        slow_windows_ = slow ? slow_windows_ + 1 : 0;
        if (slow_windows_ >= kSlowWindows) barrier_.request_shrink();
        work_ = wait_ = window_before_ = Clock::duration::zero();
        window_start_ = now;
      }
    }
    timed_ = ++steps_ % kTimedEvery == 0;
    if (timed_) running_since_ = Clock::now();
    return true;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::int64_t H_;
  int id_;
  int n_;  // team size; 1 once shrunk
  TeamBarrier& barrier_;
  TeamLog* log_;
  Slice slice_;
  std::int64_t forced_step_;
  std::int64_t steps_ = 0;  // step barriers passed
  int slow_windows_ = 0;    // windows in a row that judged the team slow
  bool timed_ = true;       // whether the current step is timed
  Clock::time_point running_since_;  // the end of the last timed wait
  Clock::time_point window_start_;  // in this team
  Clock::duration window_before_{0};  // of this window, in earlier teams of the log
  Clock::duration work_{0}, wait_{0};  // of the timed steps of this window
};

// Runs body(member) (member: this thread's TeamMember<T>), about `work` multiply-adds in
// all, on a team of `threads` threads, each starting with its own slice of [0, H), or on
// the calling thread with the slice [0, H) when threads == 1, the pool gives one thread
// (thread_pool.h: busy with another caller's team, or no worker joined in time) or an
// earlier team of the same log shrank. Inside the team, GEMMs run on the calling thread
// (they never fork inside a team).
template <typename T, class Body>
void run_team(int threads, std::int64_t H, std::int64_t work, const Body& body,
              TeamLog* log = nullptr) {
  if (log != nullptr && log->shrank) threads = 1;
  run_parallel(threads, work, [&](int id, int n, TeamBarrier& team_barrier) {
    if (n > 1 && id == 0) teams_formed.fetch_add(1, std::memory_order_relaxed);
    TeamMember<T> member(H, id, n, team_barrier, log);
    body(member);
  });
}

}  // namespace rnnkit::detail
