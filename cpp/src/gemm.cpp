// GEMM driver (see gemm.h): cache blocking, packing, threading and ISA dispatch around
// the micro-tiles of kernels_isa.h.
//
// Loop nest (Goto/BLIS): for each block of NC columns, for each block of KC of the
// reduction, pack that KC x NC block of op(B) into panels of NR columns (or use the
// caller's PackedB); for each block of MC rows, pack that MC x KC block of op(A) into
// row blocks (the prepacked path with few rows reads A in place instead); then run
// micro-tiles over (row block x panel group). The first KC block
// starts each accumulator at 0 (or at C when accumulating), later blocks reload the
// partial sums from C, so every element is a single FMA chain over k = 0..K-1 whatever
// the blocking, tile shape or thread split.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels_isa.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "rnnkit/threads.h"

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

namespace rnnkit::kernels {

namespace {

using i64 = std::int64_t;

template <typename T>
constexpr i64 kNR = PackedB<T>::kPanel;  // panel width (columns)
constexpr i64 kMR = 6;                   // most rows in a micro-tile

// Cache blocking, tuned on Zen 3 (32 KiB L1d, 512 KiB L2 per core; measured by CPU time
// with benchmarks/bench_kernels.py shapes): a KC x NR panel of B (32 KiB) is reused by
// every row block of A while those stream from the MC x KC block of A (144 KiB float,
// 288 KiB double) in L2. KC = 512 beat 256 and 384 by 5-10% on large products.
template <typename T>
struct Blocking;
template <>
struct Blocking<float> {
  static constexpr i64 KC = 512, MC = 72, NC = 3072;
};
template <>
struct Blocking<double> {
  static constexpr i64 KC = 512, MC = 72, NC = 1536;
};

// Largest A block (rows x all of K) that the prepacked-B path reads in place: half the L2.
constexpr i64 kAFullKBytes = i64(256) << 10;

// Below this much work (multiply-adds, counting at least 4 rows: with fewer rows a GEMM
// is bound by streaming B, not by the FMA units) a GEMM runs on the calling thread. Two
// thresholds, by how the team is likely found:
// - prepacked B (gemm_packed*): the same B is multiplied again and again back to back (a
//   time loop), so the team is awake and a fork/join costs a few microseconds;
// - the one-off entry points (gemm_nt/nn/tn): the team has usually gone to sleep since the
//   last parallel region, and waking it costs tens of microseconds (more when another
//   process holds the other core). Measured at T=100, B=1, H=128 on 2 cores: a 100x128x128
//   product (1.6M multiply-adds) ran slower at 2 threads than at 1.
constexpr i64 kMinParallelWorkPacked = i64(1) << 19;
constexpr i64 kMinParallelWorkOneOff = i64(1) << 21;

// op(A) element (i, k) at p[i*rs + k*cs]; op(B) element (k, n) at p[k*ks + n*ns].
template <typename T>
struct AView {
  const T* p;
  i64 rs, cs;
};
template <typename T>
struct BView {
  const T* p;
  i64 ks, ns;
};

template <typename T>
using Buf = std::vector<T, AlignedAllocator<T>>;

// Per-thread packing buffers; they grow to the largest size used and stay.
template <typename T>
struct Scratch {
  Buf<T> a;  // packed A block: MC x KC
  Buf<T> b;  // packed B block: KC x NC
  T tmp[kMR * 16];  // one edge tile: mr x NR (tiles use unaligned loads and stores)
};
template <typename T>
Scratch<T>& scratch() {
  thread_local Scratch<T> s;
  return s;
}
template <typename T>
T* grow(Buf<T>& buf, i64 n) {
  if (static_cast<i64>(buf.size()) < n) buf.resize(static_cast<std::size_t>(n));
  return buf.data();
}

// Pack k [k0, k0+kc) x columns [n0, n0+nc) of op(B) into panels: panel j at
// dst + j*kc*NR holds kc x NR, columns past nc zero.
template <typename T>
void pack_b(const BView<T>& B, i64 k0, i64 kc, i64 n0, i64 nc, T* dst) {
  constexpr i64 NR = kNR<T>;
  if (B.ns == 1) {
    // op(B) rows contiguous (gemm_nn, gemm_tn): read each row once, left to right, and
    // deal it out to the panels (reading a panel at a time would touch a new page on
    // every row when rows are long).
    for (i64 k = 0; k < kc; ++k) {
      const T* s = B.p + (k0 + k) * B.ks + n0;
      for (i64 j = 0; j < nc; j += NR) {
        const i64 w = std::min(NR, nc - j);
        T* dk = dst + (j / NR) * kc * NR + k * NR;
        if (w == NR) {
          std::memcpy(dk, s + j, sizeof(T) * NR);
        } else {
          for (i64 jj = 0; jj < w; ++jj) dk[jj] = s[j + jj];
          for (i64 jj = w; jj < NR; ++jj) dk[jj] = T(0);
        }
      }
    }
    return;
  }
  // op(B) columns contiguous (gemm_nt: B is N x K): transpose NR rows at a time (with
  // in-register transposes when AVX2 is there: pure data movement, the same bits).
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  const bool avx2 = B.ks == 1 && isa_available(Isa::avx2);
#endif
  for (i64 j = 0; j < nc; j += NR) {
    const i64 w = std::min(NR, nc - j);
    T* d = dst + (j / NR) * kc * NR;
#ifdef RNNKIT_HAVE_AVX2_KERNELS
    if (avx2 && w == NR) {
      detail::avx2::pack_nt_panel(kc, B.p + (n0 + j) * B.ns + k0, B.ns, d);
      continue;
    }
#endif
    if (w < NR) std::memset(d, 0, sizeof(T) * static_cast<std::size_t>(kc * NR));
    for (i64 jj = 0; jj < w; ++jj) {
      const T* s = B.p + (n0 + j + jj) * B.ns + k0 * B.ks;
      for (i64 k = 0; k < kc; ++k) d[k * NR + jj] = s[k * B.ks];
    }
  }
}

#ifdef RNNKIT_HAVE_AVX2_KERNELS
// The micro-tiles a call runs with: AVX2 or AVX-512 (kernels_isa.h: the same contract and
// the same bits), and the most panels a tile of mr rows takes (max_panels[mr], looked up
// once per call rather than asked of the ISA per tile).
template <typename T>
struct Tiles {
  void (*tile)(int mr, int np, i64 kc, const T* a, i64 ars, i64 acs, const T* b, i64 bps,
               T* c, i64 ldc, bool load_c);
  int max_panels[kMR + 1];  // index mr = 1..kMR
};
template <typename T>
Tiles<T> tiles_for(Isa isa) {
  Tiles<T> tk{};
  tk.tile = &detail::avx2::tile;
  int (*max_panels)(int) = &detail::avx2::max_panels;
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (isa == Isa::avx512) {
    tk.tile = &detail::avx512::tile;
    max_panels = &detail::avx512::max_panels;
  }
#endif
  (void)isa;
  for (int mr = 1; mr <= kMR; ++mr) tk.max_panels[mr] = max_panels(mr);
  return tk;
}

// Rows of an MC block split into micro-tile row counts: ceil(m/6) blocks of near-equal
// size (6,6,5,5,5,5 for 32 rows rather than 6,6,6,6,6,2: small row counts waste the FMA
// units).
struct RowBlocks {
  int count = 0;
  int max_np = 1;  // largest panel group any block can take
  i64 off[Blocking<float>::MC / kMR + 1];
  int mr[Blocking<float>::MC / kMR + 1];
};
static_assert(Blocking<double>::MC <= Blocking<float>::MC, "RowBlocks is sized for float");
static_assert(Blocking<float>::MC % kMR == 0 && Blocking<double>::MC % kMR == 0, "MC");

RowBlocks split_rows(i64 m, const int* max_panels) {
  RowBlocks rb;
  const i64 nb = (m + kMR - 1) / kMR;
  i64 o = 0;
  for (i64 b = 0; b < nb; ++b) {
    const int r = static_cast<int>(m / nb + (b < m % nb ? 1 : 0));
    rb.off[rb.count] = o;
    rb.mr[rb.count] = r;
    ++rb.count;
    rb.max_np = std::max(rb.max_np, max_panels[r]);
    o += r;
  }
  return rb;
}

// Pack rows [i0, i0+m) x k [k0, k0+kc) of op(A): row block b goes to dst + off_b*kc as
// kc x mr_b (k-major). Only the micro-tile regions call it (AVX2 is there: checked).
template <typename T>
void pack_a(const AView<T>& A, i64 i0, i64 k0, i64 kc, const RowBlocks& rb, T* dst) {
  if (A.cs == 1) {  // op(A) rows contiguous (gemm_nt, gemm_nn)
    for (int b = 0; b < rb.count; ++b) {
      const int mr = rb.mr[b];
      T* d = dst + rb.off[b] * kc;
      const i64 ib = i0 + rb.off[b];
      if constexpr (std::is_same_v<T, float>) {  // in-register transposes: same values
        detail::avx2::pack_a_rows(mr, kc, A.p + ib * A.rs + k0, A.rs, d);
        continue;
      }
      for (int i = 0; i < mr; ++i) {
        const T* s = A.p + (ib + i) * A.rs + k0;
        for (i64 k = 0; k < kc; ++k) d[k * mr + i] = s[k];
      }
    }
    return;
  }
  // op(A) columns contiguous (gemm_tn: A's memory rows are op(A)'s columns, lda apart).
  // Each memory row's stretch of the block is read once, left to right, and dealt out to
  // the row blocks: going block by block instead would revisit kc lines lda apart per
  // block, which share one L1 set (and a TLB entry each) when lda is a multiple of 1 KiB.
  // The rows are far apart (a new page each when lda is large), which the hardware
  // prefetchers do not follow: the lines of the row kPrefetch ahead are asked for here.
  constexpr i64 kPrefetch = 32;
  constexpr i64 kLine = 64 / sizeof(T);
  const i64 m = rb.off[rb.count - 1] + rb.mr[rb.count - 1];  // rows of op(A) in the block
  for (i64 k = 0; k < kc; ++k) {
    const T* s = A.p + (k0 + k) * A.cs + i0 * A.rs;
    if (k + kPrefetch < kc) {
      for (i64 j = 0; j < m; j += kLine) __builtin_prefetch(s + kPrefetch * A.cs + j, 0, 3);
      __builtin_prefetch(s + kPrefetch * A.cs + m - 1, 0, 3);
    }
    for (int b = 0; b < rb.count; ++b) {
      const int mr = rb.mr[b];
      T* d = dst + rb.off[b] * kc + k * mr;
      const T* sb = s + rb.off[b] * A.rs;
      for (int i = 0; i < mr; ++i) d[i] = sb[i * A.rs];
    }
  }
}

// Ask for `rows` rows of `bytes` bytes of C (row stride ldc) to be brought into cache.
template <typename T>
inline void prefetch_c(const T* c, int rows, i64 ldc, i64 bytes) {
  for (int i = 0; i < rows; ++i) {
    const char* row = reinterpret_cast<const char*>(c + i * ldc);
    for (i64 off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 1, 3);
  }
}

// Where micro-tiles read A for reduction index k0 on: packed row blocks (block b at
// base + off_b*stride + k0*mr_b, kc x mr_b k-major) or the caller's row-major A itself
// (block b at base + off_b*lda + k0).
template <typename T>
struct ASource {
  const T* base;
  i64 stride;  // packed: the packed block's kc; direct: lda
  i64 k0;
  bool direct;
  const T* at(const RowBlocks& rb, int b) const {
    return direct ? base + rb.off[b] * stride + k0 : base + rb.off[b] * stride + k0 * rb.mr[b];
  }
  i64 rs(const RowBlocks&, int) const { return direct ? stride : 1; }
  i64 cs(const RowBlocks& rb, int b) const { return direct ? 1 : rb.mr[b]; }
};

// Micro-tiles over row blocks x npanels panels of packed B (panel stride bps), A from
// `as`. Panel 0's valid columns start at lo0, the last panel's end at hi_last (edge
// panels go through a small buffer). c points at C(row 0 of the block, column 0 of
// panel 0). Each panel group (consecutive full panels) stays in L1 while all row blocks
// use it.
template <typename T>
void macro_tiles(const Tiles<T>& tk, i64 kc, const ASource<T>& as, const RowBlocks& rb,
                 const T* bpanels, i64 bps, i64 npanels, i64 lo0, i64 hi_last, T* c, i64 ldc,
                 bool load_c, T* tmp) {
  constexpr i64 NR = kNR<T>;
  auto lo_of = [&](i64 p) { return p == 0 ? lo0 : i64(0); };
  auto hi_of = [&](i64 p) { return p == npanels - 1 ? hi_last : NR; };
  i64 p = 0;
  while (p < npanels) {
    if (lo_of(p) == 0 && hi_of(p) == NR) {
      i64 q = p + 1;
      while (q < npanels && q - p < rb.max_np && lo_of(q) == 0 && hi_of(q) == NR) ++q;
      for (int b = 0; b < rb.count; ++b) {
        const int mr = rb.mr[b];
        const T* a = as.at(rb, b);
        const i64 ars = as.rs(rb, b), acs = as.cs(rb, b);
        T* cb = c + rb.off[b] * ldc;
        // The next row block's C lines (from L2/L3/memory) load while this one computes.
        if (b + 1 < rb.count) prefetch_c(c + rb.off[b + 1] * ldc + p * NR, rb.mr[b + 1], ldc,
                                         (q - p) * NR * i64(sizeof(T)));
        for (i64 s = p; s < q;) {
          const int np = static_cast<int>(std::min<i64>(tk.max_panels[mr], q - s));
          tk.tile(mr, np, kc, a, ars, acs, bpanels + s * bps, bps, cb + s * NR, ldc, load_c);
          s += np;
        }
      }
      p = q;
    } else {
      const i64 lo = lo_of(p), hi = hi_of(p);
      for (int b = 0; b < rb.count; ++b) {
        const int mr = rb.mr[b];
        T* cb = c + rb.off[b] * ldc + p * NR;
        for (int i = 0; i < mr; ++i) {
          for (i64 j = 0; j < NR; ++j) {
            tmp[i * NR + j] = (load_c && j >= lo && j < hi) ? cb[i * ldc + j] : T(0);
          }
        }
        // Starting from the zeros in tmp is the same as starting from 0 in registers.
        tk.tile(mr, 1, kc, as.at(rb, b), as.rs(rb, b), as.cs(rb, b), bpanels + p * bps, bps, tmp,
                NR, true);
        for (int i = 0; i < mr; ++i) {
          for (i64 j = lo; j < hi; ++j) cb[i * ldc + j] = tmp[i * NR + j];
        }
      }
      ++p;
    }
  }
}

// Micro-tile path (AVX2 or AVX-512 tiles) over rows [m0, m1) x columns [n0, n1) of C,
// B unpacked.
template <typename T>
void region_tiles(const Tiles<T>& tk, i64 m0, i64 m1, i64 n0, i64 n1, i64 K, const AView<T>& A,
                  const BView<T>& B, T* C, i64 ldc, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr i64 NR = kNR<T>;
  Scratch<T>& s = scratch<T>();
  // Only as large as this product needs (the full blocks are 6 MiB of B, 144 KiB of A).
  const i64 kc_max = std::min(Bk::KC, K);
  T* bbuf = grow(s.b, kc_max * ((std::min(Bk::NC, n1 - n0) + NR - 1) / NR * NR));
  T* abuf = grow(s.a, std::min(Bk::MC, m1 - m0) * kc_max);
  for (i64 jc = n0; jc < n1; jc += Bk::NC) {
    const i64 nc = std::min(Bk::NC, n1 - jc);
    const i64 npanels = (nc + NR - 1) / NR;
    for (i64 pc = 0; pc < K; pc += Bk::KC) {
      const i64 kc = std::min(Bk::KC, K - pc);
      pack_b(B, pc, kc, jc, nc, bbuf);
      for (i64 ic = m0; ic < m1; ic += Bk::MC) {
        const i64 mc = std::min(Bk::MC, m1 - ic);
        const RowBlocks rb = split_rows(mc, tk.max_panels);
        pack_a(A, ic, pc, kc, rb, abuf);
        macro_tiles(tk, kc, ASource<T>{abuf, kc, 0, false}, rb, bbuf, kc * NR, npanels, 0,
                    nc - (npanels - 1) * NR, C + ic * ldc + jc, ldc, accumulate || pc > 0, s.tmp);
      }
    }
  }
}

// Micro-tile path over rows [m0, m1) x columns [n0, n1) of C, B prepacked (panel stride
// K*NR).
// When an MC block of A with all of K fits in half the L2 (the per-step case: few rows),
// the micro-tiles read A where it is (packing it would cost ~1 cycle per element, a few
// percent of a per-step product) and the loops run panel group, then k block, then row
// block, so the group's C block (rows x 16..96 columns) stays in L1 over the whole
// reduction. Otherwise A is packed and the usual k block, row block, panel order runs.
template <typename T>
void region_tiles_packed(const Tiles<T>& tk, i64 m0, i64 m1, i64 n0, i64 n1, const AView<T>& A,
                         const PackedB<T>& Bp, T* C, i64 ldc, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr i64 NR = kNR<T>;
  const i64 K = Bp.k();
  Scratch<T>& s = scratch<T>();
  const i64 pend = (n1 + NR - 1) / NR;
  const bool c_stationary = std::min(Bk::MC, m1 - m0) * K * i64(sizeof(T)) <= kAFullKBytes;
  if (c_stationary) {
    for (i64 ic = m0; ic < m1; ic += Bk::MC) {
      const i64 mc = std::min(Bk::MC, m1 - ic);
      const RowBlocks rb = split_rows(mc, tk.max_panels);
      for (i64 pj = n0 / NR; pj < pend; pj += rb.max_np) {
        const i64 npanels = std::min<i64>(rb.max_np, pend - pj);
        const i64 lo0 = std::max<i64>(n0 - pj * NR, 0);
        const i64 hi_last = std::min<i64>(n1 - (pj + npanels - 1) * NR, NR);
        for (i64 pc = 0; pc < K; pc += Bk::KC) {
          const i64 kc = std::min(Bk::KC, K - pc);
          const ASource<T> as{A.p + ic * A.rs, A.rs, pc, true};
          macro_tiles(tk, kc, as, rb, Bp.data() + pj * K * NR + pc * NR, K * NR, npanels, lo0,
                      hi_last, C + ic * ldc + pj * NR, ldc, accumulate || pc > 0, s.tmp);
        }
      }
    }
    return;
  }
  T* abuf = grow(s.a, std::min(Bk::MC, m1 - m0) * std::min(Bk::KC, K));
  for (i64 pj = n0 / NR; pj < pend; pj += Bk::NC / NR) {
    const i64 npanels = std::min(Bk::NC / NR, pend - pj);
    const i64 lo0 = std::max<i64>(n0 - pj * NR, 0);
    const i64 hi_last = std::min<i64>(n1 - (pj + npanels - 1) * NR, NR);
    for (i64 pc = 0; pc < K; pc += Bk::KC) {
      const i64 kc = std::min(Bk::KC, K - pc);
      for (i64 ic = m0; ic < m1; ic += Bk::MC) {
        const i64 mc = std::min(Bk::MC, m1 - ic);
        const RowBlocks rb = split_rows(mc, tk.max_panels);
        pack_a(A, ic, pc, kc, rb, abuf);
        macro_tiles(tk, kc, ASource<T>{abuf, kc, 0, false}, rb,
                    Bp.data() + pj * K * NR + pc * NR, K * NR, npanels, lo0, hi_last,
                    C + ic * ldc + pj * NR, ldc, accumulate || pc > 0, s.tmp);
      }
    }
  }
}
#endif  // RNNKIT_HAVE_AVX2_KERNELS

// Plain path: per element, s = 0; s = s + round(a_k b_k) for k increasing; C = [C +] s
// (gemm.h): the arithmetic of the plain:: loops in gemm_plain.cpp, hence the same bits.
// It runs over strips of columns with one row of sums at a time, so that the innermost
// loop walks a contiguous row of op(B) and the compiler can vectorise it across columns
// (each sum still adds its products one by one in k order). A strip of op(B) whose rows
// are not contiguous (gemm_nt) is first copied out, K x strip, to a per-thread buffer.
template <typename T>
void region_plain(i64 m0, i64 m1, i64 n0, i64 n1, i64 K, const AView<T>& A, const BView<T>& B,
                  T* C, i64 ldc, bool accumulate) {
  constexpr i64 kStrip = 256;
  T sum[kStrip];
  for (i64 j0 = n0; j0 < n1; j0 += kStrip) {
    const i64 w = std::min(kStrip, n1 - j0);
    const T* bs = B.p + j0 * B.ns;  // op(B)(k, j0 + j) at bs[k*ks + j]
    i64 ks = B.ks;
    if (B.ns != 1) {
      T* buf = grow(scratch<T>().b, K * w);
      for (i64 k = 0; k < K; ++k) {
        for (i64 j = 0; j < w; ++j) buf[k * w + j] = B.p[k * B.ks + (j0 + j) * B.ns];
      }
      bs = buf;
      ks = w;
    }
    for (i64 m = m0; m < m1; ++m) {
      for (i64 j = 0; j < w; ++j) sum[j] = T(0);
      for (i64 k = 0; k < K; ++k) {
        const T a = A.p[m * A.rs + k * A.cs];
        const T* b = bs + k * ks;
        for (i64 j = 0; j < w; ++j) sum[j] = sum[j] + a * b[j];
      }
      T* c = C + m * ldc + j0;
      for (i64 j = 0; j < w; ++j) c[j] = accumulate ? c[j] + sum[j] : sum[j];
    }
  }
}

template <typename T>
void region_plain_packed(i64 m0, i64 m1, i64 n0, i64 n1, const AView<T>& A,
                         const PackedB<T>& Bp, T* C, i64 ldc, bool accumulate) {
  constexpr i64 NR = kNR<T>;
  const i64 K = Bp.k();
  for (i64 p = n0 / NR; p * NR < n1; ++p) {
    // Within panel p, op(B)(k, n) = data[p*K*NR + k*NR + (n - p*NR)].
    const BView<T> B{Bp.data() + p * K * NR - p * NR, NR, 1};
    region_plain(m0, m1, std::max(n0, p * NR), std::min(n1, (p + 1) * NR), K, A, B, C, ldc,
                 accumulate);
  }
}

template <typename T>
void zero_region(i64 m0, i64 m1, i64 n0, i64 n1, T* C, i64 ldc) {
  for (i64 m = m0; m < m1; ++m) {
    for (i64 n = n0; n < n1; ++n) C[m * ldc + n] = T(0);
  }
}

// Threads for an M x N x K product: 1 when below min_work multiply-adds or already inside
// a parallel region.
int choose_threads(i64 M, i64 N, i64 K, i64 min_work) {
#ifdef RNNKIT_HAVE_OPENMP
  if (omp_in_parallel()) return 1;
  if (std::max<i64>(M, 4) * N * std::max<i64>(K, 1) < min_work) return 1;
  return std::max(1, rnnkit::get_num_threads());
#else
  (void)M, (void)N, (void)K, (void)min_work;
  return 1;
#endif
}

// Which way a product's thread regions preferably split, when both are about as balanced.
// Rows: each thread packs all of B, a row-by-row copy when op(B)'s rows are contiguous
// (gemm_nn, gemm_tn), and only its own rows of A. Columns: each thread keeps its own
// slice of B, which suits a transposed B (gemm_nt: its packing is a gather) and a
// prepacked one. Measured on 2 threads (`_core._bench_gemm`, 7 interleaved rounds): the
// backward's nn and tn products (dX, dW_ih, dW_hh at the benchmark sizes) ran 5-27%
// faster split by rows, the forward's nt projections 3-13% faster split by columns.
enum class Split { rows, columns };

// Grid of tm x tn thread regions over mb row blocks x nb column panels. Cost: the tiles on
// the busiest thread. Among the grids within 1/16 of the lowest cost, the one with the most
// splits the preferred way, then the fewest threads.
struct Grid {
  int tm = 1, tn = 1;
};
Grid choose_grid(int t, i64 mb, i64 nb, Split prefer) {
  auto valid = [&](int tm, int tn) { return tm <= mb && tn <= nb; };
  auto cost = [&](int tm, int tn) { return ((mb + tm - 1) / tm) * ((nb + tn - 1) / tn); };
  i64 lowest = mb * nb;
  for (int tm = 1; tm <= t; ++tm) {
    for (int tn = 1; tm * tn <= t; ++tn) {
      if (valid(tm, tn)) lowest = std::min(lowest, cost(tm, tn));
    }
  }
  Grid best;
  int best_splits = 0;
  for (int tm = 1; tm <= t; ++tm) {
    for (int tn = 1; tm * tn <= t; ++tn) {
      if (!valid(tm, tn) || cost(tm, tn) > lowest + lowest / 16) continue;
      const int splits = prefer == Split::rows ? tm : tn;
      if (splits > best_splits || (splits == best_splits && tm * tn < best.tm * best.tn)) {
        best_splits = splits;
        best = Grid{tm, tn};
      }
    }
  }
  return best;
}

// Split [0, blocks) into `parts` near-equal ranges; returns the start of range `i`.
i64 split_at(i64 blocks, int parts, int i) {
  return (blocks / parts) * i + std::min<i64>(i, blocks % parts);
}

// Run `region(m0, m1, n0, n1)` over rows [0, M) x columns [n_begin, n_end), split into
// thread regions aligned to micro-tile rows and to panels of NR columns counted from
// column 0 (so a PackedB's panels are never split).
template <typename T, class Region>
void run_split(i64 M, i64 n_begin, i64 n_end, i64 K, i64 min_work, Split prefer,
               const Region& region) {
  constexpr i64 NR = kNR<T>;
  const i64 N = n_end - n_begin;
  const int t = choose_threads(M, N, K, min_work);
  const i64 p0 = n_begin / NR;
  const i64 nb = (n_end + NR - 1) / NR - p0;
  const i64 mb = (M + kMR - 1) / kMR;
  const Grid g = t > 1 ? choose_grid(t, mb, nb, prefer) : Grid{};
  if (g.tm * g.tn == 1) {
    region(0, M, n_begin, n_end);
    return;
  }
  auto part = [&](int id) {
    const int im = id / g.tn, in = id % g.tn;
    const i64 m0 = std::min(M, split_at(mb, g.tm, im) * kMR);
    const i64 m1 = std::min(M, split_at(mb, g.tm, im + 1) * kMR);
    const i64 n0 = std::max(n_begin, (p0 + split_at(nb, g.tn, in)) * NR);
    const i64 n1 = std::min(n_end, (p0 + split_at(nb, g.tn, in + 1)) * NR);
    if (m0 < m1 && n0 < n1) region(m0, m1, n0, n1);
  };
#ifdef RNNKIT_HAVE_OPENMP
  const int nt = g.tm * g.tn;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int id = 0; id < nt; ++id) part(id);
#else
  for (int id = 0; id < g.tm * g.tn; ++id) part(id);
#endif
}

template <typename T>
void gemm_views(i64 M, i64 N, i64 K, const AView<T>& A, const BView<T>& B, T* C, i64 ldc,
                bool accumulate, Split prefer) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) zero_region(i64(0), M, i64(0), N, C, ldc);
    return;
  }
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (const Isa isa = current_isa(); isa != Isa::plain) {
    const Tiles<T> tk = tiles_for<T>(isa);
    run_split<T>(M, 0, N, K, kMinParallelWorkOneOff, prefer,
                 [&](i64 m0, i64 m1, i64 n0, i64 n1) {
      region_tiles(tk, m0, m1, n0, n1, K, A, B, C, ldc, accumulate);
    });
    return;
  }
