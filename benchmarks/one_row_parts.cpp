// Where the time of one-row LSTM steps (B = 1, I = H = 128, float32, 100 steps) goes,
// measured on stand-alone AVX-512 loops shaped like the library's one-row step
// (cell_loop.h, one_row_step): per step 8 gemv calls of 4 weight panels (one panel of 16
// units in each gate block, W_hh^T packed: 128 x 16 floats a panel, 256 KiB in all, read
// from L2), the input projection's tiles (8 future rows x one panel of W_ih^T) inside
// every other call, then the LSTM cell on the step's 128 units. Each part alone, and other
// arrangements of the same work, to see which of them hide more of one part under
// another. The loops do the library's arithmetic in the library's order; their results
// are not checked (the library's tests do that). Build and run on an AVX-512 CPU, from
// the repository root:
//
//   g++ -O3 -std=c++17 -mavx512f -mavx2 -mfma -ffp-contract=off -Icpp/src
//       benchmarks/one_row_parts.cpp -o /tmp/one_row_parts && /tmp/one_row_parts
//
// Every figure: the median of 200 repeats, microseconds per 100 steps (one call's steps).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "vector_math_avx512.h"

namespace {

using i64 = long;
using O = rnnkit::kernels::detail::avx512::vec::F32;
using rnnkit::kernels::detail::vec_math::sigmoid_v;
using rnnkit::kernels::detail::vec_math::tanh_v;

constexpr i64 kH = 128, kI = 128, kN = 4 * kH, kPanel = 16, kSteps = 100;

// The cell on one register of units: gates (4 blocks kH apart) read, c updated, h written.
struct CellRegister {
  const float* gates;
  float* c;
  float* h;
};
inline void cell_register(const CellRegister& v) {
  const __m512 i = sigmoid_v<O>(_mm512_loadu_ps(v.gates));
  const __m512 f = sigmoid_v<O>(_mm512_loadu_ps(v.gates + kH));
  const __m512 g = tanh_v<O>(_mm512_loadu_ps(v.gates + 2 * kH));
  const __m512 o = sigmoid_v<O>(_mm512_loadu_ps(v.gates + 3 * kH));
  const __m512 c = _mm512_add_ps(_mm512_mul_ps(f, _mm512_loadu_ps(v.c)), _mm512_mul_ps(i, g));
  _mm512_storeu_ps(v.c, c);
  _mm512_storeu_ps(v.h, _mm512_mul_ps(o, tanh_v<O>(c)));
}

// A tile of R rows x P panels: a (R, kt) rows lda apart, b P panels (kt, 16) bps apart,
// c (R, P*16) rows ldc apart, added to when load_c.
struct Tile {
  const float* a;
  i64 lda;
  const float* b;
  i64 bps;
  float* c;
  i64 ldc;
  i64 kt;
  bool load_c;
};

// One gemv call: y[p] (16,) = x (kc,) times panel b[p] (kc, 16), for NP panels; with R > 0
// also an R x P tile, one tile step every E row steps (1: side by side; 2: a tile half as
// long as the row spread over the whole call). With a cell register, that register's cell
// runs inside the call, its four gates and its state a fifth of the call apart.
template <int NP, int R, int P, int E = 1>
__attribute__((noinline)) void gemv(i64 kc, const float* x, const float* const* b, float* const* y,
                                    const Tile& t, const CellRegister* cell) {
  __m512 acc[NP > 0 ? NP : 1], tacc[R > 0 ? R : 1][P];
  for (int p = 0; p < NP; ++p) acc[p] = _mm512_setzero_ps();
  for (int i = 0; i < R; ++i) {
    for (int q = 0; q < P; ++q) {
      tacc[i][q] = t.load_c ? _mm512_loadu_ps(t.c + i * t.ldc + q * kPanel) : _mm512_setzero_ps();
    }
  }
  auto row_step = [&](i64 k) {
    const __m512 xk = _mm512_set1_ps(x[k]);
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) acc[p] = _mm512_fmadd_ps(xk, _mm512_loadu_ps(b[p] + k * kPanel), acc[p]);
  };
  auto tile_step = [&](i64 k) {
    if constexpr (R > 0) {
      __m512 bk[P];
      for (int q = 0; q < P; ++q) bk[q] = _mm512_loadu_ps(t.b + q * t.bps + k * kPanel);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m512 ai = _mm512_set1_ps(t.a[i * t.lda + k]);
        for (int q = 0; q < P; ++q) tacc[i][q] = _mm512_fmadd_ps(ai, bk[q], tacc[i][q]);
      }
    }
  };
  // The tile's k runs with the row's (E = 1: t.kt = kc) or at half its pace (E = 2:
  // t.kt = kc / 2, kc even); a call with no row (kc = 0) computes the tile alone.
  i64 k = 0, kk = 0;
  auto run_to = [&](i64 stop) {
    if constexpr (E == 1) {
      for (; k < stop; ++k) {
        row_step(k);
        if constexpr (R > 0) tile_step(k);
      }
      kk = k;
    } else {
      for (; k < stop; k += 2) {
        row_step(k);
        tile_step(kk++);
        row_step(k + 1);
      }
    }
  };
  if (cell != nullptr) {
    __m512 g[4];
    for (int q = 0; q < 4; ++q) {
      run_to((q + 1) * kc / 5);
      const __m512 pre = _mm512_loadu_ps(cell->gates + q * kH);
      g[q] = q == 2 ? tanh_v<O>(pre) : sigmoid_v<O>(pre);
    }
    run_to(kc);
    const __m512 c = _mm512_add_ps(_mm512_mul_ps(g[1], _mm512_loadu_ps(cell->c)), _mm512_mul_ps(g[0], g[2]));
    _mm512_storeu_ps(cell->c, c);
    _mm512_storeu_ps(cell->h, _mm512_mul_ps(g[3], tanh_v<O>(c)));
  } else {
    run_to(kc);
  }
  for (; kk < t.kt; ++kk) tile_step(kk);
  for (int p = 0; p < NP; ++p) _mm512_storeu_ps(y[p], acc[p]);
  for (int i = 0; i < R; ++i) {
    for (int q = 0; q < P; ++q) _mm512_storeu_ps(t.c + i * t.ldc + q * kPanel, tacc[i][q]);
  }
}

