// Test and benchmark hooks for the kernel layer on rnnkit._core (underscore names are
// not public API): run a GEMM or an activation on NumPy arrays through a chosen ISA,
// report the CPU, time kernels in a C++ loop (Python call overhead would swamp the
// microsecond-sized per-step products).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "rnnkit/threads.h"

namespace py = pybind11;
namespace k = rnnkit::kernels;
using i64 = std::int64_t;

namespace {

// A shape as Python prints it: (3, 4), (5,).
std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A 2-D matrix view of a NumPy array: rows may be strided (ld >= cols), elements within a
// row must be contiguous.
struct Mat {
  i64 rows, cols, ld;
};
// Element loads through a misaligned T* are undefined behaviour (UBSan reports them).
void check_aligned(const py::array& a, const char* name) {
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    throw py::value_error(std::string(name) + " must be aligned to its item size");
  }
}

Mat as_matrix(const py::array& a, const char* name, py::ssize_t itemsize) {
  if (a.ndim() != 2) {
    throw py::value_error(std::string(name) + " must be 2-D, got shape " + shape_str(a));
  }
  check_aligned(a, name);
  const i64 rows = a.shape(0), cols = a.shape(1);
  if (rows == 0 || cols == 0) return Mat{rows, cols, std::max<i64>(cols, 1)};  // strides 0
  if (cols > 1 && a.strides(1) != itemsize) {
    throw py::value_error(std::string(name) + " must have contiguous rows (strides[1] == " +
                          std::to_string(itemsize) + "), got strides[1] = " +
                          std::to_string(a.strides(1)));
  }
  i64 ld = cols;
  if (rows > 1) {
    if (a.strides(0) % itemsize != 0 || a.strides(0) / itemsize < cols) {
      throw py::value_error(std::string(name) + " row stride must be a multiple of the item size "
                            "and at least one row, got strides " +
                            std::to_string(a.strides(0)) + ", " +
                            std::to_string(a.strides(1)));
    }
    ld = a.strides(0) / itemsize;
  }
  return Mat{rows, cols, std::max<i64>(ld, 1)};
}

void check_dtypes(const py::array& A, const py::array& B, const py::array& C) {
  const bool f32 = A.dtype().is(py::dtype::of<float>());
  const bool f64 = A.dtype().is(py::dtype::of<double>());
  if (!f32 && !f64) {
    throw py::type_error("A must be float32 or float64, got " + std::string(py::str(A.dtype())));
  }
  if (!B.dtype().is(A.dtype()) || !C.dtype().is(A.dtype())) {
    throw py::type_error("A, B and C must share one dtype, got " + std::string(py::str(A.dtype())) +
                         ", " + std::string(py::str(B.dtype())) + ", " +
                         std::string(py::str(C.dtype())));
  }
  if (!C.writeable()) throw py::value_error("C must be writeable");
}

// Checks A, B and C (check_dtypes), then calls run(T{}) with T = A's element type.
template <class Run>
void with_gemm_dtype(const py::array& A, const py::array& B, const py::array& C, const Run& run) {
  check_dtypes(A, B, C);
  if (A.dtype().is(py::dtype::of<float>())) {
    run(float{});
  } else {
    run(double{});
  }
}

template <typename T>
void run_gemm(const std::string& kind, const py::array& A, const py::array& B, py::array& C,
              bool accumulate) {
  const py::ssize_t it = sizeof(T);
  const Mat a = as_matrix(A, "A", it), b = as_matrix(B, "B", it), c = as_matrix(C, "C", it);
  i64 M, N, K;
  if (kind == "nt") {
    M = a.rows, K = a.cols, N = b.rows;
    if (b.cols != K) throw py::value_error("nt: B must be (N, K) with K = A.shape[1]");
  } else if (kind == "nn") {
    M = a.rows, K = a.cols, N = b.cols;
    if (b.rows != K) throw py::value_error("nn: B must be (K, N) with K = A.shape[1]");
  } else if (kind == "tn") {
    K = a.rows, M = a.cols, N = b.cols;
    if (b.rows != K) throw py::value_error("tn: B must be (K, N) with K = A.shape[0]");
  } else {
    throw py::value_error("kind must be 'nt', 'nn' or 'tn', got '" + kind + "'");
  }
  if (c.rows != M || c.cols != N) {
    throw py::value_error(kind + ": C must be (" + std::to_string(M) + ", " + std::to_string(N) +
                          "), got " + shape_str(C));
  }
  const T* pa = static_cast<const T*>(A.data());
  const T* pb = static_cast<const T*>(B.data());
  T* pc = static_cast<T*>(C.mutable_data());
  py::gil_scoped_release nogil;
  if (kind == "nt") k::gemm_nt<T>(M, N, K, pa, a.ld, pb, b.ld, pc, c.ld, accumulate);
  if (kind == "nn") k::gemm_nn<T>(M, N, K, pa, a.ld, pb, b.ld, pc, c.ld, accumulate);
  if (kind == "tn") k::gemm_tn<T>(M, N, K, pa, a.ld, pb, b.ld, pc, c.ld, accumulate);
}

