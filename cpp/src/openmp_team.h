// Teams on the threads of an OpenMP runtime that is already in the process (torch's
// libgomp), instead of the core's own workers; internal, not installed.
//
// Why: torch's OpenMP workers keep spinning after each torch call on the cores that the
// core's own workers need, so that a team of the core's own workers stalls at its barriers
// when torch and rnnkit alternate. Run on those same spinning workers, a team starts at
// once and no third thread wants the core.
//
// The core does not link OpenMP: the caller hands over the addresses of the runtime's
// entries (GOMP_parallel, the ABI entry GCC emits for `#pragma omp parallel`, and
// omp_get_thread_num / omp_get_num_threads / omp_get_level of the same library). Only the
// thread that switched the runtime on uses it (libgomp keeps one pool of workers per
// thread that opens regions, so more callers would mean more spinning workers); other
// threads keep the core's own pool, and the pool's lock still lets one team run at a time.
#pragma once
#include <cstdint>

#include "thread_pool.h"

namespace rnnkit::detail {

// The entries of an OpenMP runtime, by address.
struct OpenMpRuntime {
  void (*parallel)(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);
  int (*thread_num)();
  int (*num_threads)();
  int (*level)();
};

// Parallel regions opened on the calling thread run on `runtime`'s threads from now on
// (every entry must be non-null). A child of fork() goes back to the core's own pool.
void use_openmp_runtime(const OpenMpRuntime& runtime);
// Back to the core's own pool for every thread.
void stop_openmp_runtime();
// True when the calling thread's regions run on an OpenMP runtime.
bool openmp_runtime_in_use();
// Regions that ran through the runtime's GOMP_parallel since the module loaded (for tests).
std::int64_t openmp_regions_count();

// The least work (multiply-adds) of a region that runs on the runtime's threads; smaller
// ones stay on the core's own pool. The runtime's region ends when every thread it woke has
// arrived, a late one included (the core's own pool never waits for a worker that missed
// the team), and its idle threads spin long after the region (torch's libgomp by default),
// which on a machine with more runnable threads than cores takes the core from the caller:
// a long region (a forward's time loop at T = 1000) pays that once, a training backward's
// hundred-odd small regions (chunks of steps, GEMM splits) each time.
constexpr std::int64_t kMinOpenMpWork = std::int64_t(1) << 27;

// For tests: sets the least work of a region run on the runtime (kMinOpenMpWork until set);
// returns the previous one.
std::int64_t set_openmp_min_work(std::int64_t work);

// Runs job as run_job does (the caller holds the pool, so no other team runs) on the
// OpenMP runtime's threads and returns true, or returns false without running it when the
// calling thread does not use a runtime or the job is smaller than the least work. Runs it
// alone inside an OpenMP region.
bool run_on_openmp(int wanted, std::int64_t work, const JobRef& job);

}  // namespace rnnkit::detail
