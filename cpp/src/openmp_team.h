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

// Runs job as run_job does (the caller holds the pool, so no other team runs) on the
// OpenMP runtime's threads and returns true, or returns false without running it when the
// calling thread does not use a runtime. Runs it alone inside an OpenMP region.
bool run_on_openmp(int wanted, std::int64_t work, const JobRef& job);

}  // namespace rnnkit::detail
