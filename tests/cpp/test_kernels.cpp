// C++ tests of the kernel layer (gemm.h, activations.h, isa.h). Built with
// -DRNNKIT_BUILD_TESTS=ON, run with ctest (or directly). Prints one line per failure and
// a closing "N passed, M failed" line; exits non-zero on any failure.
//
// The GEMM checks are exact: each ISA documents its reduction order (gemm.h), and this
// file recomputes every element in that order (std::fma for the fused ISA) and demands
// the same bits. That is what makes results independent of tiles, blocking and threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "rnnkit/activations.h"
#include "rnnkit/gemm.h"
#include "rnnkit/isa.h"
#include "rnnkit/threads.h"

namespace k = rnnkit::kernels;
using i64 = std::int64_t;

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

template <typename T>
const char* tname() {
  return sizeof(T) == 4 ? "float" : "double";
}

template <typename T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T>
std::vector<T> random_vec(std::size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<T> d(-1, 1);
  std::vector<T> v(n);
  for (T& x : v) x = d(gen);
  return v;
}

// A GEMM problem with leading dimensions larger than the rows need.
template <typename T>
struct Problem {
  std::string kind;
  i64 M, N, K, lda, ldb, ldc;
  std::vector<T> A, B, C0;
  // op(A)(i, k) and op(B)(k, n) per gemm.h.
  T a(i64 i, i64 kk) const { return kind == "tn" ? A[kk * lda + i] : A[i * lda + kk]; }
  T b(i64 kk, i64 n) const { return kind == "nt" ? B[n * ldb + kk] : B[kk * ldb + n]; }
};

template <typename T>
Problem<T> make_problem(const std::string& kind, i64 M, i64 N, i64 K, std::mt19937& gen) {
  Problem<T> p{kind, M, N, K, 0, 0, N + 3, {}, {}, {}};
  const i64 arows = kind == "tn" ? K : M, acols = kind == "tn" ? M : K;
  const i64 brows = kind == "nt" ? N : K, bcols = kind == "nt" ? K : N;
  p.lda = acols + 2;
  p.ldb = bcols + 5;
  p.A = random_vec<T>(static_cast<std::size_t>(std::max<i64>(arows, 1) * p.lda), gen);
  p.B = random_vec<T>(static_cast<std::size_t>(std::max<i64>(brows, 1) * p.ldb), gen);
  p.C0 = random_vec<T>(static_cast<std::size_t>(std::max<i64>(M, 1) * p.ldc), gen);
  return p;
}

template <typename T>
std::vector<T> run(const Problem<T>& p, bool accumulate) {
  std::vector<T> C = p.C0;
  const T* A = p.A.data();
  const T* B = p.B.data();
  if (p.kind == "nt") k::gemm_nt<T>(p.M, p.N, p.K, A, p.lda, B, p.ldb, C.data(), p.ldc, accumulate);
  if (p.kind == "nn") k::gemm_nn<T>(p.M, p.N, p.K, A, p.lda, B, p.ldb, C.data(), p.ldc, accumulate);
  if (p.kind == "tn") k::gemm_tn<T>(p.M, p.N, p.K, A, p.lda, B, p.ldb, C.data(), p.ldc, accumulate);
  return C;
}

// The documented reduction order of the current ISA, element by element.
template <typename T>
std::vector<T> expected(const Problem<T>& p, bool accumulate) {
  std::vector<T> C = p.C0;
  const bool fused = k::current_isa() != k::Isa::plain;
  for (i64 i = 0; i < p.M; ++i) {
    for (i64 n = 0; n < p.N; ++n) {
      T& c = C[i * p.ldc + n];
      if (fused) {
        T s = accumulate ? c : T(0);
        for (i64 kk = 0; kk < p.K; ++kk) s = std::fma(p.a(i, kk), p.b(kk, n), s);
        c = s;
      } else {
        T s = 0;
        for (i64 kk = 0; kk < p.K; ++kk) {
          volatile T prod = p.a(i, kk) * p.b(kk, n);  // rounded product, then the add
          s = s + prod;
        }
        c = accumulate ? c + s : s;
      }
    }
  }
  return C;
}

template <typename T>
bool equal_bits(const std::vector<T>& x, const std::vector<T>& y) {
  if (x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!same_bits(x[i], y[i])) return false;
  }
  return true;
}

