// The thread count shared by every parallel region of the core (see threads.h).
#include "rnnkit/threads.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#ifdef __linux__
#include <sched.h>
#endif

namespace rnnkit {

namespace {
// 0 = not set by the user yet: the default below.
std::atomic<int> requested_threads{0};

// The cores this process may run on (its affinity mask where the system says).
int usable_cores() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// OMP_NUM_THREADS (its first number, as OpenMP reads it) when set to a positive number,
// else the usable cores. Read once: the environment of the first call decides.
int default_threads() {
  static const int n = [] {
    const char* env = std::getenv("OMP_NUM_THREADS");
    if (env != nullptr) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end != env && v >= 1) return static_cast<int>(std::min<long>(v, kMaxThreads));
    }
    return usable_cores();
  }();
  return n;
}
}  // namespace

bool have_openmp() { return false; }

bool have_threads() {
#ifdef RNNKIT_HAVE_THREADS
  return true;
#else
  return false;
#endif
}

int get_num_threads() {
#ifdef RNNKIT_HAVE_THREADS
  const int n = requested_threads.load();
  return std::min(n > 0 ? n : default_threads(), kMaxThreads);
#else
  return 1;
#endif
}

void set_num_threads(int n) { requested_threads.store(std::clamp(n, 1, kMaxThreads)); }

}  // namespace rnnkit
