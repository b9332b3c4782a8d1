// AVX2+FMA primitives of the linear-attention kernels (see linear_internal.h):
// the small products of the chunked scan, and the vector exp / sin / cos of
// the feature maps. Every function carries target("avx2,fma") and runs only
// after the CPU check (heed_linear_active).
//
// The products are [C, F]·[F, Dv+1]-sized (C = 64, F = 256 by default): they
// live in L1/L2, so a register-blocked kernel without packing does well. The
// micro-kernel keeps a 6 × 16 tile of C in twelve ymm accumulators, loads two
// vectors of a row of B and broadcasts six elements of A per step of k — the
// register blocking of BLIS's Haswell sgemm kernel (Van Zee & van de Geijn,
// "BLIS: A Framework for Rapidly Instantiating BLAS Functionality", 2015),
// written here for row-major B and an A read through two strides, so that Aᵀ
// costs nothing. Column edges use masked loads and stores (VMASKMOVPS never
// touches masked-off memory); row edges use a smaller instantiation.
#if defined(__x86_64__) || defined(__i386__)

#include "linear_internal.h"
#include "avx2_math.h"
#include <math.h>

#define HEED_AVX2 __attribute__((target("avx2,fma")))

/// Lanes 0 ..< count (1...8) set.
HEED_AVX2_INLINE __m256i lanes(int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// MARK: Products

/// Column variants of a 16-wide tile.
enum { FULL = 0, MASKED_HIGH = 1, NARROW = 2 };   // 16 columns; 9–15 columns; 1–8 columns

/// C[0..<ROWS, tile] (+)= Σ_{k0 ≤ k < k1} A(r, k) · B[k, tile]. ROWS and
/// VARIANT are constants after inlining, so the loops over them unroll and the
/// accumulators stay in registers.
HEED_AVX2_INLINE void tile(const int rows, const int variant, int64_t k0, int64_t k1,
                           const float *a, int64_t a_row, int64_t a_column, const float *b, int64_t ldb,
                           float *c, int64_t ldc, int accumulate, __m256i low_mask, __m256i high_mask) {
    __m256 low[6], high[6];
    for (int r = 0; r < rows; r++) { low[r] = _mm256_setzero_ps(); high[r] = _mm256_setzero_ps(); }
    for (int64_t k = k0; k < k1; k++) {
        const float *row = b + k * ldb;
        const float *column = a + k * a_column;
        __m256 b0, b1 = _mm256_setzero_ps();
        if (variant == NARROW) {
            b0 = _mm256_maskload_ps(row, low_mask);
        } else {
            b0 = _mm256_loadu_ps(row);
            b1 = variant == FULL ? _mm256_loadu_ps(row + 8) : _mm256_maskload_ps(row + 8, high_mask);
        }
        for (int r = 0; r < rows; r++) {
            __m256 s = _mm256_broadcast_ss(column + r * a_row);
            low[r] = _mm256_fmadd_ps(s, b0, low[r]);
            if (variant != NARROW) high[r] = _mm256_fmadd_ps(s, b1, high[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *out = c + r * ldc;
        if (variant == NARROW) {
            if (accumulate) low[r] = _mm256_add_ps(low[r], _mm256_maskload_ps(out, low_mask));
            _mm256_maskstore_ps(out, low_mask, low[r]);
            continue;
        }
        if (accumulate) {
            low[r] = _mm256_add_ps(low[r], _mm256_loadu_ps(out));
            high[r] = _mm256_add_ps(high[r], variant == FULL ? _mm256_loadu_ps(out + 8) : _mm256_maskload_ps(out + 8, high_mask));
        }
        _mm256_storeu_ps(out, low[r]);
        if (variant == FULL) _mm256_storeu_ps(out + 8, high[r]);
        else _mm256_maskstore_ps(out + 8, high_mask, high[r]);
    }
}

#define HEED_TILE_CASE(ROWS, VARIANT)                                                                          \
    case (ROWS) * 3 + (VARIANT):                                                                               \
        tile(ROWS, VARIANT, k0, k1, a, a_row, a_column, b, ldb, c, ldc, accumulate, low_mask, high_mask);      \
        break;
#define HEED_TILE_ROWS(ROWS) HEED_TILE_CASE(ROWS, FULL) HEED_TILE_CASE(ROWS, MASKED_HIGH) HEED_TILE_CASE(ROWS, NARROW)

HEED_AVX2 static void dispatch_tile(int rows, int variant, int64_t k0, int64_t k1,
                                    const float *a, int64_t a_row, int64_t a_column, const float *b, int64_t ldb,
                                    float *c, int64_t ldc, int accumulate, __m256i low_mask, __m256i high_mask) {
    switch (rows * 3 + variant) {
        HEED_TILE_ROWS(1) HEED_TILE_ROWS(2) HEED_TILE_ROWS(3) HEED_TILE_ROWS(4) HEED_TILE_ROWS(5) HEED_TILE_ROWS(6)
        default: break;
    }
}

HEED_AVX2 static void avx2_gemm(int64_t m, int64_t n, int64_t depth, const float *a, int64_t a_row, int64_t a_column,
                                const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate, heed_triangle triangle) {
    // Column panels outside, row tiles inside: the [depth, 16] panel of B stays in L1 across the rows.
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int64_t columns = n - j0 < 16 ? n - j0 : 16;
        const int variant = columns == 16 ? FULL : columns > 8 ? MASKED_HIGH : NARROW;
        const __m256i low_mask = lanes(columns > 8 ? 8 : columns);
        const __m256i high_mask = lanes(columns > 8 ? columns - 8 : 0);
        for (int64_t i0 = 0; i0 < m; i0 += 6) {
            const int rows = (int)(m - i0 < 6 ? m - i0 : 6);
            if (triangle == HEED_TRIANGLE_OUTPUT_LOWER && j0 > i0 + rows - 1) continue;
            int64_t k0 = 0, k1 = depth;
            // The caller keeps the other triangle of A zero, so a tile may read a little of it.
            if (triangle == HEED_TRIANGLE_A_LOWER && i0 + rows < depth) k1 = i0 + rows;
            if (triangle == HEED_TRIANGLE_A_UPPER) k0 = i0 < depth ? i0 : depth;
            dispatch_tile(rows, variant, k0, k1, a + i0 * a_row, a_row, a_column, b + j0, ldb,
                          c + i0 * ldc + j0, ldc, accumulate, low_mask, high_mask);
        }
    }
}

// MARK: Elementwise

/// out[i] = EXPR(v) for v = x[i ..< i+8], the last 1–7 lanes masked: an
/// element's result never depends on its position.
#define HEED_LINEAR_MAP(x, out, n, EXPR)                                                  \
    do {                                                                                 \
        int64_t i_ = 0;                                                                  \
        for (; i_ + 8 <= (n); i_ += 8) {                                                 \
            __m256 v = _mm256_loadu_ps((x) + i_);                                        \
            _mm256_storeu_ps((out) + i_, (EXPR));                                        \
        }                                                                                \
        if (i_ < (n)) {                                                                  \
            __m256i mask_ = lanes((n) - i_);                                             \
            __m256 v = _mm256_maskload_ps((x) + i_, mask_);                              \
            _mm256_maskstore_ps((out) + i_, mask_, (EXPR));                              \
        }                                                                                \
    } while (0)

HEED_AVX2 static void avx2_exp_shifted(const float *x, float shift, float *out, int64_t n) {
    const __m256 s = v_set(shift);
    HEED_LINEAR_MAP(x, out, n, v_exp(_mm256_add_ps(v, s)));
}

HEED_AVX2 static void avx2_performer_features(const float *u, const float *half_norm, const float *shift, int64_t rows,
                                              int64_t m, float epsilon, float scale, float *out) {
    const __m256 e = v_set(epsilon), k = v_set(scale);
    for (int64_t r = 0; r < rows; r++) {
        const __m256 h = v_set(half_norm[r]), c = v_set(shift[r]);
        HEED_LINEAR_MAP(u + r * m, out + r * m, m,
                        _mm256_mul_ps(_mm256_add_ps(v_exp(_mm256_sub_ps(_mm256_sub_ps(v, h), c)), e), k));
    }
}

HEED_AVX2 static void avx2_elu_plus_one(const float *x, float *out, int64_t n) {
    const __m256 one = v_set(1.0f), zero = _mm256_setzero_ps();
    // x > 0: x + 1; else e^x (computed on min(x, 0) so the unused lanes never overflow).
    HEED_LINEAR_MAP(x, out, n, v_select(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), _mm256_add_ps(v, one),
                                        v_exp(_mm256_min_ps(v, zero))));
}

// MARK: sin and cos

// π/2 in three float parts (Benchmarks/scripts/fit_sincos.py): for |x| ≤ 8192
// the quotient j has at most 13 bits, so x − j·P1 is exact in one FMA and the
// reduced r = x − j·π/2 carries an error well below an ulp of r.
#define HEED_HALF_PI_1 0x1.921fb6p+0f
#define HEED_HALF_PI_2 -0x1.777a5cp-25f
#define HEED_HALF_PI_3 -0x1.ee59dap-50f
#define HEED_TWO_OVER_PI 0x1.45f306p-1f
/// Beyond this |x| the vector reduction loses accuracy; those lanes go to libm.
#define HEED_SINCOS_LIMIT 8192.0f

/// sin and cos of 8 lanes with |x| ≤ HEED_SINCOS_LIMIT (or NaN):
///
///     j = round(x · 2/π),   r = x − j·π/2 ∈ [−π/4, π/4]
///     sin r = r + r³·S(r²),   cos r = 1 − r²/2 + r⁴·C(r²)      (S, C: fit_sincos.py)
///     (sin x, cos x) = (sin r, cos r), (cos r, −sin r), (−sin r, −cos r), (−cos r, sin r)   for j mod 4 = 0…3
HEED_AVX2_INLINE void v_sincos(__m256 x, __m256 *sine, __m256 *cosine) {
    __m256 j = _mm256_round_ps(_mm256_mul_ps(x, v_set(HEED_TWO_OVER_PI)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(j, v_set(HEED_HALF_PI_1), x);
    r = _mm256_fnmadd_ps(j, v_set(HEED_HALF_PI_2), r);
    r = _mm256_fnmadd_ps(j, v_set(HEED_HALF_PI_3), r);
    __m256 w = _mm256_mul_ps(r, r);
    __m256 s = v_set(0x1.6dbc44p-19f);
    s = _mm256_fmadd_ps(s, w, v_set(-0x1.a013a2p-13f));
    s = _mm256_fmadd_ps(s, w, v_set(0x1.11110ep-7f));
    s = _mm256_fmadd_ps(s, w, v_set(-0x1.555556p-3f));
    __m256 sin_r = _mm256_fmadd_ps(_mm256_mul_ps(w, r), s, r);
    __m256 c = v_set(-0x1.25238ep-22f);
    c = _mm256_fmadd_ps(c, w, v_set(0x1.a015c2p-16f));
    c = _mm256_fmadd_ps(c, w, v_set(-0x1.6c16cp-10f));
    c = _mm256_fmadd_ps(c, w, v_set(0x1.555556p-5f));
    __m256 cos_r = _mm256_fmadd_ps(_mm256_mul_ps(w, w), c, _mm256_fnmadd_ps(w, v_set(0.5f), v_set(1.0f)));
    __m256i q = _mm256_cvtps_epi32(j);
    __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
    __m256 sin_flip = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(q, _mm256_set1_epi32(2)), 30));
    __m256 cos_flip = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_and_si256(_mm256_add_epi32(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(2)), 30));
    *sine = _mm256_xor_ps(v_select(swap, cos_r, sin_r), sin_flip);
    *cosine = _mm256_xor_ps(v_select(swap, sin_r, cos_r), cos_flip);
}

/// sin/cos of 8 lanes into two outputs, libm for lanes beyond the limit (and ±inf).
HEED_AVX2_INLINE void sincos_lanes(__m256 u, float angle_scale, float scale, float *sine_out, float *cosine_out,
                                    __m256i mask, int masked) {
    const __m256 x = _mm256_mul_ps(u, v_set(angle_scale));
    __m256 sine, cosine;
    v_sincos(x, &sine, &cosine);
    const __m256 k = v_set(scale);
    sine = _mm256_mul_ps(sine, k);
    cosine = _mm256_mul_ps(cosine, k);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v_abs(x), v_set(HEED_SINCOS_LIMIT), _CMP_GT_OQ))) {
        float lanes_x[8], lanes_s[8], lanes_c[8];
        _mm256_storeu_ps(lanes_x, x);
        _mm256_storeu_ps(lanes_s, sine);
        _mm256_storeu_ps(lanes_c, cosine);
        for (int l = 0; l < 8; l++) {
            if (fabsf(lanes_x[l]) > HEED_SINCOS_LIMIT) {
                lanes_s[l] = sinf(lanes_x[l]) * scale;
                lanes_c[l] = cosf(lanes_x[l]) * scale;
            }
        }
        sine = _mm256_loadu_ps(lanes_s);
        cosine = _mm256_loadu_ps(lanes_c);
    }
    if (masked) {
        _mm256_maskstore_ps(sine_out, mask, sine);
        _mm256_maskstore_ps(cosine_out, mask, cosine);
    } else {
        _mm256_storeu_ps(sine_out, sine);
        _mm256_storeu_ps(cosine_out, cosine);
    }
}

