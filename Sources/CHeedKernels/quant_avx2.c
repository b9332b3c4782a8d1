// AVX2+FMA+F16C kernels of heed_quant.h; called only after the CPU check in
// quant_portable.c.
//
// A block of 32 weights is unpacked to four vectors of 8 floats (integer
// lanes widened with VPMOVZX/SX and converted), multiplied with the token's
// 32 activations, and the block's partial dot product is scaled by d:
//
//     Σ_j w_j x_j = d · Σ_j q_j x_j + m · Σ_j x_j   (m: Q4_1's offset, −8·d for Q4_0, 0 for Q8_0)
//
// Up to four tokens share one unpacking (a 2-row × 4-token register tile would
// need more than 16 ymm registers once the weights are unpacked).
#if defined(__x86_64__) || defined(__i386__)

#include "quant_internal.h"
#include <immintrin.h>

/// How far ahead of the block being read the kernels prefetch: the weights
/// stream from memory once per token, and the hardware prefetcher alone left
/// the loads of block scales stalling.
#ifndef QUANT_PREFETCH_BYTES
#define QUANT_PREFETCH_BYTES 1024
#endif

#define QUANT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define QUANT_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// One block's scale d, its offset m (Q4_1's m; −8·d for Q4_0, whose q − 8
/// becomes q with the offset −8·d·Σx; 0 for Q8_0) and its 32 integer weights
/// as four float vectors: q[k] holds weights 8k … 8k+7. The nibbles are
/// widened straight from memory (VPMOVZXBD of bytes 0–7 and 8–15), then
/// masked (low nibbles: weights 0–15) or shifted (high: 16–31).
QUANT_AVX2_INLINE void unpack(const heed_quant_type type, const uint8_t *block, __m256 q[4], float *d, float *m) {
    *d = _cvtsh_ss(quant_load_u16(block));
    if (type == HEED_QUANT_Q8_0) {
        for (int k = 0; k < 4; k++) {
            q[k] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block + 2 + 8 * k))));
        }
        return;
    }
    const uint8_t *nibbles = block + (type == HEED_QUANT_Q4_1 ? 4 : 2);
    *m = type == HEED_QUANT_Q4_1 ? _cvtsh_ss(quant_load_u16(block + 2)) : -8 * *d;
    __m256i first = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)nibbles));         // bytes 0–7
    __m256i second = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(nibbles + 8)));  // bytes 8–15
    __m256i mask = _mm256_set1_epi32(0x0F);
    q[0] = _mm256_cvtepi32_ps(_mm256_and_si256(first, mask));
    q[1] = _mm256_cvtepi32_ps(_mm256_and_si256(second, mask));
    q[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(first, 4));
    q[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(second, 4));
}

QUANT_AVX2_INLINE float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// acc[t] += d · Σ_j q_j x_j of one block for each token (and offset[t] += m · Σ_j x_j for Q4_1).
QUANT_AVX2_INLINE void block_tokens(const heed_quant_type type, const int tokens, const uint8_t *block,
                                    const float *x, int64_t columns, int64_t b, const float *sums, int64_t blocks,
                                    __m256 acc[4], float offset[4]) {
    __m256 q[4];
    float d, m = 0;
    _mm_prefetch((const char *)block + QUANT_PREFETCH_BYTES, _MM_HINT_T0);
    unpack(type, block, q, &d, &m);
    __m256 scale = _mm256_set1_ps(d);
    for (int t = 0; t < tokens; t++) {
        const float *xb = x + t * columns + b * 32;
        __m256 s = _mm256_mul_ps(q[0], _mm256_loadu_ps(xb));
        s = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(xb + 8), s);
        s = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xb + 16), s);
        s = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xb + 24), s);
        acc[t] = _mm256_fmadd_ps(scale, s, acc[t]);
        if (type != HEED_QUANT_Q8_0) offset[t] += m * sums[t * blocks + b];
    }
}

/// Rows [r0, r1) × `tokens` tokens from x (≤ 4): tokens and type are
/// constants after inlining, so the accumulators stay in registers. Blocks go
/// in pairs into two accumulators per token (even and odd blocks), vector and
/// offset alike: one chain of 4-cycle FMAs per sum would otherwise bound a
/// block to 4 cycles.
QUANT_AVX2_INLINE void rows_tokens(const heed_quant_type type, const int tokens, const uint8_t *w, int64_t columns,
                                   int64_t r0, int64_t r1, const float *x, float *y, int64_t y_stride,
                                   const float *sums) {
    const int64_t blocks = columns / 32, block_bytes = quant_block_bytes(type);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * blocks * block_bytes;
        __m256 even[4], odd[4];
        float even_offset[4] = {0, 0, 0, 0}, odd_offset[4] = {0, 0, 0, 0};
        for (int t = 0; t < tokens; t++) even[t] = odd[t] = _mm256_setzero_ps();
        int64_t b = 0;
        for (; b + 2 <= blocks; b += 2) {
            block_tokens(type, tokens, row + b * block_bytes, x, columns, b, sums, blocks, even, even_offset);
            block_tokens(type, tokens, row + (b + 1) * block_bytes, x, columns, b + 1, sums, blocks, odd, odd_offset);
        }
        if (b < blocks) block_tokens(type, tokens, row + b * block_bytes, x, columns, b, sums, blocks, even, even_offset);
        for (int t = 0; t < tokens; t++) {
            y[t * y_stride + r] = horizontal_sum(_mm256_add_ps(even[t], odd[t])) + (even_offset[t] + odd_offset[t]);
        }
    }
}

