// The softmax stages of the flash attention steps (flash_internal.h), one
// call per tile, portable and AVX2+FMA, and the two kernel tables.
//
// Each function walks every row of a tile, so a step pays one indirect call
// per stage rather than per row, and the per-row rescale factors e^(m − m′)
// are computed together, eight rows per vector exponential.
//
// The exponential is a 2^x specialised to the non-positive arguments of the
// online softmax (exp2_nonpositive); tanh for the softcap is avx2_math.h's
// (≤ 2 ulp). The last 1–7 elements of a row go through the same vector code
// masked, so a result never depends on its position in the row.
#include "flash_internal.h"
#include "kernels_internal.h"
#include <math.h>

const flash_kernel_table *flash_kernels(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (heed_kernels_avx512_active()) return &flash_avx512_kernels;
    if (heed_kernels_avx2_active()) return &flash_avx2_kernels;
#endif
    return &flash_portable_kernels;
}

void heed_flash_exp_f32(const float *x, float *out, int64_t n) { flash_kernels()->exp(x, out, n); }

/// Whether a step's scores need no transform beyond the scale (which then
/// folds into the exponential's FMA).
static inline int plain_scores(float softcap, const float *bias, const float *mask) {
    return softcap == 0.0f && !bias && !mask;
}

// MARK: Portable