#endif
  run_split<T>(M, 0, N, K, kMinParallelWorkOneOff, prefer,
               [&](i64 m0, i64 m1, i64 n0, i64 n1) {
    region_plain(m0, m1, n0, n1, K, A, B, C, ldc, accumulate);
  });
}

}  // namespace

template <typename T>
void gemm_nt(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  gemm_views<T>(M, N, K, AView<T>{A, lda, 1}, BView<T>{B, 1, ldb}, C, ldc, accumulate,
                Split::columns);
}
template <typename T>
void gemm_nn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  gemm_views<T>(M, N, K, AView<T>{A, lda, 1}, BView<T>{B, ldb, 1}, C, ldc, accumulate,
                Split::rows);
}
template <typename T>
void gemm_tn(i64 M, i64 N, i64 K, const T* A, i64 lda, const T* B, i64 ldb, T* C, i64 ldc,
             bool accumulate) {
  gemm_views<T>(M, N, K, AView<T>{A, 1, lda}, BView<T>{B, ldb, 1}, C, ldc, accumulate,
                Split::rows);
}

template <typename T>
void PackedB<T>::resize(i64 N, i64 K) {
  n_ = std::max<i64>(N, 0);
  k_ = std::max<i64>(K, 0);
  const i64 panels = (n_ + kPanel - 1) / kPanel;
  data_.resize(static_cast<std::size_t>(panels * k_ * kPanel));
}