QUANT_AVX2_INLINE void matmul_type(const heed_quant_type type, const uint8_t *w, int64_t columns, int64_t r0,
                                   int64_t r1, const float *x, int64_t n, float *y, int64_t y_stride, const float *sums) {
    const int64_t blocks = columns / 32;
    int64_t t0 = 0;
    for (; t0 + 4 <= n; t0 += 4) {
        rows_tokens(type, 4, w, columns, r0, r1, x + t0 * columns, y + t0 * y_stride, y_stride, sums + t0 * blocks);
    }
    const float *xt = x + t0 * columns, *st = sums + t0 * blocks;
    float *yt = y + t0 * y_stride;
    switch (n - t0) {
    case 3: rows_tokens(type, 3, w, columns, r0, r1, xt, yt, y_stride, st); break;
    case 2: rows_tokens(type, 2, w, columns, r0, r1, xt, yt, y_stride, st); break;
    case 1: rows_tokens(type, 1, w, columns, r0, r1, xt, yt, y_stride, st); break;
    default: break;
    }
}

QUANT_AVX2 void heed_quant_matmul_avx2(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                                       int64_t row_end, const float *x, int64_t n, float *y, int64_t y_stride,
                                       const float *block_sums) {
    const uint8_t *w = (const uint8_t *)weights;
    switch (type) {
    case HEED_QUANT_Q4_0: matmul_type(HEED_QUANT_Q4_0, w, columns, row_begin, row_end, x, n, y, y_stride, block_sums); break;
    case HEED_QUANT_Q4_1: matmul_type(HEED_QUANT_Q4_1, w, columns, row_begin, row_end, x, n, y, y_stride, block_sums); break;
    case HEED_QUANT_Q8_0: matmul_type(HEED_QUANT_Q8_0, w, columns, row_begin, row_end, x, n, y, y_stride, block_sums); break;
    }
}

// MARK: Quantised activations

QUANT_AVX2 void heed_quant_activations_q8_avx2(const float *x, int64_t n, int64_t columns, heed_q8_block *out) {
    const int64_t blocks = columns / 32;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n * blocks; i++) {
        const float *xb = x + i * 32;
        __m256 v[4], most = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            most = _mm256_max_ps(most, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(most), _mm256_extractf128_ps(most, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float d = _mm_cvtss_f32(m4) / 127, inverse = d != 0 ? 1 / d : 0;
        __m256 scale = _mm256_set1_ps(inverse);
        __m256i total = _mm256_setzero_si256();
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], scale));   // to nearest, ties to even
            total = _mm256_add_epi32(total, q[k]);
        }
        // Narrow 4 × 8 int32 to 32 int8 in order (packs interleave 128-bit lanes; the permute undoes it).
        __m256i words = _mm256_packs_epi32(q[0], q[1]), words2 = _mm256_packs_epi32(q[2], q[3]);
        __m256i bytes = _mm256_packs_epi16(words, words2);
        bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[i].q, bytes);
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0x4E));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0xB1));
        out[i].d = d;
        out[i].s = d * (float)_mm_cvtsi128_si32(t4);
    }
}

/// Σ_j q_j p_j of one weight block against 32 int8 activations, in 8 int32
/// lanes (converted to float): unsigned nibbles × signed activations through
/// VPMADDUBSW (pairs summed in int16: |15·127·2| fits), then VPMADDWD with ones.
/// Q8_0's signed weights use |w| × sign(w)·p, as llama.cpp does.
QUANT_AVX2_INLINE __m256 q8_dot(const heed_quant_type type, const uint8_t *block, const int8_t *p) {
    __m256i activations = _mm256_loadu_si256((const __m256i *)p);
    __m256i products;
    if (type == HEED_QUANT_Q8_0) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(block + 2));
        products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(activations, w));
    } else {
        __m128i raw = _mm_loadu_si128((const __m128i *)(block + (type == HEED_QUANT_Q4_1 ? 4 : 2)));
        __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
        products = _mm256_maddubs_epi16(nibbles, activations);
    }
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(products, _mm256_set1_epi16(1)));
}

