// The building blocks of the flash attention steps (flash_internal.h): the
// tile GEMM and the row kernels between the GEMMs, portable and AVX2+FMA.
//
// Tile GEMM. The AVX2 micro-kernel holds a 6 × 16 block of C in 12 ymm
// registers; per step k it loads two vectors of B and broadcasts six scalars
// of A for 12 FMAs — 2 loads + 6 broadcasts per 12 FMAs keeps Zen 3's two FMA
// pipes fed from L1 (the shape of BLIS's Haswell sgemm kernel, derived here
// from the register budget: 12 accumulators + 2 B vectors + 1 broadcast of
// the 16 registers). Row blocks of 6 run inside column panels of 16 so a B
// panel (16 × kc floats, 6 KB for kc = 96) stays in L1. A last panel narrower
// than 16 uses masked loads and stores, never touching memory past column n.
//
// Row kernels. The exponential is a 2^x specialised to the non-positive
// arguments of the online softmax (exp2_nonpositive below); tanh for the
// softcap is avx2_math.h's (≤ 2 ulp). The last 1–7 elements of a row go
// through the same vector code masked, so a result never depends on its
// position in the row.
#include "flash_internal.h"
#include "kernels_internal.h"
#include <math.h>

void heed_flash_exp_f32(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i];
    flash_kernels()->row_exp(out, n, 1.0f, 0.0f, 0, 1);
}

const flash_kernel_table *flash_kernels(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (heed_kernels_avx2_active()) return &flash_avx2_kernels;
#endif
    return &flash_portable_kernels;
}

// MARK: Portable

static void portable_gemm(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                          int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale) {
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++) {
            const float *bj = b + (j / HEED_FLASH_PANEL) * panel_stride + j % HEED_FLASH_PANEL;
            float sum = 0.0f;
            for (int64_t k = 0; k < kc; k++) sum += a[i * ars + k * aks] * bj[k * ldb];
            if (mode == FLASH_STORE) ci[j] = sum;
            else if (mode == FLASH_ACCUMULATE) ci[j] += sum;
            else ci[j] = row_scale[i] * ci[j] + sum;
        }
    }
}

static float portable_row_max(const float *s, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = s[i] > m ? s[i] : m;
    return m;
}

static float portable_row_transform(float *s, int64_t n, float scale, float softcap, const float *bias,
                                    const float *mask, float *tanh_out) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = scale * s[i];
        if (softcap > 0.0f) {
            float t = tanhf(v / softcap);
            if (tanh_out) tanh_out[i] = t;
            v = softcap * t;
        }
        if (bias) v += bias[i];
        if (mask && mask[i] == 0.0f) v = -INFINITY;
        s[i] = v;
        m = v > m ? v : m;
    }
    return m;
}

static float portable_row_exp(float *s, int64_t n, float scale, float shift, const float *keep, int flush) {
    (void)flush;                                       // expf is exact enough everywhere
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float p = expf(scale * s[i] - shift);
        sum += p;
        s[i] = keep ? p * keep[i] : p;
    }
    return sum;
}

static void portable_row_d_scores(const float *p, const float *dp, const float *keep, float delta, int64_t n,
                                  float scale, const float *tanh_values, float *bias_out, float *out) {
    for (int64_t i = 0; i < n; i++) {
        float ds = p[i] * ((keep ? dp[i] * keep[i] : dp[i]) - delta);
        if (bias_out) bias_out[i] = ds;
        float factor = tanh_values ? scale * (1.0f - tanh_values[i] * tanh_values[i]) : scale;
        out[i] = ds * factor;
    }
}

