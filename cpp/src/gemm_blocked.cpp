// The vector ISAs' GEMM path (gemm_internal.h): cache blocking and the loops that run
// the micro-tiles of kernels_isa.h over a region of C.
//
// Loop nest (Goto/BLIS): for each block of NC columns, for each block of KC of the
// reduction, pack that KC x NC block of op(B) into panels of NR columns (or use the
// caller's PackedB); for each block of MC rows, pack that MC x KC block of op(A) into
// row blocks (a transposed A, and A of the prepacked path with few rows, are read in
// place instead); then run
// micro-tiles over (row block x panel group). The first KC block starts each accumulator
// at 0 (or at C when accumulating), later blocks reload the partial sums from C, so every
// element is a single FMA chain over k = 0..K-1 whatever the blocking, tile shape or
// thread split.
#include <algorithm>

#include "gemm_internal.h"
#include "kernels_isa.h"

#ifdef RNNKIT_HAVE_AVX2_KERNELS
namespace rnnkit::kernels::gemm_detail {

namespace {

// Largest A block (rows x all of K) that the prepacked-B path reads in place: on Zen 4
// (1 MiB L2) reading in place was faster than packing up to this size (the backward's
// 72 x 2048 float blocks, 576 KiB) and no better beyond it (docs/performance.md, "LSTM
// training at T=50, B=64, H=512").
constexpr i64 kAFullKBytes = i64(640) << 10;

// Rows of an MC block split into micro-tile row counts: ceil(m/6) blocks of near-equal
// size (6,6,5,5,5,5 for 32 rows rather than 6,6,6,6,6,2: small row counts waste the FMA
// units).
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

// Ask for `rows` rows of `bytes` bytes of C (row stride ldc) to be brought into cache.
template <typename T>
inline void prefetch_c(const T* c, int rows, i64 ldc, i64 bytes) {
  for (int i = 0; i < rows; ++i) {
    const char* row = reinterpret_cast<const char*>(c + i * ldc);
    for (i64 off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 1, 3);
  }
}

// Where micro-tiles read A: packed row blocks (block b at base + off_b*kc, kc x mr_b
// k-major) or the caller's A itself, op(A)(i, k) at base + i*rs + k*cs with base at the
// block's first row and first k.
template <typename T>
struct ASource {
  const T* base;
  i64 rs, cs;  // in place: the strides of op(A)
  i64 kc;      // packed: the packed block's kc
  bool packed;
  static ASource packed_block(const T* buf, i64 kc) { return {buf, 0, 0, kc, true}; }
  static ASource in_place(const AView<T>& A, i64 i0, i64 k0) {
    return {A.p + i0 * A.rs + k0 * A.cs, A.rs, A.cs, 0, false};
  }
  const T* at(const RowBlocks& rb, int b) const {
    return packed ? base + rb.off[b] * kc : base + rb.off[b] * rs;
  }
  i64 row_stride(const RowBlocks&, int) const { return packed ? 1 : rs; }
  i64 k_stride(const RowBlocks& rb, int b) const { return packed ? rb.mr[b] : cs; }
};

// One product of the sum that macro_tiles computes: A from `as`, kc values of k, packed
// B panels from bpanels (panel stride bps).
template <typename T>
struct Segment {
  i64 kc;
  ASource<T> as;
  const T* bpanels;
  i64 bps;
  detail::TileOperand<T> operand(const RowBlocks& rb, int b, i64 panel) const {
    return {kc, as.at(rb, b), as.row_stride(rb, b), as.k_stride(rb, b), bpanels + panel * bps,
            bps};
  }
};

// Micro-tiles over row blocks x npanels panels of C = [C +] the sum of `count` products
// (segments, 1 or 2, each continuing every element's FMA chain). Panel 0's valid columns
// start at lo0, the last panel's end at hi_last (edge panels go through a small buffer).
// c points at C(row 0 of the block, column 0 of panel 0). Each panel group (consecutive
// full panels) stays in L1 while all row blocks use it. Two segments run in one tile
// (tile_pair) where the ISA has it: C is stored once.
template <typename T>
void macro_tiles(const Tiles<T>& tk, const Segment<T>* seg, int count, const RowBlocks& rb,
                 i64 npanels, i64 lo0, i64 hi_last, T* c, i64 ldc, bool load_c, T* tmp) {
  constexpr i64 NR = kNR<T>;
  auto lo_of = [&](i64 p) { return p == 0 ? lo0 : i64(0); };
  auto hi_of = [&](i64 p) { return p == npanels - 1 ? hi_last : NR; };
  // The tile of row block b x panels [s, s + np) into cb (ldc apart).
  auto tiles = [&](int b, i64 s, int np, T* cb, i64 ld, bool load) {
    const int mr = rb.mr[b];
    if (count == 2 && !load && tk.tile_pair != nullptr) {
      tk.tile_pair(mr, np, seg[0].operand(rb, b, s), seg[1].operand(rb, b, s), cb, ld);
      return;
    }
    for (int g = 0; g < count; ++g) {
      const detail::TileOperand<T> op = seg[g].operand(rb, b, s);
      tk.tile(mr, np, op.kc, op.a, op.ars, op.acs, op.b, op.bps, cb, ld, load || g > 0);
    }
  };
  i64 p = 0;
  while (p < npanels) {
    if (lo_of(p) == 0 && hi_of(p) == NR) {
      i64 q = p + 1;
      while (q < npanels && q - p < rb.max_np && lo_of(q) == 0 && hi_of(q) == NR) ++q;
      for (int b = 0; b < rb.count; ++b) {
        const int mr = rb.mr[b];
        T* cb = c + rb.off[b] * ldc;
        // The next row block's C lines (from L2/L3/memory) load while this one computes.
        if (b + 1 < rb.count) prefetch_c(c + rb.off[b + 1] * ldc + p * NR, rb.mr[b + 1], ldc,
                                         (q - p) * NR * i64(sizeof(T)));
        for (i64 s = p; s < q;) {
          const int np = static_cast<int>(std::min<i64>(tk.max_panels[mr], q - s));
          tiles(b, s, np, cb + s * NR, ldc, load_c);
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
        tiles(b, p, 1, tmp, NR, true);
        for (int i = 0; i < mr; ++i) {
          for (i64 j = lo; j < hi; ++j) cb[i * ldc + j] = tmp[i * NR + j];
        }
      }
      ++p;
    }
  }
}

}  // namespace

template <typename T>
Tiles<T> tiles_for(Isa isa) {
  Tiles<T> tk{};
  tk.tile = &detail::avx2::tile<T>;
  int (*max_panels)(int) = &detail::avx2::max_panels;
#ifdef RNNKIT_HAVE_AVX512_KERNELS
  if (isa == Isa::avx512) {
    tk.tile = &detail::avx512::tile<T>;
    tk.tile_pair = &detail::avx512::tile_pair<T>;
    max_panels = &detail::avx512::max_panels;
  }
#endif
  (void)isa;
  for (int mr = 1; mr <= kMR; ++mr) tk.max_panels[mr] = max_panels(mr);
  return tk;
}

// Micro-tile path (AVX2 or AVX-512 tiles) over rows [m0, m1) x columns [n0, n1) of C,
// B unpacked.
template <typename T>
void blocked_region(const Tiles<T>& tk, i64 m0, i64 m1, i64 n0, i64 n1, i64 K,
                    const AView<T>& A, const BView<T>& B, T* C, i64 ldc, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr i64 NR = kNR<T>;
  Scratch<T>& s = scratch<T>();
  // Only as large as this product needs (the full blocks are 6 MiB of B, 144 KiB of A).
  const i64 kc_max = std::min(Bk::KC, K);
  T* bbuf = grow(s.b, kc_max * ((std::min(Bk::NC, n1 - n0) + NR - 1) / NR * NR));
  T* abuf = A.rs != 1 ? grow(s.a, std::min(Bk::MC, m1 - m0) * kc_max) : nullptr;
  for (i64 jc = n0; jc < n1; jc += Bk::NC) {
    const i64 nc = std::min(Bk::NC, n1 - jc);
    const i64 npanels = (nc + NR - 1) / NR;
    for (i64 pc = 0; pc < K; pc += Bk::KC) {
      const i64 kc = std::min(Bk::KC, K - pc);
      pack_b(B, pc, kc, jc, nc, bbuf);
      for (i64 ic = m0; ic < m1; ic += Bk::MC) {
        const i64 mc = std::min(Bk::MC, m1 - ic);
        const RowBlocks rb = split_rows(mc, tk.max_panels);
        // A transposed (gemm_tn: a row block's values for one k are contiguous) is read in
        // place: packing it gathered a few values from each of kc rows lda apart, which
        // cost more than the tiles' strided reads (docs/performance.md, "gemm_tn reads
        // A in place"). Otherwise the block is packed.
        ASource<T> as = ASource<T>::in_place(A, ic, pc);
        if (A.rs != 1) {
          pack_a(A, ic, pc, kc, rb, abuf);
          as = ASource<T>::packed_block(abuf, kc);
        }
        const Segment<T> seg{kc, as, bbuf, kc * NR};
        macro_tiles(tk, &seg, 1, rb, npanels, 0, nc - (npanels - 1) * NR, C + ic * ldc + jc, ldc,
                    accumulate || pc > 0, s.tmp);
      }
    }
  }
}

// Micro-tile path over rows [m0, m1) x columns [n0, n1) of C, B prepacked (panel stride
// K*NR), for a sum of products (terms, one after the other).
// When an MC block of each term's A with all of its K fits in kAFullKBytes (the per-step
// case: few rows), the micro-tiles read A where it is (packing it would be an extra pass
// over A that so short a product need not pay) and the loops run panel group, then term
// and k block, then row block, so the group's C block (rows x 16..96 columns) stays in L1
// over the whole reduction. Otherwise A is packed and the usual k block, row block, panel
// order runs, term after term.
template <typename T>
void blocked_region_packed(const Tiles<T>& tk, i64 m0, i64 m1, i64 n0, i64 n1,
                           const PackedTerm<T>* terms, int count, T* C, i64 ldc,
                           bool accumulate) {
  using Bk = Blocking<T>;
  constexpr i64 NR = kNR<T>;
  Scratch<T>& s = scratch<T>();
  const i64 pend = (n1 + NR - 1) / NR;
  const i64 mc_max = std::min(Bk::MC, m1 - m0);
  bool c_stationary = true, one_k_block = true;
  for (int t = 0; t < count; ++t) {
    c_stationary = c_stationary && mc_max * terms[t].B->k() * i64(sizeof(T)) <= kAFullKBytes;
    one_k_block = one_k_block && terms[t].B->k() <= Bk::KC;
  }
  if (c_stationary) {
    for (i64 ic = m0; ic < m1; ic += Bk::MC) {
      const i64 mc = std::min(Bk::MC, m1 - ic);
      const RowBlocks rb = split_rows(mc, tk.max_panels);
      for (i64 pj = n0 / NR; pj < pend; pj += rb.max_np) {
        const i64 npanels = std::min<i64>(rb.max_np, pend - pj);
        const i64 lo0 = std::max<i64>(n0 - pj * NR, 0);
        const i64 hi_last = std::min<i64>(n1 - (pj + npanels - 1) * NR, NR);
        T* cg = C + ic * ldc + pj * NR;
        if (one_k_block) {  // every term in one segment of one pass
          Segment<T> seg[2];
          for (int t = 0; t < count; ++t) {
            const i64 K = terms[t].B->k();
            seg[t] = {K, ASource<T>::in_place(terms[t].A, ic, 0), terms[t].B->data() + pj * K * NR,
                      K * NR};
          }
          macro_tiles(tk, seg, count, rb, npanels, lo0, hi_last, cg, ldc, accumulate, s.tmp);
          continue;
        }
        for (int t = 0; t < count; ++t) {
          const i64 K = terms[t].B->k();
          for (i64 pc = 0; pc < K; pc += Bk::KC) {
            const i64 kc = std::min(Bk::KC, K - pc);
            const Segment<T> seg{kc, ASource<T>::in_place(terms[t].A, ic, pc),
                                 terms[t].B->data() + pj * K * NR + pc * NR, K * NR};
            macro_tiles(tk, &seg, 1, rb, npanels, lo0, hi_last, cg, ldc,
                        accumulate || t > 0 || pc > 0, s.tmp);
          }
        }
      }
    }
    return;
  }
  for (int t = 0; t < count; ++t) {
    const AView<T>& A = terms[t].A;
    const i64 K = terms[t].B->k();
    const T* bp = terms[t].B->data();
    T* abuf = grow(s.a, mc_max * std::min(Bk::KC, K));
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
          const Segment<T> seg{kc, ASource<T>::packed_block(abuf, kc), bp + pj * K * NR + pc * NR,
                               K * NR};
          macro_tiles(tk, &seg, 1, rb, npanels, lo0, hi_last, C + ic * ldc + pj * NR, ldc,
                      accumulate || t > 0 || pc > 0, s.tmp);
        }
      }
    }
  }
}

#define RNNKIT_INSTANTIATE(T)                                                               \
  template Tiles<T> tiles_for<T>(Isa);                                                      \
  template void blocked_region<T>(const Tiles<T>&, i64, i64, i64, i64, i64, const AView<T>&, \
                                  const BView<T>&, T*, i64, bool);                          \
  template void blocked_region_packed<T>(const Tiles<T>&, i64, i64, i64, i64,                 \
                                         const PackedTerm<T>*, int, T*, i64, bool);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::kernels::gemm_detail
#endif  // RNNKIT_HAVE_AVX2_KERNELS
