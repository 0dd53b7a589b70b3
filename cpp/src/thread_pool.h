// rnnkit's own worker threads, shared by every parallel region of the core (the time loop
// teams of team.h, for_each_item, the GEMM splits); internal, not installed.
//
// Why not OpenMP: an idle OpenMP worker keeps spinning long after its region ends, taking
// the core from whatever the process runs next (NumPy's BLAS threads, torch's own OpenMP
// runtime). Here a waiting thread spins only briefly (kIdleSpin between calls, kTeamSpin
// at a barrier or while the caller waits for its team), then sleeps on a condition
// variable until woken.
//
// When an OpenMP runtime is handed over (openmp_team.h: torch's, by rnnkit.torch), the
// large teams (kMinOpenMpWork) of the thread that handed it over run on that runtime's
// threads instead, under the same one-team-at-a-time lock.
//
// One pool per process, with one team at a time: a call that finds the pool busy (another
// Python thread's team) or that comes from inside a team runs on its own thread instead
// (n = 1), and a team gets fewer threads than asked for when workers do not join within
// its join window (kJoinWorkPerMicrosecond). Every parallel region here gives each element the same
// operations whatever the number of threads, so fewer threads never change the bits.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <thread>

namespace rnnkit::detail {

// How long a thread spins before it sleeps: a worker waiting for the next call, and a
// thread waiting at a team's barrier (or the caller waiting for its team to finish).
constexpr std::chrono::microseconds kIdleSpin{20};
constexpr std::chrono::microseconds kTeamSpin{100};
// How long a worker that came too late for a call's team spins for the next call.
constexpr std::chrono::microseconds kLateSpin{200};
// How long a wait spins before it starts yielding the core (a barrier's usual wait).
constexpr std::chrono::microseconds kPureSpin{10};
// How long a caller waits at most for workers to join its team before it starts with those
// that have (enough for a sleeping worker on an idle core to wake).
constexpr std::chrono::microseconds kJoinWindow{100};
// A small job waits less: 1 µs per this many multiply-adds of its work, about 10% of its time
// on one thread, so that a worker whose core another thread or process holds (NumPy's BLAS
// workers spin there after a product) costs a small call at most 10% instead of the whole
// kJoinWindow. A worker still spinning after the previous call joins in well under 1 µs.
constexpr std::int64_t kJoinWorkPerMicrosecond = std::int64_t(1) << 19;

// After kShortTeamsInARow calls in a row whose teams came up short, the next calls wait at
// most kRetryJoinWindow for workers (long enough for a worker still spinning from an
// earlier call, kLateSpin), except every kFullJoinEvery-th, which waits its whole window
// again. A worker that cannot run (its core held by another thread, or both threads of a
// team on one vCPU) would otherwise cost each parallel call its whole window: ~100 calls
// in a training backward. One short team alone does not shorten the windows: a worker
// that woke up late (its core idle but asleep) spins for the next call and joins it.
constexpr int kShortTeamsInARow = 2;
constexpr std::chrono::microseconds kRetryJoinWindow{5};
constexpr int kFullJoinEvery = 8;

// The work of a job that waits the full kJoinWindow whatever its size (a word2vec batch).
constexpr std::int64_t kLongJob = std::numeric_limits<std::int64_t>::max();

// Teams that started with fewer threads than they asked for (a worker missed the join
// window).
std::int64_t teams_short_count();

// For tests: sets the longest join window in microseconds (kJoinWindow until set);
// returns the previous one.
std::int64_t set_join_window(std::int64_t microseconds);

// For tests: when set, a caller waits for every worker it asked for, however long they take
// to join, so that a test comparing thread counts really runs the threads it asked for even
// on a loaded machine (the results are the same bits either way).
void set_wait_for_full_teams(bool on);

// Spin-then-sleep waiting on a condition made true by another thread. The thread making
// it true stores with memory_order_seq_cst and then calls notify_all().
class Wakeup {
 public:
  template <class Ready>
  void wait(const Ready& ready, std::chrono::microseconds spin);
  void notify_all();

