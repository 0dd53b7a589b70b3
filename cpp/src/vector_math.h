// Sigmoid and tanh of one register (sigmoid_v, tanh_v), written once for every vector
// ISA: each function is a template over an ISA's operations struct O (vector_math_avx2.h:
// 8 floats / 4 doubles; vector_math_avx512.h: 16 / 8), which supplies
//   T, V (element and register types), L (lanes), the constants of Constants<T>, and
//   set, load, store, add, sub, mul, div, fma, fnma, max, and_, or_, pow2, sign_mask,
//   abs_mask, lt, le, isnan (comparisons give a mask), blend(a, b, mask), all(mask).
// Every lane runs the same operations in the same order whatever the register width, so
// an element's bits are the same under every ISA. Internal: included only by translation
// units compiled with -ffp-contract=off (the vector kernels), and every function here
// depends on O, so units compiled for different ISAs never share a compiled copy.
//
// Both reduce to e^u for u = -|x| <= 0 (or u = -2|x|), which never overflows:
//   n = round(u / ln2), r = u - n*ln2 (two FMAs, ln2 split in hi + lo), |r| <= ln2/2
//   em = expm1(r) = r + r^2 * q(r), q the Taylor polynomial of (e^r - 1 - r)/r^2
//        (degree 13 in r for double: truncation < 2e-17 relative; degree 8 for float),
//        evaluated by Estrin's scheme
//   sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, where
//                e = e^-|x| = 2^n * (1 + em) (scaled in two steps in the subnormal range)
//   tanh(x)    = sign(x) * (-t / (t + 2)) with t = expm1(-2|x|) = 2^n * em + (2^n - 1)
//                for |x| < 0.55, sign(x) * (1 - 2e / (1 + e)) with e = e^-2|x| above
// The inputs are clamped where the result no longer changes (e^u below half the smallest
// subnormal; expm1(u) = -1 exactly), so tanh(+-1e4) = +-1 and sigmoid(-1e4) = 0. NaN
// inputs are passed through. Each lane is computed on its own: an element's bits never
// depend on its neighbours.
#pragma once