/// s = transform(scale·s) (see row_transform in flash_internal.h); returns max s.
static float portable_transform(float *s, int64_t n, float scale, float softcap, const float *bias, const float *mask,
                                float *tanh_out) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = scale * s[i];
        if (softcap > 0.0f) {
            const float t = tanhf(v / softcap);
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

static void portable_online_softmax(const heed_flash_forward_args *args) {
    for (int64_t r = 0; r < args->rows; r++) {
        float *s = args->scores + r * args->tile_stride;
        const int64_t offset = r * args->tile_stride;
        const float tile_max = portable_transform(s, args->keys, args->scale, args->softcap,
                                                  args->bias ? args->bias + offset : 0,
                                                  args->mask ? args->mask + offset : 0, 0);
        const float old = args->row_max[r];
        const float m = old > tile_max ? old : tile_max;
        if (m == -INFINITY) {                                // nothing allowed yet: P = 0, O stays 0
            for (int64_t c = 0; c < args->keys; c++) s[c] = 0.0f;
            args->row_scale[r] = 1.0f;
            continue;
        }
        float sum = 0.0f;
        for (int64_t c = 0; c < args->keys; c++) {
            const float p = expf(s[c] - m);
            sum += p;
            s[c] = args->keep ? p * args->keep[offset + c] : p;
        }
        const float alpha = expf(old - m);                   // 0 when old = −inf
        args->row_sum[r] = args->row_sum[r] * alpha + sum;
        args->row_max[r] = m;
        args->row_scale[r] = alpha;
    }
}

/// P = exp(S̃ − LSE) in `scores`; the tanh of the softcap in `tanh_out`.
static void portable_probabilities(float *scores, int64_t rows, int64_t keys, int64_t stride, float scale,
                                   float softcap, const float *bias, const float *mask, const float *log_sum_exp,
                                   float *tanh_out) {
    for (int64_t r = 0; r < rows; r++) {
        float *s = scores + r * stride;
        const int64_t offset = r * stride;
        if (log_sum_exp[r] == -INFINITY) {                   // a row with nothing allowed: P = 0
            for (int64_t c = 0; c < keys; c++) s[c] = 0.0f;
            continue;
        }
        portable_transform(s, keys, scale, softcap, bias ? bias + offset : 0, mask ? mask + offset : 0,
                           tanh_out ? tanh_out + offset : 0);
        for (int64_t c = 0; c < keys; c++) s[c] = expf(s[c] - log_sum_exp[r]);
    }
}

static void portable_backward_probabilities(const heed_flash_backward_args *args) {
    portable_probabilities(args->scores, args->rows, args->keys, args->tile_stride, args->scale, args->softcap,
                           args->bias, args->mask, args->log_sum_exp, args->softcap > 0.0f ? args->softcap_scratch : 0);
    if (!args->keep) return;
    for (int64_t r = 0; r < args->rows; r++) {               // P ∘ keep into d_scores, for dV
        for (int64_t c = 0; c < args->keys; c++) {
            const int64_t i = r * args->tile_stride + c;
            args->d_scores[i] = args->scores[i] * args->keep[i];
        }
    }
}

static void portable_backward_d_scores(const heed_flash_backward_args *args) {
    for (int64_t r = 0; r < args->rows; r++) {
        for (int64_t c = 0; c < args->keys; c++) {
            const int64_t i = r * args->tile_stride + c;
            const float dp = args->keep ? args->d_scores[i] * args->keep[i] : args->d_scores[i];
            const float ds = args->scores[i] * (dp - args->delta[r]);
            if (args->bias_gradient) args->bias_gradient[i] = ds;
            const float t = args->softcap > 0.0f ? args->softcap_scratch[i] : 0.0f;
            args->d_scores[i] = ds * args->scale * (1.0f - t * t);
        }
    }
}

static void portable_weights(const heed_flash_forward_args *args, const float *log_sum_exp, float *out,
                             int64_t out_stride) {
    portable_probabilities(args->scores, args->rows, args->keys, args->tile_stride, args->scale, args->softcap,
                           args->bias, args->mask, log_sum_exp, 0);
    for (int64_t r = 0; r < args->rows; r++) {
        for (int64_t c = 0; c < args->keys; c++) out[r * out_stride + c] = args->scores[r * args->tile_stride + c];
    }
}

static void portable_exp(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = expf(x[i]);
}

const flash_kernel_table flash_portable_kernels = {
    flash_gemm_portable, portable_online_softmax, portable_backward_probabilities, portable_backward_d_scores,
    portable_weights, portable_exp, 0,
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

#include "flash_exp2.h"

/// max of s[0 ..< n].
HEED_AVX2_INLINE float row_max(const float *s, int64_t n) {
    const __m256 low = _mm256_set1_ps(-INFINITY);
    __m256 best = low;
    FOR_LANES(n, {
        const __m256 v = LOAD(s);
        best = _mm256_max_ps(best, full ? v : v_select(_mm256_castsi256_ps(mask), v, low));
    });
    return horizontal_max(best);
}

/// In place: s = scale·s; t = tanh(s/c) (into tanh_out when non-NULL) and
/// s = c·t if softcap c > 0; s += bias; s = −inf where mask = 0. Returns max s.
HEED_AVX2_INLINE float row_transform(float *s, int64_t n, float scale, float softcap, const float *bias,
                                     const float *mask_values, float *tanh_out) {
    const __m256 vscale = _mm256_set1_ps(scale), cap = _mm256_set1_ps(softcap);
    const __m256 inverse_cap = _mm256_set1_ps(softcap > 0.0f ? 1.0f / softcap : 0.0f);
    const __m256 low = _mm256_set1_ps(-INFINITY);
    __m256 best = low;
    FOR_LANES(n, {
        __m256 v = _mm256_mul_ps(LOAD(s), vscale);
        if (softcap > 0.0f) {
            const __m256 t = v_tanh(_mm256_mul_ps(v, inverse_cap));
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

/// In place: p = e^(scale·s − shift) = 2^(s·scale·log₂e − shift·log₂e), one
/// FMA and exp2_nonpositive per 8 elements; returns Σ p, then p ∘= keep when
/// KEEP. FLUSH as in exp2_nonpositive (needed where scores may be −inf).
HEED_AVX2_INLINE float row_exp(float *s, int64_t n, float scale, float shift, const float *keep, const int KEEP,
                               const int FLUSH) {
    const __m256 vscale = _mm256_set1_ps(scale * FLASH_LOG2E), vshift = _mm256_set1_ps(shift * FLASH_LOG2E);
    __m256 sum = _mm256_setzero_ps();
    FOR_LANES(n, {
        __m256 p = exp2_nonpositive(_mm256_fmsub_ps(LOAD(s), vscale, vshift), FLUSH);
        if (!full) p = _mm256_and_ps(p, _mm256_castsi256_ps(mask));
        sum = _mm256_add_ps(sum, p);
        if (KEEP) p = _mm256_mul_ps(p, LOAD(keep));
        STORE(s, p);
    });
    return horizontal_sum(sum);
}

FLASH_AVX2 static void avx2_online_softmax(const heed_flash_forward_args *args) {
    const int64_t rows = args->rows, keys = args->keys, stride = args->tile_stride;
    // Plain scaled scores fold the scale into the exponential's FMA:
    // max(scale·s) = scale·max(s) for scale > 0.
    const int plain = plain_scores(args->softcap, args->bias, args->mask) && args->scale > 0.0f;
    float old_max[HEED_FLASH_QUERY_TILE], tile_sum[HEED_FLASH_QUERY_TILE];
    for (int64_t r = 0; r < rows; r++) {
        float *s = args->scores + r * stride;
        const int64_t offset = r * stride;
        const float tile_max = plain
            ? args->scale * row_max(s, keys)
            : row_transform(s, keys, args->scale, args->softcap, args->bias ? args->bias + offset : 0,
                            args->mask ? args->mask + offset : 0, 0);
        const float old = args->row_max[r];
        const float m = old > tile_max ? old : tile_max;
        old_max[r] = old;
        args->row_max[r] = m;
        if (m == -INFINITY) {                            // nothing allowed yet: P = 0, O stays 0
            for (int64_t c = 0; c < keys; c++) s[c] = 0.0f;
            tile_sum[r] = 0.0f;
            continue;
        }
        const float scale = plain ? args->scale : 1.0f;
        const float *keep = args->keep ? args->keep + offset : 0;
        if (keep) tile_sum[r] = row_exp(s, keys, scale, m, keep, 1, !plain);
        else if (plain) tile_sum[r] = row_exp(s, keys, scale, m, 0, 0, 0);
        else tile_sum[r] = row_exp(s, keys, scale, m, 0, 0, 1);
    }
    // α = e^(m − m′) for all rows at once (0 when m = −inf; 1 while m′ = −inf); ℓ = αℓ + Σ P.
    const __m256 log2e = _mm256_set1_ps(FLASH_LOG2E), one = _mm256_set1_ps(1.0f), low = _mm256_set1_ps(-INFINITY);
    FOR_LANES(rows, {
        const __m256 m = LOAD(args->row_max);
        __m256 alpha = exp2_nonpositive(_mm256_mul_ps(_mm256_sub_ps(LOAD(old_max), m), log2e), 1);
        alpha = v_select(_mm256_cmp_ps(m, low, _CMP_EQ_OQ), one, alpha);
        STORE(args->row_scale, alpha);
        STORE(args->row_sum, _mm256_fmadd_ps(LOAD(args->row_sum), alpha, LOAD(tile_sum)));
    });
}

/// P = exp(S̃ − LSE) for every row (zeros where LSE = −inf); tanh of the softcap into tanh_out.
HEED_AVX2_INLINE void probabilities(float *scores, int64_t rows, int64_t keys, int64_t stride, float scale,
                                    float softcap, const float *bias, const float *mask, const float *log_sum_exp,
                                    float *tanh_out) {
    const int plain = plain_scores(softcap, bias, mask);
    for (int64_t r = 0; r < rows; r++) {
        float *s = scores + r * stride;
        const int64_t offset = r * stride;
        if (log_sum_exp[r] == -INFINITY) {               // a row with nothing allowed: P = 0
            for (int64_t c = 0; c < keys; c++) s[c] = 0.0f;
            continue;
        }
        if (plain) {
            row_exp(s, keys, scale, log_sum_exp[r], 0, 0, 0);
        } else {
            row_transform(s, keys, scale, softcap, bias ? bias + offset : 0, mask ? mask + offset : 0,
                          tanh_out ? tanh_out + offset : 0);
            row_exp(s, keys, 1.0f, log_sum_exp[r], 0, 0, 1);
        }
    }
}

FLASH_AVX2 static void avx2_backward_probabilities(const heed_flash_backward_args *args) {
    probabilities(args->scores, args->rows, args->keys, args->tile_stride, args->scale, args->softcap, args->bias,
                  args->mask, args->log_sum_exp, args->softcap > 0.0f ? args->softcap_scratch : 0);
    if (!args->keep) return;
    for (int64_t r = 0; r < args->rows; r++) {             // P ∘ keep into d_scores, for dV
        const int64_t offset = r * args->tile_stride;
        const float *p = args->scores + offset, *keep = args->keep + offset;
        float *dropped = args->d_scores + offset;
        FOR_LANES(args->keys, { STORE(dropped, _mm256_mul_ps(LOAD(p), LOAD(keep))); });
    }
}

FLASH_AVX2 static void avx2_backward_d_scores(const heed_flash_backward_args *args) {
    const __m256 vscale = _mm256_set1_ps(args->scale), one = _mm256_set1_ps(1.0f);
    const float *tanh_values = args->softcap > 0.0f ? args->softcap_scratch : 0;
    for (int64_t r = 0; r < args->rows; r++) {
        const int64_t offset = r * args->tile_stride;
        const float *p = args->scores + offset, *keep = args->keep ? args->keep + offset : 0;
        const float *t = tanh_values ? tanh_values + offset : 0;
        float *ds_out = args->d_scores + offset, *bias_out = args->bias_gradient ? args->bias_gradient + offset : 0;
        const __m256 delta = _mm256_set1_ps(args->delta[r]);
        if (!keep && !t && !bias_out) {                  // plain scores: no per-lane tests in the loop
            FOR_LANES(args->keys, {
                STORE(ds_out, _mm256_mul_ps(_mm256_mul_ps(LOAD(p), _mm256_sub_ps(LOAD(ds_out), delta)), vscale));
            });
            continue;
        }
        FOR_LANES(args->keys, {
            __m256 dp = LOAD(ds_out);
            if (keep) dp = _mm256_mul_ps(dp, LOAD(keep));
            const __m256 ds = _mm256_mul_ps(LOAD(p), _mm256_sub_ps(dp, delta));
            if (bias_out) STORE(bias_out, ds);
            __m256 factor = vscale;
            if (t) {
                const __m256 tv = LOAD(t);
                factor = _mm256_mul_ps(vscale, _mm256_fnmadd_ps(tv, tv, one));
            }
            STORE(ds_out, _mm256_mul_ps(ds, factor));
        });
    }
}

FLASH_AVX2 static void avx2_weights(const heed_flash_forward_args *args, const float *log_sum_exp, float *out,
                                    int64_t out_stride) {
    probabilities(args->scores, args->rows, args->keys, args->tile_stride, args->scale, args->softcap, args->bias,
                  args->mask, log_sum_exp, 0);
    for (int64_t r = 0; r < args->rows; r++) {
        const float *s = args->scores + r * args->tile_stride;
        float *o = out + r * out_stride;
        FOR_LANES(args->keys, { STORE(o, LOAD(s)); });
    }
}

FLASH_AVX2 static void avx2_exp(const float *x, float *out, int64_t n) {
    const __m256 log2e = _mm256_set1_ps(FLASH_LOG2E);
    FOR_LANES(n, { STORE(out, exp2_nonpositive(_mm256_mul_ps(LOAD(x), log2e), 1)); });
}

const flash_kernel_table flash_avx2_kernels = {
    flash_gemm_avx2, avx2_online_softmax, avx2_backward_probabilities, avx2_backward_d_scores, avx2_weights, avx2_exp,
    flash_scores_exp_avx2,
};

const flash_kernel_table flash_avx512_kernels = {
    flash_gemm_avx512, avx2_online_softmax, flash_backward_probabilities_avx512, flash_backward_d_scores_avx512,
    avx2_weights,     avx2_exp,            flash_scores_exp_avx512,
};
#endif
