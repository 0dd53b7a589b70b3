// Internal to the GEMM translation units (not installed): the pieces the public entry
// points of gemm.h are built from, one file each:
//   gemm.cpp          the entry points: argument edge cases, ISA dispatch
//   gemm_threads.cpp  how a product is split between threads
//   gemm_blocked.cpp  the vector ISAs' path: cache blocking and the micro-tile loops
//   gemm_pack.cpp     packing of A and B for the micro-tiles (and PackedB)
//   gemm_plain.cpp    ISA "plain": the readable reference loops
// All are portable code (no ISA flags); the micro-tiles themselves are in gemm_avx2.cpp
// and gemm_avx512.cpp (kernels_isa.h).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels_isa.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"

namespace rnnkit::kernels::gemm_detail {

using i64 = std::int64_t;

template <typename T>
constexpr i64 kNR = PackedB<T>::kPanel;  // panel width (columns)
constexpr i64 kMR = 6;                   // most rows in a micro-tile

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

// Per-thread work buffers; they grow to the largest size used and stay.
template <typename T>
struct Scratch {
  Buf<T> a;         // packed A block: MC x KC
  Buf<T> b;         // packed B block: KC x NC (plain path: a K x strip copy of op(B))
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

// ---- cache blocking (gemm_blocked.cpp, gemm_pack.cpp) ----

// Cache blocking: a KC x NR panel of B (32 KiB, an L1d) is reused by every row block of A
// while those stream from the MC x KC block of A (144 KiB float, 288 KiB double) in L2.
// KC and MC are the sizes that timed fastest (docs/performance.md, "Cache blocking").
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

// Rows of an MC block of A split into micro-tile row counts: block b is rows
// [off[b], off[b] + mr[b]) of the block. Filled by split_rows (gemm_blocked.cpp).
struct RowBlocks {
  int count = 0;
  int max_np = 1;  // largest panel group any block can take
  i64 off[Blocking<float>::MC / kMR + 1];
  int mr[Blocking<float>::MC / kMR + 1];
};
static_assert(Blocking<double>::MC <= Blocking<float>::MC, "RowBlocks is sized for float");
static_assert(Blocking<float>::MC % kMR == 0 && Blocking<double>::MC % kMR == 0, "MC");

// ---- packing (gemm_pack.cpp) ----

// Pack k [k0, k0+kc) x columns [n0, n0+nc) of op(B) into panels: panel j at
// dst + j*kc*NR holds kc x NR, columns past nc zero.
template <typename T>
void pack_b(const BView<T>& B, i64 k0, i64 kc, i64 n0, i64 nc, T* dst);

// Pack rows [i0, i0+m) x k [k0, k0+kc) of op(A), whose rows are contiguous (A.cs == 1;
// a transposed A is read in place): row block b goes to dst + off_b*kc as kc x mr_b
// (k-major). Only the micro-tile path calls it (AVX2 is there: checked).
template <typename T>
void pack_a(const AView<T>& A, i64 i0, i64 k0, i64 kc, const RowBlocks& rb, T* dst);

// ---- the vector ISAs' path (gemm_blocked.cpp) ----

// The micro-tiles a call runs with: AVX2 or AVX-512 (kernels_isa.h: the same contract and
// the same bits), and the most panels a tile of mr rows takes (max_panels[mr], looked up
// once per call rather than asked of the ISA per tile).
template <typename T>
struct Tiles {
  void (*tile)(int mr, int np, i64 kc, const T* a, i64 ars, i64 acs, const T* b, i64 bps,
               T* c, i64 ldc, bool load_c);
  // Two products in one tile (avx512::tile_pair), or nullptr: two tiles instead.
  void (*tile_pair)(int mr, int np, const detail::TileOperand<T>& t1,
                    const detail::TileOperand<T>& t2, T* c, i64 ldc);
  int max_panels[kMR + 1];  // index mr = 1..kMR
};
template <typename T>
Tiles<T> tiles_for(Isa isa);  // isa: avx2 or avx512, available

// Rows [m0, m1) x columns [n0, n1) of C = [C +] op(A) op(B), B unpacked.
template <typename T>
void blocked_region(const Tiles<T>& tk, i64 m0, i64 m1, i64 n0, i64 n1, i64 K,
                    const AView<T>& A, const BView<T>& B, T* C, i64 ldc, bool accumulate);
// One product A op(B) of a sum of them, B prepacked.
template <typename T>
struct PackedTerm {
  AView<T> A;
  const PackedB<T>* B;
};
// The same with B prepacked, for the sum of `count` products (1 or 2) of the same N:
// C = [C +] sum of terms[s].A op(terms[s].B), term after term, each continuing every
// element's FMA chain (columns n0, n1 index all of the Bs' N).
template <typename T>
void blocked_region_packed(const Tiles<T>& tk, i64 m0, i64 m1, i64 n0, i64 n1,
                           const PackedTerm<T>* terms, int count, T* C, i64 ldc,
                           bool accumulate);

// ---- ISA "plain" (gemm_plain.cpp) ----

template <typename T>
void plain_region(i64 m0, i64 m1, i64 n0, i64 n1, i64 K, const AView<T>& A,
                  const BView<T>& B, T* C, i64 ldc, bool accumulate);
template <typename T>
void plain_region_packed(i64 m0, i64 m1, i64 n0, i64 n1, const AView<T>& A,
                         const PackedB<T>& Bp, T* C, i64 ldc, bool accumulate);

// gemv_panels (gemm.h) at ISA plain: b[p] the packed panels (K x NR), y[p] their outputs.
template <typename T>
void plain_gemv_panels(int np, i64 K, const T* x, const T* const* b, T* const* y,
                       unsigned accumulate);

// ---- threads (gemm_threads.cpp) ----

// A borrowed callable region(m0, m1, n0, n1) that computes rows [m0, m1) x columns
// [n0, n1) of C (a lambda of the caller's, alive for the call it is passed to).
class RegionRef {
 public:
  template <class F>
  RegionRef(const F& f)  // implicit: run_split(..., [&](...) { ... })
      : f_(&f), call_([](const void* f, i64 m0, i64 m1, i64 n0, i64 n1) {
          (*static_cast<const F*>(f))(m0, m1, n0, n1);
        }) {}
  void operator()(i64 m0, i64 m1, i64 n0, i64 n1) const { call_(f_, m0, m1, n0, n1); }

 private:
  const void* f_;
  void (*call_)(const void*, i64, i64, i64, i64);
};

// How the product is called, which sets how much work makes threads pay.
enum class Calls { one_off, prepacked };
// Which way a product's thread regions preferably split, when both are about as balanced.
// Rows: each thread packs all of B, a row-by-row copy when op(B)'s rows are contiguous
// (gemm_nn, gemm_tn), and only its own rows of A. Columns: each thread keeps its own
// slice of B, which suits a transposed B (gemm_nt: its packing is a gather) and a
// prepacked one. Each entry point prefers the split that timed faster for it
// (docs/performance.md, "Thread split of one-off products").
enum class Split { rows, columns };

// Runs region over rows [0, M) x columns [n_begin, n_end) of an M x N x K product, on
// the calling thread or split into thread regions aligned to micro-tile rows and to panels
// of `panel` columns counted from column 0 (so a PackedB's panels are never split).
void run_split(i64 M, i64 n_begin, i64 n_end, i64 K, i64 panel, Calls calls, Split prefer,
               RegionRef region);

}  // namespace rnnkit::kernels::gemm_detail
