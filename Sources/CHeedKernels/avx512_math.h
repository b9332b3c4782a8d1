// AVX-512 versions of avx2_math.h's functions, for the kernels that have one
// (kernels_avx512.c). Each is the AVX2 function's sequence of operations, op
// for op, on 16 lanes instead of 8 (comparisons give mask registers, blends
// take them), so each lane's result is the AVX2 function's bit for bit; see
// avx2_math.h for the methods and their error bounds.
#ifndef HEED_AVX512_MATH_H
#define HEED_AVX512_MATH_H

#include "avx2_math.h"

#define HEED_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512dq,avx2,fma")))

HEED_AVX512_INLINE __m512 w_set(float c) { return _mm512_set1_ps(c); }
HEED_AVX512_INLINE __m512 w_sign_bit(void) { return _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u)); }
HEED_AVX512_INLINE __m512 w_abs(__m512 x) { return _mm512_andnot_ps(w_sign_bit(), x); }
HEED_AVX512_INLINE __m512 w_copysign(__m512 y, __m512 x) {
    return _mm512_or_ps(w_abs(y), _mm512_and_ps(w_sign_bit(), x));
}
HEED_AVX512_INLINE __m512 w_pow2i(__m512i n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
}

/// v_exp_q.
HEED_AVX512_INLINE __m512 w_exp_q(__m512 r) {
    __m512 q = w_set(heed_exp_q[0]);
    for (int i = 1; i < 5; i++) q = _mm512_fmadd_ps(q, r, w_set(heed_exp_q[i]));
    return q;
}

/// v_exp: e^x within 2 ulp over the whole float range.
HEED_AVX512_INLINE __m512 w_exp(__m512 x) {
    __m512 xc = _mm512_max_ps(w_set(-104.0f), _mm512_min_ps(w_set(89.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, w_set(HEED_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, w_set(HEED_LN2_HI), xc);
    r = _mm512_fnmadd_ps(n, w_set(HEED_LN2_LO), r);
    __m512 p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(r, r), w_exp_q(r), r), w_set(1.0f));
    __m512i ni = _mm512_cvtps_epi32(n);
    __m512i half = _mm512_srai_epi32(ni, 1);
    __m512 scaled = _mm512_mul_ps(p, w_pow2i(_mm512_sub_epi32(ni, half)));
    return _mm512_mul_ps(scaled, w_pow2i(half));
}

/// v_erf_small.
HEED_AVX512_INLINE __m512 w_erf_small(__m512 z) {
    __m512 w = _mm512_mul_ps(z, z);
    __m512 p = w_set(heed_erf_small[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, w, w_set(heed_erf_small[i]));
    __m512 correction = _mm512_mul_ps(z, _mm512_fmadd_ps(p, w, w_set(heed_erf_small[6])));
    return _mm512_fmadd_ps(z, w_set(0x1.20dd76p+0f), correction);
}

/// v_erfc_tail.
HEED_AVX512_INLINE __m512 w_erfc_tail(__m512 u, __m512 z2hi, __m512 z2lo) {
    __m512 g = w_set(heed_erfc_tail[0]);
    for (int i = 1; i < 13; i++) g = _mm512_fmadd_ps(g, u, w_set(heed_erfc_tail[i]));
    __m512 corrected = _mm512_mul_ps(g, _mm512_fnmadd_ps(z2lo, w_set(1.0f), w_set(1.0f)));
    return _mm512_mul_ps(corrected, w_exp(_mm512_xor_ps(z2hi, w_sign_bit())));
}

/// v_normal_cdf without the Gaussian.
HEED_AVX512_INLINE __m512 w_normal_cdf(__m512 x) {
    __m512 a = _mm512_min_ps(w_set(15.0f), w_abs(x));
    __m512 hi = _mm512_mul_ps(_mm512_mul_ps(a, a), w_set(0.5f));
    __m512 lo = _mm512_mul_ps(_mm512_fmsub_ps(a, a, _mm512_mul_ps(a, a)), w_set(0.5f));
    __m512 z = _mm512_mul_ps(a, w_set(0x1.6a09e6p-1f));
    __m512 half = w_set(0.5f);
    __m512 cdf = _mm512_fmadd_ps(half, w_copysign(w_erf_small(z), x), half);
    __mmask16 tail = _mm512_cmp_ps_mask(a, w_set(0x1.6a09e6p-1f), _CMP_GE_OQ);
    if (tail) {
        __m512 sqrt2 = w_set(0x1.6a09e6p+0f);
        __m512 erfc = w_erfc_tail(_mm512_div_ps(sqrt2, _mm512_add_ps(sqrt2, a)), hi, lo);
        __m512 lower = _mm512_mul_ps(half, erfc);
        __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        cdf = _mm512_mask_blend_ps(tail, cdf, _mm512_mask_blend_ps(negative, _mm512_sub_ps(w_set(1.0f), lower), lower));
    }
    return cdf;
}

#endif