static void portable_row_multiply(const float *a, const float *b, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

const flash_kernel_table flash_portable_kernels = {
    portable_gemm, portable_row_max, portable_row_transform, portable_row_exp, portable_row_d_scores,
    portable_row_multiply,
};

// MARK: AVX2+FMA

#if defined(__x86_64__) || defined(__i386__)
#include "avx2_math.h"

#define FLASH_AVX2 __attribute__((target("avx2,fma")))

/// Lanes 0 ..< count set (count ≤ 0: none, ≥ 8: all).
HEED_AVX2_INLINE __m256i lanes(int64_t count) {
    int clamped = count < 0 ? 0 : count > 8 ? 8 : (int)count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(clamped), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// One MR × 16 block of C; MR, MASKED and A_ROWS (aks = 1, else ars = 1) are
/// constants at every call, so the accumulators live in registers and the
/// loops unroll.
HEED_AVX2_INLINE void gemm_block(const int MR, const int MASKED, const int A_ROWS, int64_t nc, int64_t kc, const float *a, int64_t ars,
                                 int64_t aks, const float *b, int64_t ldb, float *c, int64_t ldc, int mode,
                                 const float *row_scale) {
    __m256 acc[6][2];
    __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;
    if (MASKED) { m0 = lanes(nc); m1 = lanes(nc - 8); }
    for (int r = 0; r < MR; r++) {
        if (mode == FLASH_STORE) {
            acc[r][0] = _mm256_setzero_ps();
            acc[r][1] = _mm256_setzero_ps();
        } else {
            acc[r][0] = MASKED ? _mm256_maskload_ps(c + r * ldc, m0) : _mm256_loadu_ps(c + r * ldc);
            acc[r][1] = MASKED ? _mm256_maskload_ps(c + r * ldc + 8, m1) : _mm256_loadu_ps(c + r * ldc + 8);
            if (mode == FLASH_RESCALE) {
                __m256 s = _mm256_broadcast_ss(row_scale + r);
                acc[r][0] = _mm256_mul_ps(acc[r][0], s);
                acc[r][1] = _mm256_mul_ps(acc[r][1], s);
            }
        }
    }
    // A's layout is a constant here (rows of A contiguous in k, or columns),
    // so the broadcasts use constant offsets from one or a few pointers.
    if (A_ROWS) aks = 1; else ars = 1;
#pragma clang loop unroll_count(4)
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * ldb;
        const __m256 b0 = MASKED ? _mm256_maskload_ps(bk, m0) : _mm256_loadu_ps(bk);
        const __m256 b1 = MASKED ? _mm256_maskload_ps(bk + 8, m1) : _mm256_loadu_ps(bk + 8);
        const float *ak = a + k * aks;
        for (int r = 0; r < MR; r++) {
            const __m256 av = _mm256_broadcast_ss(ak + r * ars);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        if (MASKED) {
            _mm256_maskstore_ps(c + r * ldc, m0, acc[r][0]);
            _mm256_maskstore_ps(c + r * ldc + 8, m1, acc[r][1]);
        } else {
            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
        }
    }
}

#define GEMM_BLOCK_ROWS(MASKED, A_ROWS)                                                                         \
    switch (mr) {                                                                                               \
    case 6: gemm_block(6, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;            \
    case 5: gemm_block(5, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;            \
    case 4: gemm_block(4, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;            \
    case 3: gemm_block(3, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;            \
    case 2: gemm_block(2, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;            \
    default: gemm_block(1, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;           \
    }

/// A must have aks = 1 (row-major, ars its stride) or ars = 1 (transposed).
FLASH_AVX2 static void avx2_gemm(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks,
                                 const float *b, int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode,
                                 const float *row_scale) {
    for (int64_t j = 0; j < n; j += HEED_FLASH_PANEL) {
        const int64_t nc = n - j < HEED_FLASH_PANEL ? n - j : HEED_FLASH_PANEL;
        const float *bp = b + (j / HEED_FLASH_PANEL) * panel_stride;
        for (int64_t i = 0; i < m; i += 6) {
            const int64_t mr = m - i < 6 ? m - i : 6;
            const float *ai = a + i * ars;
            float *ci = c + i * ldc + j;
            const float *si = row_scale ? row_scale + i : 0;
            if (nc == HEED_FLASH_PANEL) {
                if (aks == 1) { GEMM_BLOCK_ROWS(0, 1) } else { GEMM_BLOCK_ROWS(0, 0) }
            } else {
                if (aks == 1) { GEMM_BLOCK_ROWS(1, 1) } else { GEMM_BLOCK_ROWS(1, 0) }
            }
        }
    }
}

/// Runs BODY on elements i ..< i + 8 of a row of n: plain loads and stores
/// (`full` = 1) until the last 1–7 elements, which go through the same BODY
/// masked (`full` = 0, `mask` their lanes; masked-off lanes load as 0).
#define FOR_LANES(n, BODY)                                                                                      \
    do {                                                                                                        \
        int64_t i = 0;                                                                                          \
        for (; i + 8 <= (n); i += 8) {                                                                          \
            const int full = 1;                                                                                 \
            const __m256i mask = _mm256_set1_epi32(-1);                                                         \
            BODY                                                                                                \
        }                                                                                                       \
        if (i < (n)) {                                                                                          \
            const int full = 0;                                                                                 \
            const __m256i mask = lanes((n) - i);                                                                \
            BODY                                                                                                \
        }                                                                                                       \
    } while (0)

#define LOAD(p) (full ? _mm256_loadu_ps((p) + i) : _mm256_maskload_ps((p) + i, mask))
#define STORE(p, v) (full ? _mm256_storeu_ps((p) + i, (v)) : _mm256_maskstore_ps((p) + i, mask, (v)))

HEED_AVX2_INLINE float horizontal_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ps(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

HEED_AVX2_INLINE float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

FLASH_AVX2 static float avx2_row_max(const float *s, int64_t n) {
    const __m256 low = _mm256_set1_ps(-INFINITY);
    __m256 best = low;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) best = _mm256_max_ps(best, _mm256_loadu_ps(s + i));
    if (i < n) {
        __m256i mask = lanes(n - i);
        best = _mm256_max_ps(best, v_select(_mm256_castsi256_ps(mask), _mm256_maskload_ps(s + i, mask), low));
    }
    return horizontal_max(best);
}

FLASH_AVX2 static float avx2_row_transform(float *s, int64_t n, float scale, float softcap, const float *bias,
                                           const float *mask_values, float *tanh_out) {
    const __m256 vscale = _mm256_set1_ps(scale), cap = _mm256_set1_ps(softcap);
    const __m256 inverse_cap = _mm256_set1_ps(softcap > 0.0f ? 1.0f / softcap : 0.0f);
    const __m256 low = _mm256_set1_ps(-INFINITY);
    __m256 best = low;
    FOR_LANES(n, {
        __m256 v = _mm256_mul_ps(LOAD(s), vscale);
        if (softcap > 0.0f) {
            __m256 t = v_tanh(_mm256_mul_ps(v, inverse_cap));
            if (tanh_out) STORE(tanh_out, t);
            v = _mm256_mul_ps(cap, t);
        }
        if (bias) v = _mm256_add_ps(v, LOAD(bias));
        if (mask_values) v = v_select(_mm256_cmp_ps(LOAD(mask_values), _mm256_setzero_ps(), _CMP_EQ_OQ), low, v);
        STORE(s, v);
        best = _mm256_max_ps(best, full ? v : v_select(_mm256_castsi256_ps(mask), v, low));
    });
    return horizontal_max(best);
}

/// 2^x for x ≤ 0, the exponential of the online softmax (its arguments are
/// scores minus their row maximum, never positive beyond rounding):
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
    const __m256 clamped = _mm256_max_ps(_mm256_set1_ps(-126.0f), x);      // NaN passes (second operand)
    const __m256 n = _mm256_round_ps(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(clamped, n);
    __m256 p = _mm256_set1_ps(0x1.41fb30p-13f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.5f3e0cp-10f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.3b2d4cp-7f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.c6aeeap-5f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.ebfbdcp-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.62e430p-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i exponent = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    const __m256 scaled = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
    if (!FLUSH) return scaled;
    return _mm256_and_ps(scaled, _mm256_cmp_ps(x, _mm256_set1_ps(-125.0f), _CMP_NLT_UQ));
}

/// p = e^(scale·s − shift) = 2^(s·scale·log₂e − shift·log₂e): one FMA and
/// exp2_nonpositive per 8 elements. Arguments below −87 (natural units) give
/// exactly 0 when `keep` is non-NULL or `flush` is set (masked scores),
/// ≈ 1.2·10⁻³⁸ otherwise (the fast path of finite scores).
HEED_AVX2_INLINE float row_exp_body(float *s, int64_t n, float scale, float shift, const float *keep, const int FLUSH) {
    const __m256 vscale = _mm256_set1_ps(scale * 0x1.715476p+0f), vshift = _mm256_set1_ps(shift * 0x1.715476p+0f);
    __m256 sum = _mm256_setzero_ps();
    FOR_LANES(n, {
        __m256 p = exp2_nonpositive(_mm256_fmsub_ps(LOAD(s), vscale, vshift), FLUSH);
        if (!full) p = _mm256_and_ps(p, _mm256_castsi256_ps(mask));
        sum = _mm256_add_ps(sum, p);
        if (keep) p = _mm256_mul_ps(p, LOAD(keep));
        STORE(s, p);
    });
    return horizontal_sum(sum);
}

FLASH_AVX2 static float avx2_row_exp(float *s, int64_t n, float scale, float shift, const float *keep, int flush) {
    if (keep) return row_exp_body(s, n, scale, shift, keep, 1);
    if (flush) return row_exp_body(s, n, scale, shift, 0, 1);
    return row_exp_body(s, n, scale, shift, 0, 0);
}

FLASH_AVX2 static void avx2_row_d_scores(const float *p, const float *dp, const float *keep, float delta, int64_t n,
                                         float scale, const float *tanh_values, float *bias_out, float *out) {
    const __m256 vdelta = _mm256_set1_ps(delta), vscale = _mm256_set1_ps(scale), one = _mm256_set1_ps(1.0f);
    FOR_LANES(n, {
        __m256 g = LOAD(dp);
        if (keep) g = _mm256_mul_ps(g, LOAD(keep));
        __m256 ds = _mm256_mul_ps(LOAD(p), _mm256_sub_ps(g, vdelta));
        if (bias_out) STORE(bias_out, ds);
        __m256 factor = vscale;
        if (tanh_values) {
            __m256 t = LOAD(tanh_values);
            factor = _mm256_mul_ps(vscale, _mm256_fnmadd_ps(t, t, one));
        }
        STORE(out, _mm256_mul_ps(ds, factor));
    });
}

FLASH_AVX2 static void avx2_row_multiply(const float *a, const float *b, float *out, int64_t n) {
    FOR_LANES(n, { STORE(out, _mm256_mul_ps(LOAD(a), LOAD(b))); });
}

const flash_kernel_table flash_avx2_kernels = {
    avx2_gemm, avx2_row_max, avx2_row_transform, avx2_row_exp, avx2_row_d_scores, avx2_row_multiply,
};
#endif
