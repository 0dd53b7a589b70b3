// Run-time ISA detection and override (see isa.h).
#include "rnnkit/isa.h"

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "kernels_isa.h"

namespace rnnkit::kernels {

namespace {
// -1 = not chosen yet: resolve to best_isa() on first use.
std::atomic<int> selected{-1};
}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XGETBV).
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
#endif
  return f;
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> names{"plain"};
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  names.emplace_back("avx2");
#endif
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  names.emplace_back("avx512");
#endif
  return names;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (Isa isa : {Isa::plain, Isa::avx2, Isa::avx512}) {
    if (isa_available(isa)) names.emplace_back(isa_name(isa));
  }
  return names;
}

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::plain:
      return true;
    case Isa::avx2: {
#ifdef RNNKIT_HAVE_AVX2_KERNELS
      const CpuFeatures f = cpu_features();
      return f.avx2 && f.fma;
#else
      return false;
#endif
    }
    case Isa::avx512: {
#ifdef RNNKIT_HAVE_AVX512_KERNELS
      const CpuFeatures f = cpu_features();
      return f.avx2 && f.fma && f.avx512f;
#else
      return false;
#endif
    }
  }
  return false;
}

Isa best_isa() {
  static const Isa best = isa_available(Isa::avx512) ? Isa::avx512
                          : isa_available(Isa::avx2) ? Isa::avx2
                                                     : Isa::plain;
  return best;
}

Isa current_isa() {
  int s = selected.load(std::memory_order_relaxed);
  if (s < 0) {
    s = static_cast<int>(best_isa());
    selected.store(s, std::memory_order_relaxed);
  }
  return static_cast<Isa>(s);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::plain:
      return "plain";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

const char* isa_name() { return isa_name(current_isa()); }

void set_isa(const std::string& name) {
  Isa isa;
  if (name == "auto") {
    isa = best_isa();
  } else if (name == "plain") {
    isa = Isa::plain;
  } else if (name == "avx2") {
    isa = Isa::avx2;
  } else if (name == "avx512") {
    isa = Isa::avx512;
  } else {
    throw std::invalid_argument("set_isa: unknown ISA '" + name +
                                "'; expected one of 'plain', 'avx2', 'avx512', 'auto'");
  }
  if (!isa_available(isa)) {
    throw std::invalid_argument(std::string("set_isa: ISA '") + name +
                                "' is not available (this build or this CPU lacks it)");
  }
  selected.store(static_cast<int>(isa), std::memory_order_relaxed);
}

double fma_peak_gflops(double seconds) {
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (!isa_available(Isa::avx2)) return 0.0;
  using clock = std::chrono::steady_clock;
  const std::int64_t iters = 1 << 16;  // 12.6 MFLOP, a few milliseconds
  double best = 0.0;
  volatile float sink = 0.0f;
  const auto start = clock::now();
  do {
    const auto t0 = clock::now();
    sink = sink + detail::avx2::fma_peak_loop(iters, 1.0f);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    const double gflops = 192.0 * static_cast<double>(iters) / dt * 1e-9;
    if (gflops > best) best = gflops;
  } while (std::chrono::duration<double>(clock::now() - start).count() < seconds);
  return best;
#else
  (void)seconds;
  return 0.0;
#endif
}

}  // namespace rnnkit::kernels