template <typename T>
void PackedB<T>::pack_nt(i64 N, i64 K, const T* B, i64 ldb) {
  resize(N, K);
  if (n_ > 0 && k_ > 0) pack_b(BView<T>{B, 1, ldb}, 0, k_, 0, n_, data_.data());
}

template <typename T>
void PackedB<T>::pack_nn(i64 K, i64 N, const T* B, i64 ldb) {
  resize(N, K);
  if (n_ > 0 && k_ > 0) pack_b(BView<T>{B, ldb, 1}, 0, k_, 0, n_, data_.data());
}

template <typename T>
void gemm_packed_cols(i64 M, i64 n_begin, i64 n_end, const T* A, i64 lda, const PackedB<T>& Bp,
                      T* C, i64 ldc, bool accumulate) {
  n_begin = std::max<i64>(n_begin, 0);
  n_end = std::min(n_end, Bp.n());
  if (M <= 0 || n_end <= n_begin) return;
  if (Bp.k() <= 0) {
    if (!accumulate) zero_region(i64(0), M, n_begin, n_end, C, ldc);
    return;
  }
  const AView<T> Av{A, lda, 1};
#ifdef RNNKIT_HAVE_AVX2_KERNELS
  if (const Isa isa = current_isa(); isa != Isa::plain) {
    const Tiles<T> tk = tiles_for<T>(isa);
    run_split<T>(M, n_begin, n_end, Bp.k(), kMinParallelWorkPacked, Split::columns,
                 [&](i64 m0, i64 m1, i64 n0, i64 n1) {
      region_tiles_packed(tk, m0, m1, n0, n1, Av, Bp, C, ldc, accumulate);
    });
    return;
  }
#endif
  run_split<T>(M, n_begin, n_end, Bp.k(), kMinParallelWorkPacked, Split::columns,
               [&](i64 m0, i64 m1, i64 n0, i64 n1) {
    region_plain_packed(m0, m1, n0, n1, Av, Bp, C, ldc, accumulate);
  });
}

template <typename T>
void gemm_packed(i64 M, const T* A, i64 lda, const PackedB<T>& Bp, T* C, i64 ldc,
                 bool accumulate) {
  gemm_packed_cols(M, 0, Bp.n(), A, lda, Bp, C, ldc, accumulate);
}

#define RNNKIT_INSTANTIATE(T)                                                                \
  template void gemm_nt<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_nn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template void gemm_tn<T>(i64, i64, i64, const T*, i64, const T*, i64, T*, i64, bool);   \
  template class PackedB<T>;                                                                \
  template void gemm_packed<T>(i64, const T*, i64, const PackedB<T>&, T*, i64, bool);       \
  template void gemm_packed_cols<T>(i64, i64, i64, const T*, i64, const PackedB<T>&, T*, i64, \
                                    bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels
