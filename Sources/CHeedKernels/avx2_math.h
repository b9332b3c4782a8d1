// Vectorised transcendental functions for the AVX2+FMA kernels (8 floats per call).
//
// Included only by kernels_avx2.c. Every function is `static inline` with
// target("avx2,fma") so it inlines into the kernels of that file and nowhere
// else; nothing here is compiled for a CPU without AVX2.
//
// All polynomial coefficients were fitted for this file by
// Benchmarks/scripts/fit_kernels.py: a discrete minimax fit of the *relative*
// error (Lawson's reweighted least squares, the discrete equivalent of a Remez
// exchange) against 50-digit mpmath values, then rounded to float and
// re-checked. The measured end-to-end errors are asserted in
// Tests/HeedTensorTests/KernelTests.swift; `HeedBenchmarks accuracy` sweeps all
// 2^32 inputs of exp.
#ifndef HEED_AVX2_MATH_H
#define HEED_AVX2_MATH_H

#include <immintrin.h>
#include <stdint.h>

#define HEED_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

HEED_AVX2_INLINE __m256 v_set(float c) { return _mm256_set1_ps(c); }
HEED_AVX2_INLINE __m256 v_sign_bit(void) { return _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)); }
HEED_AVX2_INLINE __m256 v_abs(__m256 x) { return _mm256_andnot_ps(v_sign_bit(), x); }
/// |y| with the sign of x (copysign).
HEED_AVX2_INLINE __m256 v_copysign(__m256 y, __m256 x) {
    return _mm256_or_ps(v_abs(y), _mm256_and_ps(v_sign_bit(), x));
}
/// Lanes where `mask` is set take `b`, the others `a`.
HEED_AVX2_INLINE __m256 v_select(__m256 mask, __m256 b, __m256 a) { return _mm256_blendv_ps(a, b, mask); }
/// 2^n for integer lanes with -126 <= n <= 127, built in the exponent field.
HEED_AVX2_INLINE __m256 v_pow2i(__m256i n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

// MARK: exp

// Cody–Waite split of ln 2 (W. J. Cody and W. Waite, "Software Manual for the
// Elementary Functions", 1980): LN2_HI has 16 significant bits, so n·LN2_HI is
// exact for |n| <= 2^8, and LN2_LO carries the rest of ln 2.
#define HEED_LN2_HI 0x1.62e4p-1f          // 0.693145751953125
#define HEED_LN2_LO 0x1.7f7d1cp-20f       // ln 2 − LN2_HI ≈ 1.4286068e-6
#define HEED_LOG2E 0x1.715476p+0f

// Polynomial coefficients, highest degree first (Horner's scheme), shared by
// the AVX2 functions here and their AVX-512 versions (avx512_math.h).
static const float heed_exp_q[5] = {0x1.6c69f2p-10f, 0x1.120b1cp-7f, 0x1.5555bap-5f, 0x1.5554dep-3f, 0.5f};
static const float heed_erf_small[7] = {0x1.5e9564p-14f, -0x1.aba486p-11f, 0x1.550e64p-8f, -0x1.b8196ap-6f,
                                        0x1.ce2eb6p-4f,  -0x1.812746p-2f,  -0x1.f7ac92p-25f};
static const float heed_erfc_tail[13] = {-0x1.2c4b40p-1f, 0x1.2e443ap+2f, -0x1.de2b04p+3f, 0x1.999d66p+4f,
                                         -0x1.a382eep+4f, 0x1.fb8224p+3f, -0x1.2e4754p+2f, 0x1.31edbep-2f,
                                         -0x1.bc711ap-2f, 0x1.30ddd0p-2f, 0x1.205508p-1f,  0x1.20e2c0p-1f,
                                         -0x1.72bb50p-21f};

/// q(r) ≈ (e^r − 1 − r)/r² on |r| <= ln2/2 (degree 4, relative error 1.3e-7
/// in q, which reaches e^r scaled by r²/2 <= 0.06, i.e. below 1e-8).
HEED_AVX2_INLINE __m256 v_exp_q(__m256 r) {
    __m256 q = v_set(heed_exp_q[0]);
    for (int i = 1; i < 5; i++) q = _mm256_fmadd_ps(q, r, v_set(heed_exp_q[i]));
    return q;
}

/// e^x, at most 2 ulp from the correctly rounded result over the whole float
/// range (measured maximum: see KernelTests / `HeedBenchmarks accuracy`).
///
///     n = round(x / ln 2),   r = x − n·ln 2        (Cody–Waite, |r| <= ln2/2)
///     e^x = 2^n · (1 + r + r²·q(r))
///
/// 2^n is applied in two halves, 2^(n − ⌊n/2⌋) · 2^⌊n/2⌋, each a normal float:
/// the first product is exact and the second rounds once, so results in the
/// subnormal range (x < −87.34) are rounded correctly from the polynomial and
/// n = 128 (x just below the overflow threshold 88.72) needs no special case.
/// x is clamped to [−104, 89] first: e^−104 is below half the smallest
/// subnormal and rounds to 0, e^89 overflows to inf, as they must. NaN passes
/// the clamp (MINPS/MAXPS return their second operand on NaN) and propagates.
HEED_AVX2_INLINE __m256 v_exp(__m256 x) {
    __m256 xc = _mm256_max_ps(v_set(-104.0f), _mm256_min_ps(v_set(89.0f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, v_set(HEED_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, v_set(HEED_LN2_HI), xc);     // exact
    r = _mm256_fnmadd_ps(n, v_set(HEED_LN2_LO), r);
    __m256 p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), v_exp_q(r), r), v_set(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n);                          // −150 <= n <= 128
    __m256i half = _mm256_srai_epi32(ni, 1);
    __m256 scaled = _mm256_mul_ps(p, v_pow2i(_mm256_sub_epi32(ni, half)));
    return _mm256_mul_ps(scaled, v_pow2i(half));
}

// MARK: tanh and the logistic function

/// tanh x, about 1.5 ulp, in two regimes of a = |x| (then the sign of x):
///
///     tanh a = a + a³·P(a²)          for a < 0.625: odd minimax polynomial,
///                                     P of degree 6 (relative error 3e-8);
///                                     exact relative accuracy down to 0
///     tanh a = 1 − 2e/(1 + e),        e = e^(−2a), for a >= 0.625: the
///                                     subtracted term is < 0.45, so its
///                                     error shrinks in the result
///
/// This is the expm1-free way to avoid the cancellation of 1 − 2/(e^2a + 1)
/// near 0: there the series is both cheaper and more accurate than
/// expm1(2a)/(expm1(2a) + 2), which loses about 2 ulp in the quotient.
/// The exponent is never positive, so nothing overflows; tanh(±0) = ±0,
/// tanh(±inf) = ±1 (e = 0), NaN → NaN.
HEED_AVX2_INLINE __m256 v_tanh(__m256 x) {
    __m256 a = v_abs(x), w = _mm256_mul_ps(a, a);
    __m256 p = v_set(-0x1.c41118p-11f);
    p = _mm256_fmadd_ps(p, w, v_set(0x1.b15c86p-9f));
    p = _mm256_fmadd_ps(p, w, v_set(-0x1.20106ep-7f));
    p = _mm256_fmadd_ps(p, w, v_set(0x1.662710p-6f));
    p = _mm256_fmadd_ps(p, w, v_set(-0x1.ba1a58p-5f));
    p = _mm256_fmadd_ps(p, w, v_set(0x1.111110p-3f));
    p = _mm256_fmadd_ps(p, w, v_set(-0x1.555556p-2f));
    __m256 nearZero = _mm256_fmadd_ps(_mm256_mul_ps(a, w), p, a);
    __m256 e = v_exp(_mm256_mul_ps(a, v_set(-2.0f)));
    __m256 far = _mm256_sub_ps(v_set(1.0f), _mm256_div_ps(_mm256_add_ps(e, e), _mm256_add_ps(e, v_set(1.0f))));
    __m256 small = _mm256_cmp_ps(a, v_set(0.625f), _CMP_LT_OQ);
    return v_copysign(v_select(small, nearZero, far), x);
}

/// σ(x) and σ(−x) = 1 − σ(x), both without cancellation: with e = e^−|x|,
/// σ(|x|) = 1/(1 + e) and σ(−|x|) = e/(1 + e). Never overflows.
HEED_AVX2_INLINE void v_sigmoid_pair(__m256 x, __m256 *s, __m256 *complement) {
    __m256 e = v_exp(_mm256_xor_ps(v_abs(x), v_sign_bit()));
    __m256 d = _mm256_add_ps(e, v_set(1.0f));
    __m256 big = _mm256_div_ps(v_set(1.0f), d), small = _mm256_div_ps(e, d);
    __m256 nonnegative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);   // false for NaN
    *s = v_select(nonnegative, big, small);
    *complement = v_select(nonnegative, small, big);
}

/// σ(x) = 1/(1 + e^−x), the same two-branch stable form as the portable kernel.
HEED_AVX2_INLINE __m256 v_sigmoid(__m256 x) {
    __m256 e = v_exp(_mm256_xor_ps(v_abs(x), v_sign_bit()));
    __m256 nonnegative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_div_ps(v_select(nonnegative, v_set(1.0f), e), _mm256_add_ps(e, v_set(1.0f)));
}

// MARK: log

/// q(f) ≈ (log(1+f) − f + f²/2)/f³ for 1 + f in [√2/2, √2) (degree 8,
/// relative error 7e-8 in q, scaled by f² <= 0.17 in the result).
HEED_AVX2_INLINE __m256 v_log_q(__m256 f) {
    __m256 q = v_set(0x1.20436ep-4f);
    q = _mm256_fmadd_ps(q, f, v_set(-0x1.d7a36ap-4f));
    q = _mm256_fmadd_ps(q, f, v_set(0x1.de4a34p-4f));
    q = _mm256_fmadd_ps(q, f, v_set(-0x1.fcba9ep-4f));
    q = _mm256_fmadd_ps(q, f, v_set(0x1.23d37ep-3f));
    q = _mm256_fmadd_ps(q, f, v_set(-0x1.555ca0p-3f));
    q = _mm256_fmadd_ps(q, f, v_set(0x1.999d58p-3f));
    q = _mm256_fmadd_ps(q, f, v_set(-0x1.fffff8p-3f));
    return _mm256_fmadd_ps(q, f, v_set(0x1.555554p-2f));
}

/// ln x, about 1 ulp: x = 2^k·m with m in [√2/2, √2), f = m − 1 (exact),
///
///     ln x = k·ln 2 + f − f²/2 + f³·q(f)
///
/// with k·LN2_HI exact (Cody–Waite split again). Subnormal x are scaled by
/// 2^23 first. ln(±0) = −inf, ln(x < 0) = NaN, ln(+inf) = +inf, NaN → NaN.
HEED_AVX2_INLINE __m256 v_log(__m256 x) {
    __m256 subnormal = _mm256_cmp_ps(x, v_set(0x1p-126f), _CMP_LT_OQ);
    __m256 xs = v_select(subnormal, _mm256_mul_ps(x, v_set(0x1p23f)), x);
    __m256 bias = v_select(subnormal, v_set(-23.0f), _mm256_setzero_ps());
    __m256i bits = _mm256_castps_si256(xs);
    __m256i k = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                   _mm256_set1_epi32(0x3f800000)));   // [1, 2)
    __m256 high = _mm256_cmp_ps(m, v_set(0x1.6a09e6p+0f), _CMP_GT_OQ);                 // m > √2
    m = v_select(high, _mm256_mul_ps(m, v_set(0.5f)), m);
    __m256 kf = _mm256_add_ps(_mm256_add_ps(_mm256_cvtepi32_ps(k), bias),
                              _mm256_and_ps(high, v_set(1.0f)));
    __m256 f = _mm256_sub_ps(m, v_set(1.0f));
    __m256 f2 = _mm256_mul_ps(f, f);
    __m256 r = _mm256_fmadd_ps(f2, _mm256_fmadd_ps(f, v_log_q(f), v_set(-0.5f)), f);
    __m256 y = _mm256_fmadd_ps(kf, v_set(HEED_LN2_HI), _mm256_fmadd_ps(kf, v_set(HEED_LN2_LO), r));
    // Special inputs, in order of precedence (last wins).
    y = v_select(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ), v_set(__builtin_nanf("")), y);
    y = v_select(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ), v_set(-__builtin_inff()), y);
    __m256 passThrough = _mm256_or_ps(_mm256_cmp_ps(x, v_set(__builtin_inff()), _CMP_EQ_OQ),
                                      _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    return v_select(passThrough, x, y);
}

// MARK: erf, erfc and the normal distribution

/// erf z for 0 <= z <= 1 (about 1 ulp):
///
///     erf z = z·(2/√π + w·P1(w)),  w = z²,
///
/// P1 of degree 5 (relative error 3.5e-8). The constant 2/√π is applied as a
/// float pair so that the leading term z·2/√π is rounded only once, by the FMA.
HEED_AVX2_INLINE __m256 v_erf_small(__m256 z) {
    __m256 w = _mm256_mul_ps(z, z);
    __m256 p = v_set(heed_erf_small[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, w, v_set(heed_erf_small[i]));
    __m256 correction = _mm256_mul_ps(z, _mm256_fmadd_ps(p, w, v_set(heed_erf_small[6])));
    return _mm256_fmadd_ps(z, v_set(0x1.20dd76p+0f), correction);
}

/// erfc z for 0.5 <= z <= 10.5, given u = 1/(1 + z) and z² = z2hi + z2lo exactly:
///
///     erfc z = e^(−z²) · g(u),   g = e^(z²)·erfc z  (→ 1/(√π·z) as z → ∞)
///
/// g is a degree-12 polynomial in u on [1/11.5, 2/3] (relative error 1e-8).
/// e^(−z²) is e^(−z2hi)·(1 − z2lo): the low part matters, since an error δ in
/// z² becomes a relative error δ in the result, and z2hi alone is off by up to
/// ulp(z²)/2 ≈ 3e-6 at z = 10. Above 10.5 the result underflows to 0 (callers
/// clamp z so that infinities never reach here).
HEED_AVX2_INLINE __m256 v_erfc_tail(__m256 u, __m256 z2hi, __m256 z2lo) {
    __m256 g = v_set(heed_erfc_tail[0]);
    for (int i = 1; i < 13; i++) g = _mm256_fmadd_ps(g, u, v_set(heed_erfc_tail[i]));
    __m256 corrected = _mm256_mul_ps(g, _mm256_fnmadd_ps(z2lo, v_set(1.0f), v_set(1.0f)));
    return _mm256_mul_ps(corrected, v_exp(_mm256_xor_ps(z2hi, v_sign_bit())));
}

/// erf x: the series form for |x| < 1, 1 − erfc|x| beyond (erf rounds to 1 from
/// |x| ≈ 3.92 on), with the sign of x. erf(±inf) = ±1, NaN → NaN.
HEED_AVX2_INLINE __m256 v_erf(__m256 x) {
    __m256 z = v_abs(x);
    __m256 y = v_erf_small(z);
    __m256 tail = _mm256_cmp_ps(z, v_set(1.0f), _CMP_GE_OQ);
    if (_mm256_movemask_ps(tail)) {
        __m256 zc = _mm256_min_ps(v_set(10.5f), z);
        __m256 hi = _mm256_mul_ps(zc, zc), lo = _mm256_fmsub_ps(zc, zc, hi);
        __m256 erfc = v_erfc_tail(_mm256_div_ps(v_set(1.0f), _mm256_add_ps(zc, v_set(1.0f))), hi, lo);
        y = v_select(tail, _mm256_sub_ps(v_set(1.0f), erfc), y);
    }
    return v_copysign(y, x);
}

/// The standard normal CDF Φ(x) = ½(1 + erf(x/√2)), accurate relative to the
/// result in the lower tail too: Φ(x) = ½·erfc(|x|/√2) for x <= −√2/2, where
/// 1 + erf(x/√2) would cancel. With z = |x|/√2 the tail uses z² = x²/2 split
/// exactly as (x·x)/2 + fma(x, x, −x·x)/2, never the rounded x/√2 squared.
///
/// Also returns e^(−x²/2) (the Gaussian kernel), which the caller needs for
/// φ(x) in the derivative of GELU and which falls out of the same split.
HEED_AVX2_INLINE __m256 v_normal_cdf(__m256 x, __m256 *gaussian) {
    __m256 a = _mm256_min_ps(v_set(15.0f), v_abs(x));            // NaN passes; e^(−112.5) = 0
    __m256 hi = _mm256_mul_ps(_mm256_mul_ps(a, a), v_set(0.5f));
    __m256 lo = _mm256_mul_ps(_mm256_fmsub_ps(a, a, _mm256_mul_ps(a, a)), v_set(0.5f));
    __m256 z = _mm256_mul_ps(a, v_set(0x1.6a09e6p-1f));           // a/√2, only for the small branch
    __m256 half = v_set(0.5f);
    // Small |x|: Φ = ½ + ½·sign(x)·erf(z).
    __m256 cdf = _mm256_fmadd_ps(half, v_copysign(v_erf_small(z), x), half);
    __m256 tail = _mm256_cmp_ps(a, v_set(0x1.6a09e6p-1f), _CMP_GE_OQ);   // z >= 1/2
    if (gaussian) *gaussian = _mm256_mul_ps(v_exp(_mm256_xor_ps(hi, v_sign_bit())),
                                            _mm256_fnmadd_ps(lo, v_set(1.0f), v_set(1.0f)));
    if (_mm256_movemask_ps(tail)) {
        // u = 1/(1 + z) = √2/(√2 + |x|), without rounding z first.
        __m256 sqrt2 = v_set(0x1.6a09e6p+0f);
        __m256 erfc = v_erfc_tail(_mm256_div_ps(sqrt2, _mm256_add_ps(sqrt2, a)), hi, lo);
        __m256 lower = _mm256_mul_ps(half, erfc);                       // Φ(−|x|)
        __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
        cdf = v_select(tail, v_select(negative, lower, _mm256_sub_ps(v_set(1.0f), lower)), cdf);
    }
    return cdf;
}

#endif