template <typename T>
void test_gemm_exact(std::mt19937& gen) {
  // Sizes around the tile sizes (6 rows, 16/8 columns), the KC=512 blocking and the
  // thread threshold, and the degenerate ones.
  const i64 sizes[][3] = {{0, 5, 3},  {4, 0, 3},    {3, 5, 0},   {1, 1, 1},    {7, 7, 7},
                          {6, 16, 8}, {5, 17, 300}, {13, 33, 9}, {1, 97, 65},  {2, 50, 3},
                          {3, 40, 31}, {37, 70, 530}, {64, 96, 40}, {150, 24, 520}, {8, 9, 513}};
  for (const std::string kind : {"nt", "nn", "tn"}) {
    for (const auto& s : sizes) {
      const Problem<T> p = make_problem<T>(kind, s[0], s[1], s[2], gen);
      for (bool acc : {false, true}) {
        const std::string what = std::string(k::isa_name()) + " " + tname<T>() + " gemm_" +
                                 kind + " M=" + std::to_string(s[0]) + " N=" +
                                 std::to_string(s[1]) + " K=" + std::to_string(s[2]) +
                                 (acc ? " accumulate" : "");
        check(equal_bits(run(p, acc), expected(p, acc)), what + ": bits of the documented order");
      }
    }
  }
}

template <typename T>
void test_packed(std::mt19937& gen) {
  const i64 sizes[][3] = {{1, 40, 17},  {5, 100, 600}, {32, 64, 128},
                          {7, 3, 2},    {64, 130, 70}, {1, 2000, 300}};
  for (const std::string kind : {"nt", "nn"}) {
    for (const auto& s : sizes) {
      const Problem<T> p = make_problem<T>(kind, s[0], s[1], s[2], gen);
      k::PackedB<T> packed;
      if (kind == "nt") packed.pack_nt(p.N, p.K, p.B.data(), p.ldb);
      else packed.pack_nn(p.K, p.N, p.B.data(), p.ldb);
      for (bool acc : {false, true}) {
        const std::vector<T> ref = run(p, acc);
        std::vector<T> C = p.C0;
        k::gemm_packed<T>(p.M, p.A.data(), p.lda, packed, C.data(), p.ldc, acc);
        const std::string what = std::string(k::isa_name()) + " " + tname<T>() +
                                 " gemm_packed(" + kind + ") M=" + std::to_string(s[0]) +
                                 " N=" + std::to_string(s[1]) + " K=" + std::to_string(s[2]);
        check(equal_bits(C, ref), what + ": same bits as gemm_" + kind);
        // Column slices that cut panels anywhere, computed one after another.
        std::vector<T> D = p.C0;
        const i64 cuts[] = {0, p.N / 3, p.N / 3 + 1, (2 * p.N) / 3 + 5, p.N};
        for (int c = 0; c + 1 < 5; ++c) {
          const i64 lo = std::min(cuts[c], p.N), hi = std::min(cuts[c + 1], p.N);
          k::gemm_packed_cols<T>(p.M, lo, std::max(lo, hi), p.A.data(), p.lda, packed, D.data(),
                                 p.ldc, acc);
        }
        check(equal_bits(D, ref), what + ": column slices give the same bits");
      }
    }
  }
}

