// Which instruction set the kernels (gemm.h, activations.h) run with.
//
// The build compiles every kernel family it can for the target architecture (on x86-64
// with GCC or Clang: the portable loops, AVX2/FMA and AVX-512F micro-kernels, each in
// their own translation units); at run time the best one this CPU supports is chosen
// from cpuid. set_isa overrides the choice, for tests and for comparing paths.
//
// Results depend on the ISA family (the plain loops round a*b then add, the vector
// kernels fuse them), but never on the thread count, the blocking or the position in an
// array; "avx2" and "avx512" give the same bits (the same FMA chain per element, the
// same elementwise code).
#pragma once
#include <string>
#include <vector>

namespace rnnkit::kernels {

enum class Isa : int {
  plain = 0,  // portable C++ (the reference loops of gemm_plain.cpp, libm activations)
  avx2 = 1,   // AVX2 + FMA micro-kernels (x86-64)
  avx512 = 2, // AVX-512F GEMM micro-tiles, activations and fused cells; packing
              // runs the AVX2 code, which every AVX-512F CPU can run
};

// True when packing runs its AVX2 code and the vector activations are used (ISA avx2 or
// avx512; avx512 then runs its own activations and forward cells, with the same bits).
inline bool uses_avx2(Isa isa) { return isa == Isa::avx2 || isa == Isa::avx512; }

// CPU features as reported by cpuid (false on other architectures).
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
};
CpuFeatures cpu_features();

// ISAs this build has kernels for, best last (always starts with "plain").
std::vector<std::string> compiled_isas();

// Those of compiled_isas() that this CPU can run, in the same order.
std::vector<std::string> available_isas();

// True when this build has kernels for `isa` and this CPU can run them.
bool isa_available(Isa isa);

// The best available ISA (what "auto" selects).
Isa best_isa();

// The ISA kernels run with now, and its name ("plain", "avx2" or "avx512").
Isa current_isa();
const char* isa_name();
const char* isa_name(Isa isa);

// Select the ISA by name: "plain", "avx2", "avx512" or "auto" (the best available).
// Throws std::invalid_argument for an unknown name and for an ISA this build or this CPU
// lacks. Affects calls that start after it returns; thread-safe.
void set_isa(const std::string& name);

// Benchmark helper: the calling thread's float32 FMA throughput in GFLOP/s, from a
// register-only loop of 256-bit FMAs run for about `seconds`: the peak that GEMM speeds
// are compared with. 0 when the AVX2 kernels are not available.
double fma_peak_gflops(double seconds);

}  // namespace rnnkit::kernels