template <typename T>
void run_gemm_packed(const std::string& kind, const py::array& A, const py::array& B,
                     py::array& C, bool accumulate, i64 n_begin, i64 n_end) {
  const py::ssize_t it = sizeof(T);
  const Mat a = as_matrix(A, "A", it), b = as_matrix(B, "B", it), c = as_matrix(C, "C", it);
  const i64 M = a.rows, K = a.cols;
  const i64 N = kind == "nt" ? b.rows : b.cols;
  if (kind != "nt" && kind != "nn") {
    throw py::value_error("kind must be 'nt' or 'nn', got '" + kind + "'");
  }
  if ((kind == "nt" ? b.cols : b.rows) != K) {
    throw py::value_error(kind + ": B does not match A's K = " + std::to_string(K) + ", got " +
                          shape_str(B));
  }
  if (c.rows != M || c.cols != N) {
    throw py::value_error(kind + ": C must be (" + std::to_string(M) + ", " + std::to_string(N) +
                          "), got " + shape_str(C));
  }
  if (n_end < 0) n_end = N;
  if (n_begin < 0 || n_begin > n_end || n_end > N) {
    throw py::value_error("need 0 <= n_begin <= n_end <= " + std::to_string(N) + ", got " +
                          std::to_string(n_begin) + ", " + std::to_string(n_end));
  }
  const T* pa = static_cast<const T*>(A.data());
  const T* pb = static_cast<const T*>(B.data());
  T* pc = static_cast<T*>(C.mutable_data());
  py::gil_scoped_release nogil;
  k::PackedB<T> packed;
  if (kind == "nt") packed.pack_nt(N, K, pb, b.ld);
  else packed.pack_nn(K, N, pb, b.ld);
  k::gemm_packed_cols<T>(M, n_begin, n_end, pa, a.ld, packed, pc, c.ld, accumulate);
}

// C = A1 B1 + A2 B2 on columns [n_begin, n_end) (B1 (K1, N), B2 (K2, N), packed here),
// with gemm_packed_pair_cols.
template <typename T>
void run_gemm_packed_pair(const py::array& A1, const py::array& B1, const py::array& A2,
                          const py::array& B2, py::array& C, i64 n_begin, i64 n_end) {
  const py::ssize_t it = sizeof(T);
  const Mat a1 = as_matrix(A1, "A1", it), b1 = as_matrix(B1, "B1", it);
  const Mat a2 = as_matrix(A2, "A2", it), b2 = as_matrix(B2, "B2", it);
  const Mat c = as_matrix(C, "C", it);
  if (b1.rows != a1.cols || b2.rows != a2.cols || a2.rows != a1.rows || b2.cols != b1.cols) {
    throw py::value_error("need A1 (M, K1), B1 (K1, N), A2 (M, K2), B2 (K2, N), got " +
                          shape_str(A1) + ", " + shape_str(B1) + ", " + shape_str(A2) + ", " +
                          shape_str(B2));
  }
  if (c.rows != a1.rows || c.cols != b1.cols) {
    throw py::value_error("C must be (" + std::to_string(a1.rows) + ", " +
                          std::to_string(b1.cols) + "), got " + shape_str(C));
  }
  if (n_end < 0) n_end = c.cols;
  if (n_begin < 0 || n_begin > n_end || n_end > c.cols) {
    throw py::value_error("need 0 <= n_begin <= n_end <= " + std::to_string(c.cols) + ", got " +
                          std::to_string(n_begin) + ", " + std::to_string(n_end));
  }
  py::gil_scoped_release nogil;
  k::PackedB<T> p1, p2;
  p1.pack_nn(b1.rows, b1.cols, static_cast<const T*>(B1.data()), b1.ld);
  p2.pack_nn(b2.rows, b2.cols, static_cast<const T*>(B2.data()), b2.ld);
  k::gemm_packed_pair_cols<T>(a1.rows, n_begin, n_end, static_cast<const T*>(A1.data()), a1.ld,
                              p1, static_cast<const T*>(A2.data()), a2.ld, p2,
                              static_cast<T*>(C.mutable_data()), c.ld);
}

