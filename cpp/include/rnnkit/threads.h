// Thread count shared by every parallel region of the core.
//
// The count defaults to OpenMP's (OMP_NUM_THREADS, or the number of cores). Without
// OpenMP everything runs on one thread and set_num_threads only records the request.
#pragma once
#include <cstdint>

namespace rnnkit {

// True when the core was compiled with OpenMP.
bool have_openmp();

// Number of threads parallel regions use; always >= 1.
int get_num_threads();

// Set the thread count; n must be >= 1 (the bindings check this).
void set_num_threads(int n);

}  // namespace rnnkit
