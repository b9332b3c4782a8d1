// Quantised matrix products: run-time dispatch and the portable C kernels
// (the reference the AVX2 ones are tested against). See heed_quant.h.
#include "quant_internal.h"
#include "kernels_internal.h"
#include <math.h>
#include <stdlib.h>

int64_t heed_quant_row_bytes(heed_quant_type type, int64_t columns) { return columns / 32 * quant_block_bytes(type); }

/// The 32 weights of one block, as the reference dequantisation computes them.
static void dequantize_block(heed_quant_type type, const uint8_t *block, float *out) {
    float d = quant_half_to_float(quant_load_u16(block));
    switch (type) {
    case HEED_QUANT_Q4_0:
        for (int j = 0; j < 16; j++) {
            out[j] = (float)((block[2 + j] & 0x0F) - 8) * d;
            out[j + 16] = (float)((block[2 + j] >> 4) - 8) * d;
        }
        break;
    case HEED_QUANT_Q4_1: {
        float m = quant_half_to_float(quant_load_u16(block + 2));
        for (int j = 0; j < 16; j++) {
            float low = (float)(block[4 + j] & 0x0F) * d, high = (float)(block[4 + j] >> 4) * d;
            out[j] = low + m;
            out[j + 16] = high + m;
        }
        break;
    }
    case HEED_QUANT_Q8_0:
        for (int j = 0; j < 32; j++) out[j] = (float)(int8_t)block[2 + j] * d;
        break;
    }
}

static void dequantize_portable(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                                int64_t row_end, float *out) {
    int64_t blocks = columns / 32, block_bytes = quant_block_bytes(type);
    const uint8_t *w = (const uint8_t *)weights;
    for (int64_t r = row_begin; r < row_end; r++) {
        for (int64_t b = 0; b < blocks; b++) {
            dequantize_block(type, w + (r * blocks + b) * block_bytes, out + (r - row_begin) * columns + b * 32);
        }
    }
}

static void matmul_portable(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                            int64_t row_end, const float *x, int64_t n, float *y, int64_t y_stride) {
    int64_t blocks = columns / 32, block_bytes = quant_block_bytes(type);
    const uint8_t *w = (const uint8_t *)weights;
    float values[32];
    for (int64_t r = row_begin; r < row_end; r++) {
        for (int64_t t = 0; t < n; t++) y[t * y_stride + r] = 0;
        for (int64_t b = 0; b < blocks; b++) {
            dequantize_block(type, w + (r * blocks + b) * block_bytes, values);
            for (int64_t t = 0; t < n; t++) {
                const float *xb = x + t * columns + b * 32;
                float s = 0;
                for (int j = 0; j < 32; j++) s += values[j] * xb[j];
                y[t * y_stride + r] += s;
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
/// AVX2+FMA active (heed_kernels_force_portable not set) and F16C present.
static int use_avx2(void) {
    if (!heed_kernels_avx2_active()) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c");
}
#else
static int use_avx2(void) { return 0; }
#endif

void heed_quant_matmul_f32(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                           int64_t row_end, const float *x, int64_t n, float *y, int64_t y_stride) {
    if (quant_block_bytes(type) == 0 || row_end <= row_begin || n <= 0) return;
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2()) {
        float stack[512];
        int64_t count = n * (columns / 32);
        float *sums = count <= 512 ? stack : (float *)malloc((size_t)count * sizeof(float));
        if (sums != NULL) {
            quant_block_sums(x, n, columns, sums);
            heed_quant_matmul_avx2(type, weights, columns, row_begin, row_end, x, n, y, y_stride, sums);
            if (sums != stack) free(sums);
            return;
        }
    }
#endif
    matmul_portable(type, weights, columns, row_begin, row_end, x, n, y, y_stride);
}

void heed_quant_dequantize_f32(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                               int64_t row_end, float *out) {
    if (quant_block_bytes(type) == 0 || row_end <= row_begin) return;
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2()) {
        heed_quant_dequantize_avx2(type, weights, columns, row_begin, row_end, out);
        return;
    }
#endif
    dequantize_portable(type, weights, columns, row_begin, row_end, out);
}

void heed_quant_activations_q8(const float *x, int64_t n, int64_t columns, heed_q8_block *out) {
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2()) {
        heed_quant_activations_q8_avx2(x, n, columns, out);
        return;
    }
#endif
    int64_t blocks = columns / 32;
    for (int64_t t = 0; t < n; t++) {
        for (int64_t b = 0; b < blocks; b++) {
            const float *xb = x + t * columns + b * 32;
            heed_q8_block *o = out + t * blocks + b;
            float most = 0;
            for (int j = 0; j < 32; j++) most = fmaxf(most, fabsf(xb[j]));
            float d = most / 127, inverse = d != 0 ? 1 / d : 0;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                int q = (int)nearbyintf(xb[j] * inverse);   // ties to even (the default rounding mode)
                o->q[j] = (int8_t)q;
                sum += q;
            }
            o->d = d;
            o->s = d * (float)sum;
        }
    }
}

/// Σ_j q_j p_j and the block's (d_w, m) for one weight block against one activation block.
static float q8_block_dot(heed_quant_type type, const uint8_t *block, const heed_q8_block *x) {
    float d = quant_half_to_float(quant_load_u16(block));
    int dot = 0;
    switch (type) {
    case HEED_QUANT_Q4_0:
    case HEED_QUANT_Q4_1: {
        const uint8_t *nibbles = block + (type == HEED_QUANT_Q4_1 ? 4 : 2);
        for (int j = 0; j < 16; j++) dot += (nibbles[j] & 0x0F) * x->q[j] + (nibbles[j] >> 4) * x->q[j + 16];
        float m = type == HEED_QUANT_Q4_1 ? quant_half_to_float(quant_load_u16(block + 2)) : -8 * d;
        return d * x->d * (float)dot + m * x->s;
    }
    case HEED_QUANT_Q8_0:
        for (int j = 0; j < 32; j++) dot += (int8_t)block[2 + j] * x->q[j];
        return d * x->d * (float)dot;
    }
    return 0;
}

void heed_quant_matmul_q8(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin, int64_t row_end,
                          const heed_q8_block *x, int64_t n, float *y, int64_t y_stride) {
    if (quant_block_bytes(type) == 0 || row_end <= row_begin || n <= 0) return;
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2()) {
        heed_quant_matmul_q8_avx2(type, weights, columns, row_begin, row_end, x, n, y, y_stride);
        return;
    }
#endif
    int64_t blocks = columns / 32, block_bytes = quant_block_bytes(type);
    const uint8_t *w = (const uint8_t *)weights;
    for (int64_t r = row_begin; r < row_end; r++) {
        for (int64_t t = 0; t < n; t++) {
            float sum = 0;
            for (int64_t b = 0; b < blocks; b++) sum += q8_block_dot(type, w + (r * blocks + b) * block_bytes, x + t * blocks + b);
            y[t * y_stride + r] = sum;
        }
    }
}