HEED_AVX2 static void avx2_sincos_features(const float *u, int64_t rows, int64_t m, float angle_scale, float scale,
                                           float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x = u + r * m;
        float *sine = out + r * 2 * m, *cosine = sine + m;
        int64_t i = 0;
        for (; i + 8 <= m; i += 8) sincos_lanes(_mm256_loadu_ps(x + i), angle_scale, scale, sine + i, cosine + i, lanes(8), 0);
        if (i < m) {
            __m256i mask = lanes(m - i);
            sincos_lanes(_mm256_maskload_ps(x + i, mask), angle_scale, scale, sine + i, cosine + i, mask, 1);
        }
    }
}

// MARK: Row maxima

/// Two passes over each row (it stays in L1): the vector maximum with NaNs
/// tracked apart (MAXPS drops a NaN operand), then the equal entries counted
/// with a compare and a population count of its mask.
HEED_AVX2 static void avx2_row_maxima(const float *u, int64_t rows, int64_t m, float *maximum, int64_t *index, int64_t *count) {
    const __m256 negative_infinity = v_set(-INFINITY);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = u + r * m;
        __m256 best = negative_infinity, unordered = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= m; i += 8) {
            __m256 v = _mm256_loadu_ps(row + i);
            best = _mm256_max_ps(v, best);
            unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        __m256i tail = lanes(m - i);
        if (i < m) {
            __m256 v = _mm256_blendv_ps(negative_infinity, _mm256_maskload_ps(row + i, tail), _mm256_castsi256_ps(tail));
            best = _mm256_max_ps(v, best);
            unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        if (_mm256_movemask_ps(unordered)) {                        // a NaN: the maximum is NaN, equal to nothing
            int64_t at = 0;
            while (row[at] == row[at]) at++;
            maximum[r] = NAN;
            index[r] = at;
            count[r] = 0;
            continue;
        }
        __m128 half = _mm_max_ps(_mm256_castps256_ps128(best), _mm256_extractf128_ps(best, 1));
        half = _mm_max_ps(half, _mm_movehl_ps(half, half));
        half = _mm_max_ss(half, _mm_shuffle_ps(half, half, 1));
        const float top = _mm_cvtss_f32(half);
        const __m256 target = v_set(top);
        int64_t first = -1, ties = 0;
        for (i = 0; i + 8 <= m; i += 8) {
            const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + i), target, _CMP_EQ_OQ));
            if (hits && first < 0) first = i + __builtin_ctz((unsigned)hits);
            ties += __builtin_popcount((unsigned)hits);
        }
        if (i < m) {
            const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_maskload_ps(row + i, tail), target, _CMP_EQ_OQ))
                           & _mm256_movemask_ps(_mm256_castsi256_ps(tail));
            if (hits && first < 0) first = i + __builtin_ctz((unsigned)hits);
            ties += __builtin_popcount((unsigned)hits);
        }
        maximum[r] = top;
        index[r] = first;
        count[r] = ties;
    }
}

const heed_linear_table heed_linear_avx2 = {
    .gemm = avx2_gemm,
    .exp_shifted = avx2_exp_shifted,
    .performer_features = avx2_performer_features,
    .sincos_features = avx2_sincos_features,
    .elu_plus_one = avx2_elu_plus_one,
    .row_maxima = avx2_row_maxima,
};

#endif