template <typename T>
py::array_t<T> run_activation(const std::string& which, const py::array_t<T>& x) {
  py::array_t<T> y(x.request().shape);
  const i64 n = x.size();
  const T* px = x.data();
  T* py_ = y.mutable_data();
  py::gil_scoped_release nogil;
  if (which == "sigmoid") k::sigmoid<T>(n, px, py_);
  else k::tanh<T>(n, px, py_);
  return y;
}

py::array activation(const std::string& which, const py::array& x) {
  if (which != "sigmoid" && which != "tanh") {
    throw py::value_error("activation must be 'sigmoid' or 'tanh', got '" + which + "'");
  }
  if (!(x.flags() & py::array::c_style)) throw py::value_error("x must be C-contiguous");
  check_aligned(x, "x");
  if (x.dtype().is(py::dtype::of<float>())) return run_activation<float>(which, x);
  if (x.dtype().is(py::dtype::of<double>())) return run_activation<double>(which, x);
  throw py::type_error("x must be float32 or float64, got " + std::string(py::str(x.dtype())));
}

// Median seconds per call of one GEMM shape, timed in batches of calls long enough for
// the clock (>= ~2 ms), after a warm-up. kind: nt | nn | tn | packed (A x PackedB(W^T)).
template <typename T>
py::dict bench_gemm(const std::string& kind, i64 M, i64 N, i64 K, int repeats) {
  if (M < 1 || N < 1 || K < 1) throw py::value_error("M, N, K must be >= 1");
  if (repeats < 1) throw py::value_error("repeats must be >= 1");
  // The buffers' element counts, checked: an overflowed product would size them smaller
  // than the loops index.
  i64 mk = 0, nk = 0, mn = 0;
  if (__builtin_mul_overflow(M, K, &mk) || __builtin_mul_overflow(N, K, &nk) ||
      __builtin_mul_overflow(M, N, &mn)) {
    throw py::value_error("M*K, N*K and M*N must fit in 64 bits, got M = " + std::to_string(M) +
                          ", N = " + std::to_string(N) + ", K = " + std::to_string(K));
  }
  if (kind != "nt" && kind != "nn" && kind != "tn" && kind != "packed") {
    throw py::value_error("kind must be nt, nn, tn or packed, got '" + kind + "'");
  }
  std::mt19937 gen(0);
  std::uniform_real_distribution<T> dist(-1, 1);
  std::vector<T> A(static_cast<size_t>(mk)), B(static_cast<size_t>(nk)),
      C(static_cast<size_t>(mn));
  for (T& v : A) v = dist(gen);
  for (T& v : B) v = dist(gen);
  std::vector<double> per_call, cpu_per_call;
  // CPU time of the whole process (all threads): unlike the wall clock, it does not grow
  // while other processes hold the cores, which makes it the steadier single-thread
  // measure on a shared machine.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  {
    py::gil_scoped_release nogil;
    k::PackedB<T> packed;
    if (kind == "packed") packed.pack_nt(N, K, B.data(), K);
    auto call = [&] {
      if (kind == "nt") k::gemm_nt<T>(M, N, K, A.data(), K, B.data(), K, C.data(), N, false);
      if (kind == "nn") k::gemm_nn<T>(M, N, K, A.data(), K, B.data(), N, C.data(), N, false);
      if (kind == "tn") k::gemm_tn<T>(M, N, K, A.data(), M, B.data(), N, C.data(), N, false);
      if (kind == "packed") k::gemm_packed<T>(M, A.data(), K, packed, C.data(), N, false);
    };
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    i64 calls = 0;
    while (calls < 3 || clock::now() - t0 < std::chrono::milliseconds(20)) {
      call();
      ++calls;
    }
    const double warm = std::chrono::duration<double>(clock::now() - t0).count() / calls;
    const i64 batch = std::max<i64>(1, static_cast<i64>(2e-3 / warm));
    for (int r = 0; r < repeats; ++r) {
      const double c0 = cpu_now();
      t0 = clock::now();
      for (i64 b = 0; b < batch; ++b) call();
      per_call.push_back(std::chrono::duration<double>(clock::now() - t0).count() / batch);
      cpu_per_call.push_back((cpu_now() - c0) / batch);
    }
  }
  std::vector<double> sorted = per_call;
  std::sort(sorted.begin(), sorted.end());
  py::dict out;
  out["median_s"] = sorted[sorted.size() / 2];
  out["min_s"] = sorted.front();
  std::sort(cpu_per_call.begin(), cpu_per_call.end());
  out["cpu_min_s"] = cpu_per_call.front();
  out["cpu_median_s"] = cpu_per_call[cpu_per_call.size() / 2];
  out["flops"] = 2.0 * double(M) * double(N) * double(K);
  out["isa"] = k::isa_name();
  out["threads"] = rnnkit::get_num_threads();
  return out;
}

}  // namespace

