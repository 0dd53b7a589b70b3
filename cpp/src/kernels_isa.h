// Internal: the per-ISA kernels behind gemm.h and activations.h.
//
// Each ISA's kernels live in their own translation unit compiled with that ISA's flags
// (gemm_avx2.cpp, activations_avx2.cpp: -mavx2 -mfma; gemm_avx512.cpp,
// activations_avx512.cpp: -mavx512f too). They are only called after the run-time check
// in isa.cpp. Those units include nothing but this header, <cstdint>, the intrinsics
// header and their ISA's vector_math_*.h with the templates it instantiates
// (vector_math.h, activations_vec.h), whose every function depends on the ISA's
// operations struct: no inline function or template instance is shared between units
// compiled with different flags (the linker keeps one copy for everyone, which could
// hold instructions that the CPU of some caller lacks).
#pragma once
#include <cstdint>

namespace rnnkit::kernels::detail {

using i64 = std::int64_t;

// One product's operands of a micro-tile (the arguments kc, a, a_rs, a_cs, b,
// b_panel_stride of tile below).
template <typename T>
struct TileOperand {
  i64 kc;
  const T* a;
  i64 ars, acs;
  const T* b;
  i64 bps;
};

// Micro-tile (avx2::tile, avx512::tile): for i < mr, p < np, j < nr (nr = 16 floats /
// 8 doubles):
//   s = load_c ? c[i*ldc + p*nr + j] : 0
//   for k = 0..kc-1:  s = fma(a[i*a_rs + k*a_cs], b[p*b_panel_stride + k*nr + j], s)
//   c[i*ldc + p*nr + j] = s
// a: mr x kc block of A, read: packed (a_rs = 1, a_cs = mr) or straight from a row-major
// A (a_rs = lda, a_cs = 1). b: np packed B panels, each kc x nr, read.
// c: mr x (np*nr) block of C, read (if load_c) and written.
// Supported (mr, np): 1 <= mr <= 6 and 1 <= np <= max_panels(mr) of the ISA. Both ISAs
// give the same bits (one FMA chain per element); they differ in how many accumulators
// fit their registers: an AVX2 panel takes 2 of 16 ymm registers, an AVX-512 one 1 of 32.
namespace avx2 {
inline int max_panels(int mr) { return mr >= 4 ? 1 : (mr == 3 ? 2 : (mr == 2 ? 3 : 6)); }
}  // namespace avx2
namespace avx512 {
// At most 4 panels for 1 or 2 rows: such a tile waits on B's loads (from L2 at B = 1), and
// wider tiles timed no faster (docs/performance.md, "AVX-512 tiles").
inline int max_panels(int mr) { return mr >= 5 ? 4 : (mr >= 3 ? 6 : 4); }
}  // namespace avx512

// The functions below that take a T are defined for T = float and double.
#ifdef RNNKIT_HAVE_AVX2_KERNELS
namespace avx2 {
template <typename T>
void tile(int mr, int np, i64 kc, const T* a, i64 a_rs, i64 a_cs, const T* b,
          i64 b_panel_stride, T* c, i64 ldc, bool load_c);

// One row times np panels (gemm.h's gemv_panels): for p < np, j < nr:
//   s = (load_c bit p) ? y[p][j] : 0
//   for k = 0..kc-1:  s = fma(x[k], b[p][k*nr + j], s)
//   y[p][j] = s
// x (kc,) read; b[p]: one packed B panel, kc x nr, read; y[p] (nr,) read (if its load_c
// bit is set) and written. 1 <= np <= 4. Each element is the tiles' FMA chain: the same
// bits as tile(1, ...) gives it.
template <typename T>
void gemv_panels(int np, i64 kc, const T* x, const T* const* b, T* const* y, unsigned load_c);

// Transposing pack of one full B panel for gemm_nt: dst[k*nr + j] = src[j*lds + k] for
// j < nr, k < kc. src: nr rows of B (row j at src + j*lds), read; dst: kc x nr, written.
template <typename T>
void pack_nt_panel(i64 kc, const T* src, i64 lds, T* dst);

// Packing of mr rows of a row-major A for the micro-tiles: dst[k*mr + i] = src[i*lds + k]
// for i < mr, k < kc (1 <= mr <= 8). src: mr rows, read; dst: kc x mr, written.
void pack_a_rows(int mr, i64 kc, const float* src, i64 lds, float* dst);

// y[i] = sigmoid(x[i]) / tanh(x[i]), i < n; y may alias x (see activations_vec.h).
void sigmoid(i64 n, const float* x, float* y);
void sigmoid(i64 n, const double* x, double* y);
void tanh(i64 n, const float* x, float* y);
void tanh(i64 n, const double* x, double* y);

// Benchmark helper: `iters` rounds of 12 independent 8-lane float FMAs (192 flops each),
// from registers only; returns a value that depends on all of them.
float fma_peak_loop(i64 iters, float seed);
}  // namespace avx2
#endif

#ifdef RNNKIT_HAVE_AVX512_KERNELS
namespace avx512 {
template <typename T>
void tile(int mr, int np, i64 kc, const T* a, i64 a_rs, i64 a_cs, const T* b,
          i64 b_panel_stride, T* c, i64 ldc, bool load_c);
// tile of t1 (load_c false), then of t2 continuing the same accumulators, with one store
// of c: the same bits as tile(t1, load_c = false) followed by tile(t2, load_c = true).
template <typename T>
void tile_pair(int mr, int np, const TileOperand<T>& t1, const TileOperand<T>& t2, T* c,
               i64 ldc);

// As avx2::sigmoid / tanh, on 16 floats / 8 doubles a register: the same bits.
void sigmoid(i64 n, const float* x, float* y);
void sigmoid(i64 n, const double* x, double* y);
void tanh(i64 n, const float* x, float* y);
void tanh(i64 n, const double* x, double* y);
template <typename T>
void gemv_panels(int np, i64 kc, const T* x, const T* const* b, T* const* y, unsigned load_c);

// gemv_panels and, in the same loop over k, a tile of mr rows times one panel:
//   s = 0; for k = 0..kt-1: s = fma(a[i*lda + k], bt[k*nr + j], s); c[i*ldc + j] = s
// for i < mr (0 <= mr <= 8; 0: gemv_panels alone), j < nr: the same bits as tile(mr, 1,
// kt, a, lda, 1, bt, ..., c, ldc, false). The two products run side by side over
// k < min(kc, kt), then the longer one alone.
template <typename T>
void gemv_panels_tile(int np, i64 kc, const T* x, const T* const* b, T* const* y,
                      unsigned load_c, int mr, i64 kt, const T* a, i64 lda, const T* bt, T* c,
                      i64 ldc);
}  // namespace avx512
#endif

}  // namespace rnnkit::kernels::detail