// gemv_panels, with and without its tile: each panel's columns (and the tile's) the bits
// gemm_packed gives them, for every panel count, accumulate mask and tile height, K of the
// tile below, equal to and above the row's, and K past the GEMM's k blocking (512).
template <typename T>
void test_gemv_panels(std::mt19937& gen) {
  constexpr i64 NR = k::PackedB<T>::kPanel;
  const i64 sizes[][3] = {{70, 5, 5}, {64, 33, 130}, {48, 600, 17}, {128, 128, 128}};
  for (const auto& s : sizes) {
    const i64 N = s[0], K = s[1], K2 = s[2], panels = (N + NR - 1) / NR;
    const std::vector<T> W = random_vec<T>(static_cast<std::size_t>(N * K), gen);
    const std::vector<T> W2 = random_vec<T>(static_cast<std::size_t>(N * K2), gen);
    const std::vector<T> x = random_vec<T>(static_cast<std::size_t>(K), gen);
    const std::vector<T> A = random_vec<T>(static_cast<std::size_t>(k::kGemvTileMaxRows * K2), gen);
    k::PackedB<T> Bp, Bt;
    Bp.pack_nt(N, K, W.data(), K);
    Bt.pack_nt(N, K2, W2.data(), K2);
    // The expected values: gemm_packed on the whole row (N padded to whole panels) and on
    // the tile's rows.
    const i64 ld = panels * NR;
    const std::vector<T> y0 = random_vec<T>(static_cast<std::size_t>(ld), gen);
    std::vector<T> with_acc = y0, without(static_cast<std::size_t>(ld), T(0));
    k::gemm_packed<T>(1, x.data(), K, Bp, with_acc.data(), ld, true);
    k::gemm_packed<T>(1, x.data(), K, Bp, without.data(), ld, false);
    std::vector<T> tile_ref(static_cast<std::size_t>(k::kGemvTileMaxRows * ld), T(0));
    k::gemm_packed<T>(k::kGemvTileMaxRows, A.data(), K2, Bt, tile_ref.data(), ld, false);
    for (int count = 1; count <= k::kGemvMaxPanels; ++count) {
      for (int rows : {0, 1, 3, k::kGemvTileMaxRows}) {  // 0: no tile
        const unsigned mask = 0x5u;  // panels 0 and 2 accumulated, 1 and 3 not
        std::vector<T> y = y0;
        std::vector<T> c(static_cast<std::size_t>(k::kGemvTileMaxRows * ld), T(-7));
        i64 panel[k::kGemvMaxPanels];
        T* out[k::kGemvMaxPanels];
        for (int j = 0; j < count; ++j) {
          panel[j] = panels - 1 - j;  // backwards
          out[j] = y.data() + panel[j] * NR;
        }
        if (count > panels) continue;  // one output per panel
        const i64 tile_panel = (count * 3) % panels;
        const k::GemvTile<T> tile{A.data(), K2, rows, &Bt, tile_panel, c.data() + tile_panel * NR,
                                  ld};
        k::gemv_panels<T>(x.data(), Bp, count, panel, out, mask, rows > 0 ? &tile : nullptr);
        bool ok = true;
        for (int j = 0; j < count; ++j) {
          const std::vector<T>& ref = (mask >> j) & 1u ? with_acc : without;
          for (i64 n = 0; n < NR; ++n) ok = ok && same_bits(out[j][n], ref[panel[j] * NR + n]);
        }
        for (int i = 0; i < rows; ++i) {
          for (i64 n = 0; n < NR; ++n) {
            const auto at = static_cast<std::size_t>(i * ld + tile_panel * NR + n);
            ok = ok && same_bits(c[at], tile_ref[at]);
          }
        }
        check(ok, std::string(k::isa_name()) + " " + tname<T>() + " gemv_panels N=" +
                      std::to_string(N) + " K=" + std::to_string(K) + " K2=" + std::to_string(K2) +
                      " count=" + std::to_string(count) + " rows=" + std::to_string(rows) +
                      ": same bits as gemm_packed");
      }
    }
  }
}

template <typename T>
void test_threads(std::mt19937& gen) {
  if (!rnnkit::have_threads()) return;
  const i64 sizes[][3] = {{96, 200, 64}, {300, 20, 100}, {20, 700, 50}, {129, 129, 257},
                          {1, 2000, 300}};
  const int saved = rnnkit::get_num_threads();
  for (const std::string kind : {"nt", "nn", "tn"}) {
    for (const auto& s : sizes) {
      const Problem<T> p = make_problem<T>(kind, s[0], s[1], s[2], gen);
      rnnkit::set_num_threads(1);
      const std::vector<T> one = run(p, true);
      for (int t : {2, 3, 4}) {
        rnnkit::set_num_threads(t);
        check(equal_bits(run(p, true), one), std::string(k::isa_name()) + " " + tname<T>() +
                                                  " gemm_" + kind + " " + std::to_string(t) +
                                                  " threads: same bits as 1 thread");
      }
    }
  }
  rnnkit::set_num_threads(saved);
}

