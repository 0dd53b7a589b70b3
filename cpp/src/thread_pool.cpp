// The process's pool of worker threads (thread_pool.h).
#include "thread_pool.h"

#include "openmp_team.h"

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

#if defined(RNNKIT_HAVE_THREADS) && defined(__unix__)
#include <pthread.h>
#endif

namespace rnnkit::detail {

namespace {
// Set on a thread while it runs a job of a team of more than one thread.
thread_local bool t_in_team = false;
// The barrier of a team of one: never waits, touches nothing.
TeamBarrier alone_barrier;
std::atomic<bool> wait_for_full_teams{false};
std::atomic<std::int64_t> join_window_us{kJoinWindow.count()};
std::atomic<std::int64_t> teams_short{0};
int short_streak = 0;  // teams in a row that came up short (read under the pool's lock)
}  // namespace

void set_wait_for_full_teams(bool on) { wait_for_full_teams.store(on); }
std::int64_t set_join_window(std::int64_t microseconds) {
  return join_window_us.exchange(microseconds);
}
std::int64_t teams_short_count() { return teams_short.load(std::memory_order_relaxed); }

bool in_team() { return t_in_team; }

// An exception escaping the job would leave the team waiting at a barrier forever, so it
// terminates instead (as it would in an OpenMP region).
void call_job(const JobRef& job, int id, int n, TeamBarrier& barrier) noexcept {
  t_in_team = true;
  job.call(job.ctx, id, n, barrier);
  t_in_team = false;
}

void run_alone(const JobRef& job) { job.call(job.ctx, 0, 1, alone_barrier); }

std::chrono::microseconds join_window(std::int64_t work) {
  const std::chrono::microseconds window(
      std::min(join_window_us.load(), std::max<std::int64_t>(work, 0) / kJoinWorkPerMicrosecond));
  const bool retry = short_streak < kShortTeamsInARow || short_streak % kFullJoinEvery == 0;
  return retry ? window : std::min(window, kRetryJoinWindow);
}

bool waits_for_full_teams() { return wait_for_full_teams.load(std::memory_order_relaxed); }
void record_team(int members, int wanted) {
  if (members < wanted) teams_short.fetch_add(1, std::memory_order_relaxed);
  short_streak = members < wanted ? short_streak + 1 : 0;
}

void Wakeup::notify_all() {
  if (sleepers_.load() == 0) return;
  { std::lock_guard<std::mutex> lock(mutex_); }
  cv_.notify_all();
}

bool TeamBarrier::arrive(bool may_shrink) {
  if (size_ <= 1) return false;  // a team of one (shared by concurrent lone callers)
  const std::uint32_t phase = phase_.load(std::memory_order_acquire);
  // A request stored before a member's arrival is seen by the last to arrive (the
  // arrivals' read-modify-writes order them).
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == size_) {
    // Last to arrive: nobody touches arrived_ again before the phase changes.
    arrived_.store(0, std::memory_order_relaxed);
    const bool shrink = may_shrink && shrink_requested_.load(std::memory_order_relaxed);
    phase_.store(((phase | 1u) + 1u) | (shrink ? 1u : 0u));
    wakeup_.notify_all();
    return shrink;
  }
  wakeup_.wait([&] { return phase_.load() != phase; }, kTeamSpin);
  // Nobody changes the phase again before this member arrives at the next barrier.
  return (phase_.load() & 1u) != 0;
}

#ifdef RNNKIT_HAVE_THREADS

