// The thread count shared by every parallel region of the core (see threads.h).
#include "rnnkit/threads.h"

#include <algorithm>
#include <atomic>

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

namespace rnnkit {

namespace {
// 0 = not set by the user yet: follow OpenMP's default.
std::atomic<int> requested_threads{0};
}  // namespace

bool have_openmp() {
#ifdef RNNKIT_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

int get_num_threads() {
#ifdef RNNKIT_HAVE_OPENMP
  const int n = requested_threads.load();
  return std::min(n > 0 ? n : omp_get_max_threads(), kMaxThreads);
#else
  return 1;
#endif
}

void set_num_threads(int n) { requested_threads.store(std::clamp(n, 1, kMaxThreads)); }

}  // namespace rnnkit
