// The process's pool of worker threads (thread_pool.h).
#include "thread_pool.h"

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
}  // namespace

bool in_team() { return t_in_team; }

void Wakeup::notify_all() {
  if (sleepers_.load() == 0) return;
  { std::lock_guard<std::mutex> lock(mutex_); }
  cv_.notify_all();
}

void TeamBarrier::arrive_and_wait() {
  if (size_ <= 1) return;  // a team of one (shared by concurrent lone callers)
  const std::uint32_t phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == size_) {
    // Last to arrive: nobody touches arrived_ again before the phase changes.
    arrived_.store(0, std::memory_order_relaxed);
    phase_.store(phase + 1);
    wakeup_.notify_all();
  } else {
    wakeup_.wait([&] { return phase_.load() != phase; }, kTeamSpin);
  }
}

#ifdef RNNKIT_HAVE_THREADS

namespace {

// Calls the job on thread id of n; an exception escaping it would leave the team waiting
// at a barrier forever, so it terminates instead (as it would in an OpenMP region).
void call_job(const JobRef& job, int id, int n, TeamBarrier& barrier) noexcept {
  t_in_team = true;
  job.call(job.ctx, id, n, barrier);
  t_in_team = false;
}

// The workers and the state of the team they run. A call is announced by a new ticket:
// (call counter << 16) | team size, so that a worker reads the size of the very call it
// was woken for. Worker i (thread id i + 1) takes part when i + 1 < team size.
class ThreadPool {
 public:
  void run(int wanted, const JobRef& job) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {  // another caller's team: run alone
      job.call(job.ctx, 0, 1, alone_barrier);
      return;
    }
    start_workers(wanted - 1);
    const int n = std::min<int>(wanted, static_cast<int>(workers_.size()) + 1);
    if (n <= 1) {
      job.call(job.ctx, 0, 1, alone_barrier);
      return;
    }
    job_ = job;
    barrier_.reset(n);
    unfinished_.store(n - 1);
    const std::uint64_t calls = (ticket_.load() >> 16) + 1;
    ticket_.store((calls << 16) | static_cast<std::uint64_t>(n));
    work_.notify_all();
    call_job(job_, 0, n, barrier_);
    done_.wait([&] { return unfinished_.load() == 0; }, kTeamSpin);
  }

 private:
  // Starts workers until there are `count` (fewer if the system refuses a thread).
  void start_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int id = static_cast<int>(workers_.size()) + 1;
      try {
        workers_.emplace_back([this, id, seen = ticket_.load()] { work(id, seen); });
      } catch (const std::system_error&) {
        return;
      }
      workers_.back().detach();  // the pool lives as long as the process
    }
  }

  void work(int id, std::uint64_t seen) {
    for (;;) {
      work_.wait([&] { return ticket_.load() != seen; }, kIdleSpin);
      seen = ticket_.load();
      const int n = static_cast<int>(seen & 0xffff);
      if (id >= n) continue;
      call_job(job_, id, n, barrier_);
      if (unfinished_.fetch_sub(1) == 1) done_.notify_all();
    }
  }

  std::mutex busy_;  // held by the caller whose team runs
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> ticket_{0};
  JobRef job_{};
  TeamBarrier barrier_;
  std::atomic<int> unfinished_{0};
  Wakeup work_;  // workers wait here for the next call
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

void run_job(int wanted, JobRef job) {
  if (wanted > 1 && !t_in_team) {
    pool().run(std::min(wanted, 0xffff), job);
    return;
  }
  job.call(job.ctx, 0, 1, alone_barrier);
}

#else  // built without threads: everything on the calling thread

void run_job(int wanted, JobRef job) {
  (void)wanted;
  job.call(job.ctx, 0, 1, alone_barrier);
}

#endif

}  // namespace rnnkit::detail