namespace rnnkit::kernels::detail::vec_math {

// The scalar constants of the reduction and the polynomial, per element type.
template <typename T>
struct Constants;

template <>
struct Constants<float> {
  static constexpr float log2e = 1.44269502162933349609375f;  // nearest float to 1/ln2
  static constexpr float ln2_hi = 0.693147182464599609375f;   // nearest float to ln2
  static constexpr float ln2_lo = -1.904654323148236e-09f;    // ln2 - ln2_hi
  static constexpr float round_magic = 12582912.0f;           // 1.5 * 2^23
  static constexpr float exp_min = -104.0f;    // e^-104 < 2^-150: rounds to 0
  static constexpr float expm1_min = -20.0f;   // e^-20 < 2^-26: expm1 rounds to -1
  static constexpr float sub_n = -100.0f;      // below: scale by 2^n in two steps
  static constexpr float tame = 64.0f;         // |x| <= tame: n >= -93 > sub_n
  static constexpr float sub_scale = 64.0f;
  static constexpr float sub_unscale = 5.42101086242752217e-20f;  // 2^-64
  static constexpr int kPoly = 7;  // 1/2!, ..., 1/8!
  static constexpr float poly[kPoly] = {1.0f / 2,    1.0f / 6,    1.0f / 24,    1.0f / 120,
                                         1.0f / 720,  1.0f / 5040, 1.0f / 40320};
};

template <>
struct Constants<double> {
  static constexpr double log2e = 1.4426950408889634074;     // nearest double to 1/ln2
  static constexpr double ln2_hi = 0.69314718055994528623;   // nearest double to ln2
  static constexpr double ln2_lo = 2.319046813846299558e-17;  // ln2 - ln2_hi
  static constexpr double round_magic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double exp_min = -746.0;   // e^-746 < 2^-1075: rounds to 0
  static constexpr double expm1_min = -40.0;  // e^-40 < 2^-54: expm1 rounds to -1
  static constexpr double sub_n = -1000.0;
  static constexpr double tame = 640.0;  // n >= -924 > sub_n
  static constexpr double sub_scale = 128.0;
  static constexpr double sub_unscale = 2.93873587705571876992e-39;  // 2^-128
  static constexpr int kPoly = 12;  // 1/2!, ..., 1/13!
  static constexpr double poly[kPoly] = {
      1.0 / 2,         1.0 / 6,          1.0 / 24,          1.0 / 120,
      1.0 / 720,       1.0 / 5040,       1.0 / 40320,       1.0 / 362880,
      1.0 / 3628800,   1.0 / 39916800,   1.0 / 479001600,   1.0 / 6227020800};
};

// q(r) = sum_i poly[i] r^i by Estrin's scheme (pairs, then pairs of pairs): a shorter
// dependency chain than Horner's rule, which keeps more vectors in flight.
template <class O>
inline typename O::V poly_q(typename O::V r, typename O::V r2) {
  using V = typename O::V;
  const V r4 = O::mul(r2, r2);
  if constexpr (O::kPoly == 7) {
    const V p0 = O::fma(O::set(O::poly[1]), r, O::set(O::poly[0]));
    const V p1 = O::fma(O::set(O::poly[3]), r, O::set(O::poly[2]));
    const V p2 = O::fma(O::set(O::poly[5]), r, O::set(O::poly[4]));
    const V q0 = O::fma(p1, r2, p0);
    const V q1 = O::fma(O::set(O::poly[6]), r2, p2);
    return O::fma(q1, r4, q0);
  } else {
    static_assert(O::kPoly == 12, "poly_q: degree 8 (float) or 13 (double)");
    const V r8 = O::mul(r4, r4);
    V p[6];
    for (int i = 0; i < 6; ++i) p[i] = O::fma(O::set(O::poly[2 * i + 1]), r, O::set(O::poly[2 * i]));
    const V q0 = O::fma(p[1], r2, p[0]);
    const V q1 = O::fma(p[3], r2, p[2]);
    const V q2 = O::fma(p[5], r2, p[4]);
    return O::fma(q2, r8, O::fma(q1, r4, q0));
  }
}

// u <= 0 (finite) -> n = round(u / ln2) and em = expm1(u - n*ln2).
template <class O>
inline void expm1_reduce(typename O::V u, typename O::V& n, typename O::V& em) {
  using V = typename O::V;
  const V magic = O::set(O::round_magic);
  // Adding 1.5 * 2^(mantissa bits) rounds to an integer; the fused multiply-add rounds
  // once, so n may be the other neighbour of a tie: |r| <= ln2/2 (1 + 2^-20) still.
  n = O::sub(O::fma(u, O::set(O::log2e), magic), magic);
  V r = O::fnma(n, O::set(O::ln2_hi), u);
  r = O::fnma(n, O::set(O::ln2_lo), r);
  const V r2 = O::mul(r, r);
  em = O::fma(r2, poly_q<O>(r, r2), r);
}

// Most inputs are "tame": |x| <= O::tame and not NaN. For a vector of tame inputs the
// clamps, the two-step subnormal scaling and the NaN pass-through are no-ops, and
// skipping them (one test per vector) saves their instructions, with the same bits.
template <class O>
inline typename O::V sigmoid_v(typename O::V x) {
  using V = typename O::V;
  const V one = O::set(1);
  const V ax = O::and_(x, O::abs_mask());
  if (O::all(O::le(ax, O::set(O::tame)))) {
    V n, em;
    expm1_reduce<O>(O::or_(ax, O::sign_mask()), n, em);  // u = -|x|
    const V s = O::pow2(n);
    const V e = O::fma(s, em, s);
    return O::div(O::blend(one, e, O::lt(x, O::set(0))), O::add(one, e));
  }
  // u = -|x|, clamped (a NaN becomes the clamp value; it is restored at the end).
  const V u = O::max(O::or_(ax, O::sign_mask()), O::set(O::exp_min));
  V n, em;
  expm1_reduce<O>(u, n, em);
  // e = 2^n (1 + em); when 2^n is subnormal, scale by 2^(n+s) then 2^-s.
  const auto deep = O::lt(n, O::set(O::sub_n));
  const V s1 = O::pow2(O::add(n, O::blend(O::set(0), O::set(O::sub_scale), deep)));
  const V s2 = O::blend(one, O::set(O::sub_unscale), deep);
  const V e = O::mul(O::fma(s1, em, s1), s2);
  const V num = O::blend(one, e, O::lt(x, O::set(0)));
  const V y = O::div(num, O::add(one, e));
  return O::blend(y, x, O::isnan(x));
}

template <class O>
inline typename O::V tanh_v(typename O::V x) {
  using V = typename O::V;
  const V one = O::set(1);
  const V ax = O::and_(x, O::abs_mask());
  // Tame (|x| <= -expm1_min / 2, not NaN): the clamp and the NaN pass-through are no-ops.
  const bool tame = O::all(O::le(ax, O::set(O::expm1_min * -0.5)));
  const V u2 = O::mul(ax, O::set(-2));
  const V u = tame ? u2 : O::max(u2, O::set(O::expm1_min));
  V n, em;
  expm1_reduce<O>(u, n, em);
  const V s = O::pow2(n);
  const V t = O::fma(s, em, O::sub(s, one));  // e^u - 1 in [-1, 0]
  const V e = O::fma(s, em, s);               // e^u in (0, 1]
  // tanh|x| = -t / (t + 2) = 1 - 2e / (1 + e): the first for |x| < 0.55 (no cancellation
  // in t), the second above (the quotient is small next to 1, so its rounding shrinks).
  const auto small = O::lt(ax, O::set(0.55));
  const V num = O::blend(O::add(e, e), O::sub(O::set(0), t), small);
  const V den = O::blend(O::add(one, e), O::add(t, O::set(2)), small);
  const V q = O::div(num, den);
  const V y = O::blend(O::sub(one, q), q, small);  // tanh|x| >= 0
  const V r = O::or_(y, O::and_(x, O::sign_mask()));
  return tame ? r : O::blend(r, x, O::isnan(x));
}

}  // namespace rnnkit::kernels::detail::vec_math
