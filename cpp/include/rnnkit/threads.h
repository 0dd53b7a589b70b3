// Thread count shared by every parallel region of the core.
//
// The count defaults to OpenMP's (OMP_NUM_THREADS, or the number of cores). Without
// OpenMP everything runs on one thread and set_num_threads only records the request.
#pragma once
#include <cstdint>

namespace rnnkit {

// True when the core was compiled with OpenMP.
bool have_openmp();

// Most threads a parallel region ever uses: far above any machine's core count. A larger
// request (a typo, or OMP_NUM_THREADS=100000) would make OpenMP try to start that many
// threads, and libgomp then dies of stack or memory exhaustion instead of reporting it.
constexpr int kMaxThreads = 1024;

// Number of threads parallel regions use; always in 1..kMaxThreads.
int get_num_threads();

// Set the thread count; n must be in 1..kMaxThreads (the bindings check this; other
// values are clamped).
void set_num_threads(int n);

}  // namespace rnnkit