namespace rnnkit::bindings {

void bind_kernels(py::module_& m) {
  m.def(
      "_gemm",
      [](const std::string& kind, const py::array& A, const py::array& B, py::array C,
         bool accumulate) {
        with_gemm_dtype(A, B, C, [&](auto t) {
          run_gemm<decltype(t)>(kind, A, B, C, accumulate);
        });
      },
      py::arg("kind"), py::arg("A"), py::arg("B"), py::arg("C"), py::arg("accumulate"),
      "Test hook: C (written in place) = [C +] op(A) op(B) with kind 'nt' (A (M,K), B (N,K)), "
      "'nn' (A (M,K), B (K,N)) or 'tn' (A (K,M), B (K,N)); rows may be strided.");
  m.def(
      "_gemm_packed",
      [](const std::string& kind, const py::array& A, const py::array& B, py::array C,
         bool accumulate, i64 n_begin, i64 n_end) {
        with_gemm_dtype(A, B, C, [&](auto t) {
          run_gemm_packed<decltype(t)>(kind, A, B, C, accumulate, n_begin, n_end);
        });
      },
      py::arg("kind"), py::arg("A"), py::arg("B"), py::arg("C"), py::arg("accumulate"),
      py::arg("n_begin") = 0, py::arg("n_end") = -1,
      "Test hook: pack B ('nt': (N,K), 'nn': (K,N)) into a PackedB, then compute columns "
      "[n_begin, n_end) of C = [C +] A op(B) with gemm_packed_cols.");
  m.def(
      "_gemm_packed_pair",
      [](const py::array& A1, const py::array& B1, const py::array& A2, const py::array& B2,
         py::array C, i64 n_begin, i64 n_end) {
        with_gemm_dtype(A1, B1, C, [&](auto t) {
          check_dtypes(A2, B2, C);
          run_gemm_packed_pair<decltype(t)>(A1, B1, A2, B2, C, n_begin, n_end);
        });
      },
      py::arg("A1"), py::arg("B1"), py::arg("A2"), py::arg("B2"), py::arg("C"),
      py::arg("n_begin") = 0, py::arg("n_end") = -1,
      "Test hook: columns [n_begin, n_end) of C = A1 B1 + A2 B2 (B1 (K1,N), B2 (K2,N), "
      "packed first) with gemm_packed_pair_cols.");
  m.def("_activation", &activation, py::arg("which"), py::arg("x"),
        "Test hook: 'sigmoid' or 'tanh' of a C-contiguous float32/float64 array (new array).");
  m.def(
      "_set_isa",
      [](const std::string& name) {
        try {
          k::set_isa(name);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("name"), "Select the kernel ISA: 'plain', 'avx2', 'avx512' or 'auto'.");
  m.def("_isa_name", [] { return std::string(k::isa_name()); }, "The kernel ISA in use.");
  m.def(
      "cpu_info",
      [] {
        const k::CpuFeatures f = k::cpu_features();
        py::dict d;
        d["isa"] = k::isa_name();
        d["best_isa"] = k::isa_name(k::best_isa());
        d["compiled_isas"] = k::compiled_isas();
        d["available_isas"] = k::available_isas();
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["avx512f"] = f.avx512f;
        d["openmp"] = rnnkit::have_openmp();
        d["threads"] = rnnkit::get_num_threads();
        return d;
      },
      "The kernel ISA in use, the best available, those compiled and those this CPU runs, "
      "and the CPU's flags.");
  m.def(
      "_fma_peak_gflops",
      [](double seconds) {
        py::gil_scoped_release nogil;
        return k::fma_peak_gflops(seconds);
      },
      py::arg("seconds") = 0.2,
      "Benchmark hook: this thread's float32 FMA peak in GFLOP/s (0 without AVX2 kernels).");
  m.def(
      "_bench_gemm",
      [](const std::string& kind, i64 M, i64 N, i64 K, const std::string& dtype, int repeats) {
        if (dtype == "float32") return bench_gemm<float>(kind, M, N, K, repeats);
        if (dtype == "float64") return bench_gemm<double>(kind, M, N, K, repeats);
        throw py::value_error("dtype must be 'float32' or 'float64', got '" + dtype + "'");
      },
      py::arg("kind"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("dtype") = "float32",
      py::arg("repeats") = 7,
      "Benchmark hook: median seconds per call of a GEMM timed in a C++ loop.");
}

}  // namespace rnnkit::bindings