// The buffers of one 100-step call.
struct Buffers {
  std::vector<float> w_hh = filled(kN * kH, 0.001f), w_ih = filled(kN * kI, 0.002f);
  std::vector<float> x = filled(kSteps * kI, 0.1f), gates = filled(kSteps * kN, 0.f);
  std::vector<float> h = filled(2 * kH, 0.01f), c = filled(kH, 0.f), y = filled(kN, 0.f);
  static std::vector<float> filled(i64 n, float step) {
    std::vector<float> v(n);
    for (i64 i = 0; i < n; ++i) v[i] = step * float(i % 7);
    return v;
  }
};

template <class F>
double median_us(F&& call_of_100_steps) {
  std::vector<double> times;
  for (int rep = 0; rep < 200; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    call_of_100_steps();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2] * 1e6;
}

// How the projection and the cell go with the step's products.
enum class Cell { none, after_step, inside_next_call, after_step_with_a_tile };

// 100 steps of NP-panel gemv calls (32 / NP a step; odd steps visit them backwards), with
// R x P tiles (k halves when `halves`) on the calls where call % every == every - 1 (the
// calls numbered over groups of 8 steps; 32 tiles of 8 rows x 1 panel per group).
template <int NP, int R, int P>
double products(int every, bool halves = false, Cell cell = Cell::none) {
  Buffers m;
  const int calls = 32 / NP;
  return median_us([&] {
    int piece = 0;
    for (int s = 0; s < kSteps; ++s) {
      const float* hp = m.h.data() + (s % 2) * kH;
      float* hn = m.h.data() + ((s + 1) % 2) * kH;
      int last = -1;  // the unit panel of the previous call (NP = 4)
      for (int n0 = 0; n0 < calls; ++n0) {
        const int n = s % 2 == 0 ? n0 : calls - 1 - n0;
        const float* b[NP];
        float* y[NP];
        for (int j = 0; j < NP; ++j) {
          // NP = 4: unit panel n of each gate block; otherwise NP consecutive panels.
          const int panel = NP == 4 ? j * 8 + n : n * NP + j;
          b[j] = m.w_hh.data() + panel * kH * kPanel;
          y[j] = m.y.data() + panel * kPanel;
        }
        const int call = (s % 8) * calls + n0;
        const bool moved = cell == Cell::after_step_with_a_tile && n0 == calls - 1;
        Tile t{};
        if (R > 0 && call % every == every - 1 && !moved) {
          const int tile = halves ? piece / 2 : piece, rows = 8 / R, panels = 32 / P;
          const int rb = tile % rows, pb = (tile / rows) % panels;
          const i64 k0 = halves ? (piece % 2) * (kI / 2) : 0;
          t = Tile{m.x.data() + rb * R * kI + k0, kI, m.w_ih.data() + (pb * P * kI + k0) * kPanel,
                   kI * kPanel, m.gates.data() + rb * R * kN + pb * P * kPanel, kN,
                   halves ? kI / 2 : kI, halves && piece % 2 == 1};
          ++piece;
        }
        CellRegister inside{m.y.data() + last * kPanel, m.c.data() + last * kPanel,
                            hn + last * kPanel};
        const CellRegister* in_call = cell == Cell::inside_next_call && last >= 0 ? &inside : nullptr;
        if (t.kt > 0 && halves) {
          gemv<NP, R, P, 2>(kH, hp, b, y, t, in_call);
        } else if (t.kt > 0) {
          gemv<NP, R, P>(kH, hp, b, y, t, in_call);
        } else {
          gemv<NP, 0, 1>(kH, hp, b, y, t, in_call);
        }
        last = n;
      }
      if (cell == Cell::after_step_with_a_tile) {  // a tile alone, then the cell
        const int pb = (piece++) % 32;
        const Tile t{m.x.data(), kI, m.w_ih.data() + pb * kI * kPanel, kI * kPanel,
                     m.gates.data() + pb * kPanel, kN, kI, false};
        float* const none[1] = {m.y.data()};
        const float* const no_panel[1] = {m.w_hh.data()};
        gemv<0, 8, 1>(0, hp, no_panel, none, t, nullptr);
      }
      if (cell == Cell::inside_next_call) {
        cell_register({m.y.data() + last * kPanel, m.c.data() + last * kPanel, hn + last * kPanel});
      } else if (cell != Cell::none) {
        for (int u = 0; u < 8; ++u) {
          cell_register({m.y.data() + u * kPanel, m.c.data() + u * kPanel, hn + u * kPanel});
        }
      }
    }
  });
}

