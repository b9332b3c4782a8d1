// heed_decode.h: one query against a head's KV cache. The softmax is
// heed_softmax_rows_f32 (dispatched itself); the two products are written
// here for AVX2+FMA and in portable C.
#include "heed_decode.h"
#include "heed_kernels.h"
#include "kernels_internal.h"

static void scores_portable(const float *q, const float *keys, int64_t length, int64_t depth, int64_t stride, float scale,
                            float *scores) {
    for (int64_t t = 0; t < length; t++) {
        const float *k = keys + t * stride;
        float s = 0;
        for (int64_t j = 0; j < depth; j++) s += q[j] * k[j];
        scores[t] = scale * s;
    }
}

static void weighted_sum_portable(const float *p, const float *values, int64_t length, int64_t depth, int64_t stride,
                                  float *out) {
    for (int64_t j = 0; j < depth; j++) out[j] = 0;
    for (int64_t t = 0; t < length; t++) {
        const float *v = values + t * stride;
        for (int64_t j = 0; j < depth; j++) out[j] += p[t] * v[j];
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DECODE_AVX2 __attribute__((target("avx2,fma")))

/// Four keys at a time (independent accumulators); depth a multiple of 8.
DECODE_AVX2 static void scores_avx2(const float *q, const float *keys, int64_t length, int64_t depth, int64_t stride,
                                    float scale, float *scores) {
    int64_t t = 0;
    for (; t + 4 <= length; t += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *k = keys + t * stride;
        for (int64_t j = 0; j < depth; j += 8) {
            __m256 x = _mm256_loadu_ps(q + j);
            a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + j), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + stride + j), a1);
            a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + 2 * stride + j), a2);
            a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + 3 * stride + j), a3);
        }
        // Transpose-and-add the four sums into one vector of four.
        __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
        __m256 h = _mm256_hadd_ps(h01, h23);
        __m128 sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        _mm_storeu_ps(scores + t, _mm_mul_ps(sum, _mm_set1_ps(scale)));
    }
    if (t < length) scores_portable(q, keys + t * stride, length - t, depth, stride, scale, scores + t);
}

/// Depth ≤ 128 in registers (up to 16 accumulators), a multiple of 8.
DECODE_AVX2 static void weighted_sum_avx2(const float *p, const float *values, int64_t length, int64_t depth, int64_t stride,
                                          float *out) {
    for (int64_t j0 = 0; j0 < depth; j0 += 64) {
        int64_t width = depth - j0 < 64 ? depth - j0 : 64;   // 8 … 64, multiple of 8
        __m256 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
        for (int64_t t = 0; t < length; t++) {
            __m256 weight = _mm256_set1_ps(p[t]);
            const float *v = values + t * stride + j0;
            for (int k = 0; k < 8; k++) {
                if (8 * k < width) acc[k] = _mm256_fmadd_ps(weight, _mm256_loadu_ps(v + 8 * k), acc[k]);
            }
        }
        for (int k = 0; k < 8; k++) {
            if (8 * k < width) _mm256_storeu_ps(out + j0 + 8 * k, acc[k]);
        }
    }
}
#endif

void heed_attention_decode_f32(const float *query, const float *keys, const float *values, int64_t length,
                               int64_t depth, int64_t stride, float scale, float *scores, float *out) {
    if (length <= 0 || depth <= 0) return;
#if defined(__x86_64__) || defined(__i386__)
    if (depth % 8 == 0 && heed_kernels_avx2_active()) {
        scores_avx2(query, keys, length, depth, stride, scale, scores);
        heed_softmax_rows_f32(scores, scores, 1, length);
        weighted_sum_avx2(scores, values, length, depth, stride, out);
        return;
    }
#endif
    scores_portable(query, keys, length, depth, stride, scale, scores);
    heed_softmax_rows_f32(scores, scores, 1, length);
    weighted_sum_portable(scores, values, length, depth, stride, out);
}