template <typename T>
void test_activations(std::mt19937& gen) {
  const std::string isa = k::isa_name();
  std::vector<T> x;
  std::uniform_real_distribution<double> d(-30, 30);
  for (int i = 0; i < 4000; ++i) x.push_back(static_cast<T>(d(gen)));
  for (int i = -200; i <= 200; ++i) x.push_back(static_cast<T>(i * 0.01));
  const T inf = std::numeric_limits<T>::infinity();
  const T specials[] = {T(0), -T(0), T(1e-30), T(-1e-30), T(1e4), T(-1e4), inf, -inf,
                        std::numeric_limits<T>::denorm_min(), T(88), T(-88), T(700), T(-700)};
  for (T v : specials) x.push_back(v);
  const i64 n = static_cast<i64>(x.size());
  std::vector<T> s(x.size()), t(x.size());
  k::sigmoid<T>(n, x.data(), s.data());
  k::tanh<T>(n, x.data(), t.data());
  // activations.h: within 3 ulp of the exact value (ulp = spacing of T at the result).
  auto ulps = [](T y, long double ref) {
    const T r = static_cast<T>(ref);
    const T mag = std::fabs(r);
    const long double ulp = std::nextafter(mag, std::numeric_limits<T>::infinity()) - mag;
    return double(std::fabs(y - ref) / ulp);
  };
  double worst_s = 0, worst_t = 0;
  for (i64 i = 0; i < n; ++i) {
    const long double xi = x[i];
    const long double ref_s = xi >= 0 ? 1.0L / (1.0L + std::exp(-xi))
                                      : std::exp(xi) / (1.0L + std::exp(xi));
    worst_s = std::max(worst_s, ulps(s[i], ref_s));
    worst_t = std::max(worst_t, ulps(t[i], std::tanh(xi)));
  }
  check(worst_s <= 3.0, isa + " " + tname<T>() + " sigmoid within 3 ulp (worst " +
                            std::to_string(worst_s) + ")");
  check(worst_t <= 3.0, isa + " " + tname<T>() + " tanh within 3 ulp (worst " +
                            std::to_string(worst_t) + ")");
  // Exact values at the ends and signs of zero.
  T in[] = {T(1e4), T(-1e4), inf, -inf, T(0), -T(0)};
  T out_t[6], out_s[6];
  k::tanh<T>(6, in, out_t);
  k::sigmoid<T>(6, in, out_s);
  check(out_t[0] == 1 && out_t[1] == -1 && out_t[2] == 1 && out_t[3] == -1,
        isa + " " + tname<T>() + " tanh(+-1e4), tanh(+-inf) = +-1");
  check(!std::signbit(out_t[4]) && std::signbit(out_t[5]) && out_t[4] == 0 && out_t[5] == 0,
        isa + " " + tname<T>() + " tanh(+-0) = +-0");
  check(out_s[0] == 1 && out_s[1] == 0 && out_s[2] == 1 && out_s[3] == 0 && out_s[4] == T(0.5),
        isa + " " + tname<T>() + " sigmoid(1e4) = 1, sigmoid(-1e4) = 0, sigmoid(0) = 0.5");
  T nan_in[3] = {std::numeric_limits<T>::quiet_NaN(), T(1), -std::numeric_limits<T>::quiet_NaN()};
  T nan_out[3];
  k::tanh<T>(3, nan_in, nan_out);
  check(std::isnan(nan_out[0]) && std::isnan(nan_out[2]) && !std::isnan(nan_out[1]),
        isa + " " + tname<T>() + " tanh propagates NaN");
  k::sigmoid<T>(3, nan_in, nan_out);
  check(std::isnan(nan_out[0]) && std::isnan(nan_out[2]) && !std::isnan(nan_out[1]),
        isa + " " + tname<T>() + " sigmoid propagates NaN");
  // Position independence: every offset and length gives each element the same bits.
  bool same = true;
  for (i64 off = 0; off < 9; ++off) {
    for (i64 len = 0; len + off <= 40; ++len) {
      std::vector<T> ys(static_cast<std::size_t>(len)), yt(static_cast<std::size_t>(len));
      k::sigmoid<T>(len, x.data() + off, ys.data());
      k::tanh<T>(len, x.data() + off, yt.data());
      for (i64 i = 0; i < len; ++i) {
        same = same && same_bits(ys[i], s[off + i]) && same_bits(yt[i], t[off + i]);
      }
    }
  }
  check(same, isa + " " + tname<T>() + " activations: bits independent of position and length");
  // In place (y aliases x).
  std::vector<T> inplace(x.begin(), x.begin() + 37);
  k::tanh<T>(37, inplace.data(), inplace.data());
  check(equal_bits(inplace, std::vector<T>(t.begin(), t.begin() + 37)),
        isa + " " + tname<T>() + " tanh in place");
}

void test_isa_selection() {
  bool threw = false;
  try {
    k::set_isa("sse9");
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "set_isa rejects an unknown name");
  for (k::Isa isa : {k::Isa::avx2, k::Isa::avx512}) {
    const std::string name = k::isa_name(isa);
    threw = false;
    try {
      k::set_isa(name);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    check(threw != k::isa_available(isa), "set_isa('" + name + "') throws iff unavailable");
  }
  k::set_isa("plain");
  check(std::string(k::isa_name()) == "plain", "set_isa('plain') selects plain");
  k::set_isa("auto");
  check(k::current_isa() == k::best_isa(), "set_isa('auto') selects the best ISA");
}

}  // namespace

int main() {
  std::mt19937 gen(1234);
  test_isa_selection();
  const std::vector<std::string> available = k::available_isas();
  for (const std::string& isa : k::compiled_isas()) {
    if (std::find(available.begin(), available.end(), isa) == available.end()) {
      std::printf("note: ISA %s is compiled but this CPU cannot run it\n", isa.c_str());
      continue;
    }
    k::set_isa(isa);
    test_gemm_exact<float>(gen);
    test_gemm_exact<double>(gen);
    test_packed<float>(gen);
    test_packed<double>(gen);
    test_gemv_panels<float>(gen);
    test_gemv_panels<double>(gen);
    test_threads<float>(gen);
    test_threads<double>(gen);
    test_activations<float>(gen);
    test_activations<double>(gen);
  }
  k::set_isa("auto");
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