namespace {

// The workers and the state of the team they run. A team is whoever shows up: the caller
// announces a call (ticket: call number << 16 | threads wanted), workers join it by
// claiming the next thread id (claims: call number << 32 | closed << 31 | members), and
// after at most kJoinWindow the caller closes the team with the members it has and
// publishes their number (start: call number << 16 | team size). A worker asleep on a
// core that another process holds may take milliseconds to be scheduled: the caller
// then runs with fewer threads instead of waiting for it at every barrier. The team
// size only changes who computes which slice, never the bits.
class ThreadPool {
 public:
  void run(int wanted, std::int64_t work, const JobRef& job) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {  // another caller's team: run alone
      run_alone(job);
      return;
    }
    if (run_on_openmp(wanted, work, job)) return;
    const std::size_t had = workers_.size();
    start_workers(wanted - 1);
    wanted = std::min<int>(wanted, static_cast<int>(workers_.size()) + 1);
    if (wanted <= 1) {
      run_alone(job);
      return;
    }
    // Workers started just now take longer than the window to run: wait for them.
    const bool wait_for_all = workers_.size() > had || waits_for_full_teams();
    const std::uint64_t call = (ticket_.load() >> 16) + 1;
    job_ = job;
    claims_.store((call << 32) | 1);  // the caller is member 0
    ticket_.store((call << 16) | static_cast<std::uint64_t>(wanted));
    work_.notify_all();
    const auto deadline = std::chrono::steady_clock::now() + join_window(work);
    while ((claims_.load() & kMembers) < static_cast<std::uint64_t>(wanted) &&
           (wait_for_all || std::chrono::steady_clock::now() < deadline)) {
      cpu_relax();
    }
    const int n = static_cast<int>(claims_.fetch_or(kClosed) & kMembers);
    record_team(n, wanted);
    barrier_.reset(n);
    unfinished_.store(n - 1);
    start_.store((call << 16) | static_cast<std::uint64_t>(n));
    started_.notify_all();
    if (n > 1) {
      call_job(job_, 0, n, barrier_);
    } else {
      run_alone(job);
    }
    done_.wait([&] { return unfinished_.load() == 0; }, kTeamSpin);
  }

 private:
  static constexpr std::uint64_t kClosed = std::uint64_t(1) << 31;
  static constexpr std::uint64_t kMembers = kClosed - 1;

  // Starts workers until there are `count` (fewer if the system refuses a thread).
  void start_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      try {
        workers_.emplace_back([this, seen = ticket_.load()] { work(seen); });
      } catch (const std::system_error&) {
        return;
      }
      workers_.back().detach();  // the pool lives as long as the process
    }
  }

  // The thread id this worker claimed in call `call` wanting `wanted` threads, or 0 when
  // the team is full or closed (or already a later call's).
  int claim(std::uint64_t call, std::uint64_t wanted) {
    std::uint64_t c = claims_.load();
    while ((c >> 32) == call && (c & kClosed) == 0 && (c & kMembers) < wanted) {
      if (claims_.compare_exchange_weak(c, c + 1)) return static_cast<int>(c & kMembers);
    }
    return 0;
  }

  void work(std::uint64_t seen) {
    // A worker that came too late for a call waits spinning for the next one a while
    // longer: the caller runs that call alone, and its next call usually follows soon.
    auto spin = kIdleSpin;
    for (;;) {
      work_.wait([&] { return ticket_.load() != seen; }, spin);
      seen = ticket_.load();
      const std::uint64_t call = seen >> 16;
      const int id = claim(call, seen & 0xffff);
      spin = id == 0 ? kLateSpin : kIdleSpin;
      if (id == 0) continue;
      started_.wait([&] { return (start_.load() >> 16) == call; }, kTeamSpin);
      const int n = static_cast<int>(start_.load() & 0xffff);
      if (id < n) call_job(job_, id, n, barrier_);
      if (unfinished_.fetch_sub(1) == 1) done_.notify_all();
    }
  }

  std::mutex busy_;  // held by the caller whose team runs
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<std::uint64_t> claims_{0};
  std::atomic<std::uint64_t> start_{0};
  JobRef job_{};
  TeamBarrier barrier_;
  std::atomic<int> unfinished_{0};
  Wakeup work_;  // workers wait here for the next call
  Wakeup started_;  // members wait here for the team's size
  Wakeup done_;  // the caller waits here for its team
};

// Never destroyed: detached workers may still be asleep in it at exit.
std::atomic<ThreadPool*> g_pool{nullptr};
std::once_flag g_pool_once;

// A child of fork() has none of the parent's workers (and maybe a pool locked by a thread
// that does not exist there): it starts a pool of its own.
void start_fresh_pool_in_child() { g_pool.store(new ThreadPool()); }

ThreadPool& pool() {
  std::call_once(g_pool_once, [] {
    g_pool.store(new ThreadPool());
#ifdef __unix__
    pthread_atfork(nullptr, nullptr, start_fresh_pool_in_child);
#endif
  });
  return *g_pool.load();
}

}  // namespace

void run_job(int wanted, std::int64_t work, JobRef job) {
  if (wanted > 1 && !t_in_team) {
    pool().run(std::min(wanted, 0xffff), work, job);
    return;
  }
  run_alone(job);
}

#else  // built without threads: everything on the calling thread

void run_job(int wanted, std::int64_t work, JobRef job) {
  (void)wanted;
  (void)work;
  run_alone(job);
}

#endif

}  // namespace rnnkit::detail
