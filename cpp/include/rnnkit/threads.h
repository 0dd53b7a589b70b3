// Thread count shared by every parallel region of the core.
//
// The core runs its parallel regions on its own pool of worker threads (no OpenMP). The
// count defaults to OMP_NUM_THREADS when set (the variable users already set to pin
// every pool of a process), else the cores this process may use. Built without threads
// (CMake option RNNKIT_THREADS=OFF) everything runs on one thread and set_num_threads
// only records the request.
#pragma once
#include <cstdint>

namespace rnnkit {

// Always false: the core no longer uses OpenMP (kept so that callers can ask).
bool have_openmp();

// True when the core was built with its thread pool (more than one thread possible).
bool have_threads();

// Most threads a parallel region ever uses: far above any machine's core count, so that
// a typo (OMP_NUM_THREADS=100000) cannot start thousands of threads.
constexpr int kMaxThreads = 1024;

// Number of threads parallel regions use; always in 1..kMaxThreads.
int get_num_threads();

// Set the thread count; n must be in 1..kMaxThreads (the bindings check this; other
// values are clamped).
void set_num_threads(int n);

}  // namespace rnnkit