__attribute__((noinline)) __m512 fma_loop(i64 n, __m512 x) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(float(i));
  for (i64 k = 0; k < n; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(x, a[i], x);
  }
  for (int i = 1; i < 12; ++i) a[0] = _mm512_add_ps(a[0], a[i]);
  return a[0];
}

}  // namespace

int main() {
  const i64 n = 10000000;
  const auto t0 = std::chrono::steady_clock::now();
  const __m512 sink = fma_loop(n, _mm512_set1_ps(0.5f));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("512-bit FMAs per ns (12 independent chains): %.2f (%g)\n", 12 * n / s * 1e-9,
              double(_mm512_cvtss_f32(sink)));
  {
    Buffers m;
    const Tile t{m.x.data(), kI, m.w_ih.data(), kI * kPanel, m.gates.data(), kN, kI, false};
    float* const none[1] = {m.y.data()};
    const float* const no_panel[1] = {m.w_hh.data()};
    const double us = median_us([&] {
      for (int j = 0; j < kSteps; ++j) gemv<0, 8, 1>(0, m.h.data(), no_panel, none, t, nullptr);
    });
    std::printf("one tile alone (8 rows x 16 columns x 128, weights in L1): %.3f us\n", us / kSteps);
  }
  std::printf("products only (per 100 steps):\n");
  std::printf("  gemv, 1 / 2 / 4 / 8 panels a call:  %.0f / %.0f / %.0f / %.0f\n",
              products<1, 0, 1>(1 << 20), products<2, 0, 1>(1 << 20), products<4, 0, 1>(1 << 20),
              products<8, 0, 1>(1 << 20));
  std::printf("  with the projection, 4 panels a call:\n");
  std::printf("    8 x 1 tile every 2nd call (the library's):     %.0f\n", products<4, 8, 1>(2));
  std::printf("    8 x 1 tile, its k halves on every call:       %.0f\n", products<4, 8, 1>(1, true));
  std::printf("    4 x 1 tile every call:                        %.0f\n", products<4, 4, 1>(1));
  std::printf("    4 x 2 tile every 2nd call:                    %.0f\n", products<4, 4, 2>(2));
  std::printf("    8 x 2 tile every 4th call:                    %.0f\n", products<4, 8, 2>(4));
  std::printf("  with the projection, 2 panels a call, 8 x 1 tile every 4th: %.0f\n",
              products<2, 8, 1>(4));
  std::printf("products, 8 x 1 tiles on every 2nd call, and the cell:\n");
  std::printf("  no cell %.0f | after the step (the library's) %.0f | each panel's inside the next "
              "call %.0f | after the step, one tile a step moved next to it %.0f\n",
              products<4, 8, 1>(2), products<4, 8, 1>(2, false, Cell::after_step),
              products<4, 8, 1>(2, false, Cell::inside_next_call),
              products<4, 8, 1>(2, false, Cell::after_step_with_a_tile));
}
