// Teams on an OpenMP runtime's threads (openmp_team.h).
#include "openmp_team.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#ifdef __unix__
#include <pthread.h>
#endif

namespace rnnkit::detail {

namespace {

// The runtime in use and the thread that may open regions on it.
struct InUse {
  OpenMpRuntime runtime;
  std::thread::id owner;
};

// Never freed: a region in flight on another thread may still read the one replaced.
std::atomic<const InUse*> g_in_use{nullptr};
std::atomic<const InUse*> g_last{nullptr};  // the last one handed over, in use or not
std::atomic<std::int64_t> g_regions{0};
std::atomic<std::int64_t> g_min_work{kMinOpenMpWork};
std::once_flag g_atfork_once;

// A child of fork() has none of the runtime's workers that its parent's regions used.
void stop_in_child() { g_in_use.store(nullptr); }

// The team of one region, on the caller's stack while GOMP_parallel runs. Its members
// are whichever of the runtime's threads claim a thread id (claims: closed << 31 |
// members) before the caller (OpenMP thread 0) closes the team, as in the core's own
// pool (thread_pool.cpp): a thread that wakes too late does nothing, and the runtime's
// barrier at the end of the region waits for it after the job, not at each of the job's
// barriers.
struct Region {
  const OpenMpRuntime* runtime;
  const JobRef* job;
  int wanted;
  std::int64_t work;
  std::atomic<std::uint32_t> claims{1};  // the caller is member 0
  std::atomic<int> size{0};  // the team's size once closed; 0 before
  TeamBarrier barrier;
  Wakeup started;  // members wait here for the team's size
};

constexpr std::uint32_t kClosed = std::uint32_t(1) << 31;
constexpr std::uint32_t kMembers = kClosed - 1;

// Thread 0: waits for members up to the join window, closes the team, runs its part.
void lead(Region& r) {
  // OpenMP may give fewer threads than asked for (OMP_THREAD_LIMIT, OMP_DYNAMIC).
  const auto wanted = static_cast<std::uint32_t>(std::min(r.wanted, r.runtime->num_threads()));
  const bool wait_for_all = waits_for_full_teams();
  const auto deadline = std::chrono::steady_clock::now() + join_window(r.work);
  while ((r.claims.load() & kMembers) < wanted &&
         (wait_for_all || std::chrono::steady_clock::now() < deadline)) {
    cpu_relax();
  }
  const int n = static_cast<int>(r.claims.fetch_or(kClosed) & kMembers);
  record_team(n, r.wanted);
  r.barrier.reset(n);
  r.size.store(n);
  r.started.notify_all();
  if (n > 1) {
    call_job(*r.job, 0, n, r.barrier);
  } else {
    run_alone(*r.job);
  }
}

// Any other thread: claims a thread id, waits for the team's size, runs its part.
void join(Region& r) {
  std::uint32_t c = r.claims.load();
  while ((c & kClosed) == 0 && (c & kMembers) < static_cast<std::uint32_t>(r.wanted)) {
    if (r.claims.compare_exchange_weak(c, c + 1)) break;
  }
  if ((c & kClosed) != 0 || (c & kMembers) >= static_cast<std::uint32_t>(r.wanted)) return;
  const int id = static_cast<int>(c & kMembers);
  r.started.wait([&] { return r.size.load() != 0; }, kTeamSpin);
  const int n = r.size.load();
  if (id < n) call_job(*r.job, id, n, r.barrier);
}

// The function GOMP_parallel runs on each thread of the region.
void region_body(void* data) {
  Region& r = *static_cast<Region*>(data);
  if (r.runtime->thread_num() == 0) {
    lead(r);
  } else {
    join(r);
  }
}

}  // namespace

void use_openmp_runtime(const OpenMpRuntime& runtime) {
#ifdef __unix__
  std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, stop_in_child); });
#endif
  // Switching back and forth reuses the last one instead of keeping a new one each time.
  const InUse* last = g_last.load();
  if (last == nullptr || last->owner != std::this_thread::get_id() ||
      last->runtime.parallel != runtime.parallel || last->runtime.thread_num != runtime.thread_num ||
      last->runtime.num_threads != runtime.num_threads || last->runtime.level != runtime.level) {
    last = new InUse{runtime, std::this_thread::get_id()};
    g_last.store(last);
  }
  g_in_use.store(last);
}

void stop_openmp_runtime() { g_in_use.store(nullptr); }

bool openmp_runtime_in_use() {
  const InUse* in_use = g_in_use.load();
  return in_use != nullptr && in_use->owner == std::this_thread::get_id();
}

std::int64_t set_openmp_min_work(std::int64_t work) { return g_min_work.exchange(work); }

std::int64_t openmp_regions_count() { return g_regions.load(std::memory_order_relaxed); }

bool run_on_openmp(int wanted, std::int64_t work, const JobRef& job) {
  const InUse* in_use = g_in_use.load();
  if (in_use == nullptr || in_use->owner != std::this_thread::get_id()) return false;
  if (work < g_min_work.load(std::memory_order_relaxed)) return false;
  const OpenMpRuntime& runtime = in_use->runtime;
  if (runtime.level() > 0) {  // inside an OpenMP region: a nested one would get one thread
    run_alone(job);
    return true;
  }
  Region r;
  r.runtime = &runtime;
  r.job = &job;
  r.wanted = wanted;
  r.work = work;
  g_regions.fetch_add(1, std::memory_order_relaxed);
  runtime.parallel(region_body, &r, static_cast<unsigned>(wanted), 0);
  return true;
}

}  // namespace rnnkit::detail
