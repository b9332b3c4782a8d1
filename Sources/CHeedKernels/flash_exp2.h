// The exponential of the flash kernels (AVX2+FMA) and the row total their
// sweeps take, shared by the row passes (flash_kernels.c) and the forward's
// one-pass sweep (flash_gemm.c). Included only inside `#if defined(__x86_64__)` blocks.
#ifndef HEED_FLASH_EXP2_H
#define HEED_FLASH_EXP2_H

#include <immintrin.h>

#ifndef HEED_AVX2_INLINE
#define HEED_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#endif

/// The coefficients of P below, highest degree first (Horner's scheme); also
/// used by the AVX-512 version (flash_avx512.c).
static const float heed_flash_exp2[7] = {0x1.41fb30p-13f, 0x1.5f3e0cp-10f, 0x1.3b2d4cp-7f, 0x1.c6aeeap-5f,
                                         0x1.ebfbdcp-3f,  0x1.62e430p-1f,  1.0f};

/// The total of v's 8 lanes.
HEED_AVX2_INLINE float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// exp2_nonpositive's arithmetic for an x already clamped to [−126, 127]
/// (or NaN): the caller's clamp is the first step.
HEED_AVX2_INLINE __m256 exp2_clamped(__m256 x) {
    const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(heed_flash_exp2[0]);
    for (int i = 1; i < 7; i++) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(heed_flash_exp2[i]));
    const __m256i exponent = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
}

/// 2^x for x ≤ 0 (and up to 64 in the forward's fused path, which caps x there
/// and sends tiles whose row sums pass 2^12 to the two-pass step), the exponential
/// of the online softmax (its arguments are scores minus a running row
/// maximum):
///
///     n = round(x),  f = x − n ∈ [−½, ½],  2^x = 2^n · P(f)
///
/// P of degree 6, fitted by Benchmarks/scripts/fit_flash_exp2.py (a discrete
/// minimax fit of the relative error with P(0) = 1; 1.3 ulp measured in f32
/// Horner evaluation). 2^n enters through the exponent field, valid while
/// 2^n·P(f) is a normal float, so x is clamped at −126 first: below that the
/// result is 2^−126 ≈ 1.2·10⁻³⁸ instead of the true (smaller) value — far
/// below what a softmax row (whose largest term is 1) can resolve. With
/// FLUSH, x < −125 gives exactly 0 instead, so −inf (a masked score) maps to
/// 0. NaN propagates. 15 vector operations (17 with FLUSH), no division.
HEED_AVX2_INLINE __m256 exp2_nonpositive(__m256 x, const int FLUSH) {
    const __m256 scaled = exp2_clamped(_mm256_max_ps(_mm256_set1_ps(-126.0f), x));   // NaN passes (second operand)
    if (!FLUSH) return scaled;
    return _mm256_and_ps(scaled, _mm256_cmp_ps(x, _mm256_set1_ps(-125.0f), _CMP_NLT_UQ));
}

#endif
