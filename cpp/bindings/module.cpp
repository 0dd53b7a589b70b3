// rnnkit._core: the only translation unit family that includes pybind11.
// Bindings are thin: check arguments, allocate results, release the GIL, call the core.
#include <pybind11/pybind11.h>

#include <chrono>

#include "rnnkit/memory_pool.h"
#include "rnnkit/threads.h"

#include "../src/openmp_team.h"  // internal to the core: declared there, not installed

namespace py = pybind11;

void bind_stack(py::module_& m);  // bind_stack.cpp
namespace rnnkit::bindings {
void bind_kernels(py::module_& m);  // bind_kernels.cpp
void bind_embeddings(py::module_& m);  // bind_embeddings.cpp
}  // namespace rnnkit::bindings
namespace rnnkit::detail {
std::int64_t teams_formed_count();  // team.cpp (team.h is internal to the core)
void set_wait_for_full_teams(bool on);  // thread_pool.cpp
std::int64_t set_join_window(std::int64_t microseconds);  // thread_pool.cpp
std::int64_t teams_short_count();  // thread_pool.cpp
std::chrono::microseconds join_window(std::int64_t work);  // thread_pool.cpp
void record_team(int members, int wanted);  // thread_pool.cpp
std::int64_t teams_shrunk_count();  // team.cpp
std::int64_t set_forced_shrink_step(std::int64_t step);  // team.cpp
}  // namespace rnnkit::detail

#ifndef RNNKIT_VERSION
#define RNNKIT_VERSION "0.0.0"
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit native core";
  m.attr("__version__") = RNNKIT_VERSION;
  m.def("have_openmp", &rnnkit::have_openmp,
        "Always False: the core runs its own thread pool, not OpenMP.");
  m.def("have_threads", &rnnkit::have_threads,
        "True when the core was built with its thread pool (more than one thread possible).");
  m.def("get_num_threads", &rnnkit::get_num_threads, "Threads used by native compute.");
  m.def(
      "set_num_threads",
      [](std::int64_t n) {
        if (n < 1 || n > rnnkit::kMaxThreads) {
          throw py::value_error("set_num_threads: n must be in 1.." +
                                std::to_string(rnnkit::kMaxThreads) + ", got " +
                                std::to_string(n));
        }
        rnnkit::set_num_threads(static_cast<int>(n));
      },
      py::arg("n"),
      "Set the number of threads used by native compute (1 <= n <= MAX_THREADS).");
  m.attr("MAX_THREADS") = rnnkit::kMaxThreads;
  m.def("pool_cached_bytes", &rnnkit::pool_cached_bytes,
        "Bytes of freed large buffers the core keeps for reuse.");
  m.def("pool_limit_bytes", &rnnkit::pool_limit_bytes, "Most bytes the pool keeps cached.");
  m.def(
      "set_pool_limit_bytes",
      [](std::int64_t n) {
        if (n < 0) {
          throw py::value_error("set_memory_pool_limit: nbytes must be >= 0, got " +
                                std::to_string(n));
        }
        rnnkit::set_pool_limit_bytes(n);
      },
      py::arg("nbytes"), "Set the most bytes the pool keeps cached (0: none).");
  m.def("pool_release_cached", &rnnkit::pool_release_cached,
        "Free every cached block; returns the bytes freed.");
  m.def("_teams_formed", &rnnkit::detail::teams_formed_count,
        "Thread teams that ran a time loop with more than one thread since import (for "
        "tests).");
  m.def("_set_wait_for_full_teams", &rnnkit::detail::set_wait_for_full_teams, py::arg("on"),
        "For tests: callers wait for every thread they ask for instead of starting without "
        "workers that are slow to join (the bits are the same either way).");
  m.def("_set_join_window", &rnnkit::detail::set_join_window, py::arg("microseconds"),
        "For tests: the longest a caller waits for workers to join its team; returns the "
        "previous window.");
  m.def(
      "_join_window",
      [](std::int64_t work) { return rnnkit::detail::join_window(work).count(); },
      py::arg("work"),
      "For tests: the microseconds the next call of `work` multiply-adds would wait for "
      "workers to join.");
  m.def("_record_team", &rnnkit::detail::record_team, py::arg("members"), py::arg("wanted"),
        "For tests (no team running): records a team of `members` threads that asked for "
        "`wanted`, as a call does.");
  m.def("_teams_short", &rnnkit::detail::teams_short_count,
        "Teams that started with fewer threads than they asked for because a worker did not "
        "join in time (for tests).");
  m.def("_teams_shrunk", &rnnkit::detail::teams_shrunk_count,
        "Time loop teams that shrank to one thread because their threads did not run in "
        "parallel, or because a test forced it (for tests).");
  m.def("_set_forced_shrink_step", &rnnkit::detail::set_forced_shrink_step, py::arg("step"),
        "For tests: every team asks to shrink to one thread at its step barrier number "
        "`step` (counted from 0 in each forward loop and backward chunk; the first barrier "
        "that allows it from there), never when step < 0; returns the previous setting.");
  m.def(
      "_use_openmp_runtime",
      [](std::uintptr_t parallel, std::uintptr_t thread_num, std::uintptr_t num_threads,
         std::uintptr_t level) {
        if (parallel == 0 || thread_num == 0 || num_threads == 0 || level == 0) {
          throw py::value_error(
              "_use_openmp_runtime: every address must be non-zero, got GOMP_parallel=" +
              std::to_string(parallel) + " omp_get_thread_num=" + std::to_string(thread_num) +
              " omp_get_num_threads=" + std::to_string(num_threads) +
              " omp_get_level=" + std::to_string(level));
        }
        namespace d = rnnkit::detail;
        d::use_openmp_runtime(d::OpenMpRuntime{
            reinterpret_cast<decltype(d::OpenMpRuntime::parallel)>(parallel),
            reinterpret_cast<decltype(d::OpenMpRuntime::thread_num)>(thread_num),
            reinterpret_cast<decltype(d::OpenMpRuntime::num_threads)>(num_threads),
            reinterpret_cast<decltype(d::OpenMpRuntime::level)>(level)});
      },
      py::arg("parallel"), py::arg("thread_num"), py::arg("num_threads"), py::arg("level"),
      "Internal (rnnkit.torch): the calling thread's parallel regions run on the OpenMP "
      "runtime whose GOMP_parallel, omp_get_thread_num, omp_get_num_threads and "
      "omp_get_level are at these addresses. Wrong addresses crash the process.");
  m.def("_stop_openmp_runtime", &rnnkit::detail::stop_openmp_runtime,
        "Parallel regions run on the core's own thread pool again (every thread).");
  m.def("_openmp_runtime_in_use", &rnnkit::detail::openmp_runtime_in_use,
        "True when the calling thread's parallel regions run on an OpenMP runtime's threads.");
  m.def("_openmp_regions", &rnnkit::detail::openmp_regions_count,
        "Parallel regions run through the OpenMP runtime's GOMP_parallel since import (for "
        "tests).");
  m.def("_set_openmp_min_work", &rnnkit::detail::set_openmp_min_work, py::arg("work"),
        "For tests: the least multiply-adds of a region run on the OpenMP runtime; returns "
        "the previous value.");
  bind_stack(m);
  rnnkit::bindings::bind_kernels(m);
  rnnkit::bindings::bind_embeddings(m);
}