/// acc += d_w·d_x · Σ q p of one block; offset += its m·s_x term.
QUANT_AVX2_INLINE void q8_block(const heed_quant_type type, const uint8_t *block, const heed_q8_block *x,
                                __m256 *acc, float *offset) {
    float d = _cvtsh_ss(quant_load_u16(block));
    _mm_prefetch((const char *)block + QUANT_PREFETCH_BYTES, _MM_HINT_T0);
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x->d), q8_dot(type, block, x->q), *acc);
    if (type == HEED_QUANT_Q4_1) *offset += _cvtsh_ss(quant_load_u16(block + 2)) * x->s;
    if (type == HEED_QUANT_Q4_0) *offset += -8 * d * x->s;
}

/// Rows [r0, r1) × n tokens; blocks in even/odd pairs (two chains, as in rows_tokens).
QUANT_AVX2_INLINE void matmul_q8_type(const heed_quant_type type, const uint8_t *w, int64_t columns, int64_t r0, int64_t r1,
                                      const heed_q8_block *x, int64_t n, float *y, int64_t y_stride) {
    const int64_t blocks = columns / 32, block_bytes = quant_block_bytes(type);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * blocks * block_bytes;
        for (int64_t t = 0; t < n; t++) {
            const heed_q8_block *xt = x + t * blocks;
            __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
            float even_offset = 0, odd_offset = 0;
            int64_t b = 0;
            for (; b + 2 <= blocks; b += 2) {
                q8_block(type, row + b * block_bytes, xt + b, &even, &even_offset);
                q8_block(type, row + (b + 1) * block_bytes, xt + b + 1, &odd, &odd_offset);
            }
            if (b < blocks) q8_block(type, row + b * block_bytes, xt + b, &even, &even_offset);
            y[t * y_stride + r] = horizontal_sum(_mm256_add_ps(even, odd)) + (even_offset + odd_offset);
        }
    }
}

QUANT_AVX2 void heed_quant_matmul_q8_avx2(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                                          int64_t row_end, const heed_q8_block *x, int64_t n, float *y, int64_t y_stride) {
    const uint8_t *w = (const uint8_t *)weights;
    switch (type) {
    case HEED_QUANT_Q4_0: matmul_q8_type(HEED_QUANT_Q4_0, w, columns, row_begin, row_end, x, n, y, y_stride); break;
    case HEED_QUANT_Q4_1: matmul_q8_type(HEED_QUANT_Q4_1, w, columns, row_begin, row_end, x, n, y, y_stride); break;
    case HEED_QUANT_Q8_0: matmul_q8_type(HEED_QUANT_Q8_0, w, columns, row_begin, row_end, x, n, y, y_stride); break;
    }
}

// MARK: Dequantisation

/// d·q is exact in f32 (an 11-bit significand times a ≤ 8-bit integer), so
/// the fused d·q + m of Q4_1 rounds once, like the reference's multiply-then-add;
/// Q4_0 computes (q − 8)·d as the reference does (q − 8 is exact).
QUANT_AVX2_INLINE void dequantize_type(const heed_quant_type type, const uint8_t *w, int64_t columns, int64_t r0,
                                       int64_t r1, float *out) {
    const int64_t blocks = columns / 32, block_bytes = quant_block_bytes(type);
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t b = 0; b < blocks; b++) {
            __m256 q[4];
            float d, m = 0;
            unpack(type, w + (r * blocks + b) * block_bytes, q, &d, &m);
            __m256 scale = _mm256_set1_ps(d), offset = _mm256_set1_ps(m);
            float *o = out + (r - r0) * columns + b * 32;
            for (int k = 0; k < 4; k++) {
                __m256 value = type == HEED_QUANT_Q4_1 ? _mm256_fmadd_ps(q[k], scale, offset)
                             : type == HEED_QUANT_Q4_0 ? _mm256_mul_ps(_mm256_sub_ps(q[k], _mm256_set1_ps(8)), scale)
                                                       : _mm256_mul_ps(q[k], scale);
                _mm256_storeu_ps(o + 8 * k, value);
            }
        }
    }
}

QUANT_AVX2 void heed_quant_dequantize_avx2(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                                           int64_t row_end, float *out) {
    const uint8_t *w = (const uint8_t *)weights;
    switch (type) {
    case HEED_QUANT_Q4_0: dequantize_type(HEED_QUANT_Q4_0, w, columns, row_begin, row_end, out); break;
    case HEED_QUANT_Q4_1: dequantize_type(HEED_QUANT_Q4_1, w, columns, row_begin, row_end, out); break;
    case HEED_QUANT_Q8_0: dequantize_type(HEED_QUANT_Q8_0, w, columns, row_begin, row_end, out); break;
    }
}

#endif