 private:
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
};

// The barrier of one team of `size` threads; reusable (sense reversing). It also carries
// one team-wide decision: a thread that asks to shrink the team before it arrives gets,
// with every other member, `true` from the next barrier that allows shrinking (the last
// thread to arrive reads the request and publishes the answer with the new phase, so all
// members leave that barrier with the same answer).
class TeamBarrier {
 public:
  void reset(int size) {
    size_ = size;
    shrink_requested_.store(false, std::memory_order_relaxed);
  }
  void arrive_and_wait() { arrive(false); }
  // Asks that the team shrink at the next barrier that allows it (arrive(true)).
  void request_shrink() { shrink_requested_.store(true, std::memory_order_relaxed); }
  // Waits for the whole team; returns true when the team shrinks here (only where
  // `may_shrink`, and only after a request_shrink()); the same answer on every member.
  bool arrive(bool may_shrink);

 private:
  int size_ = 1;
  std::atomic<int> arrived_{0};
  // Phase number << 1 | whether the team shrank at the barrier that started this phase.
  std::atomic<std::uint32_t> phase_{0};
  std::atomic<bool> shrink_requested_{false};
  Wakeup wakeup_;
};

// A job without allocation: call(ctx, id, n, barrier) on thread `id` of a team of n.
struct JobRef {
  void (*call)(const void* ctx, int id, int n, TeamBarrier& barrier);
  const void* ctx;
};

// Runs job, of about `work` multiply-adds in all, on a team of `wanted` threads (the caller
// is thread 0) and returns when all have finished; on the calling thread alone (n = 1) when
// wanted <= 1, the core was built without threads, the caller is inside a team, or another
// caller's team holds the pool.
void run_job(int wanted, std::int64_t work, JobRef job);

// True on a thread running a team's job (team of more than one thread).
bool in_team();

// The pieces of a team that the core's own pool and the OpenMP teams (openmp_team.h) share.
// job on thread id of a team of n > 1 (marks the thread as in a team).
void call_job(const JobRef& job, int id, int n, TeamBarrier& barrier) noexcept;
// job on the calling thread alone (n = 1).
void run_alone(const JobRef& job);
// The longest a caller waits for members to join a job of `work` multiply-adds
// (kJoinWorkPerMicrosecond, at most the window set_join_window set; kRetryJoinWindow
// after teams that came up short). The caller holds the pool's lock.
std::chrono::microseconds join_window(std::int64_t work);
// set_wait_for_full_teams's setting.
bool waits_for_full_teams();
// Records the size of a team that asked for `wanted` threads and got `members`: counts
// it in teams_short_count when short, and sets join_window's next window. The caller
// holds the pool's lock.
void record_team(int members, int wanted);

// f(id, n, barrier) on each thread of a team (see run_job).
template <class F>
void run_parallel(int wanted, std::int64_t work, const F& f) {
  run_job(wanted, work, JobRef{[](const void* ctx, int id, int n, TeamBarrier& barrier) {
                           (*static_cast<const F*>(ctx))(id, n, barrier);
                         },
                         &f});
}

// Tells the CPU that this thread is spinning (frees resources for the other hyperthread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins for up to `spin`, then sleeps until ready().
template <class Ready>
void Wakeup::wait(const Ready& ready, std::chrono::microseconds spin) {
  // After kPureSpin each round yields the core: the thread we wait for may be waiting
  // for this very core (more runnable threads than cores).
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return;
      cpu_relax();
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= spin) break;
    if (waited >= kPureSpin) std::this_thread::yield();
  }
  // Counted before ready() is checked under the mutex: the notifier either sees a
  // sleeper (and takes the mutex, so it wakes us) or made ready() true before our check.
  sleepers_.fetch_add(1);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, ready);
  }
  sleepers_.fetch_sub(1);
}

}  // namespace rnnkit::detail
