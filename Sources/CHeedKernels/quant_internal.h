// Shared by quant_portable.c (dispatch + portable kernels) and quant_avx2.c.
#ifndef HEED_QUANT_INTERNAL_H
#define HEED_QUANT_INTERNAL_H

#include "heed_quant.h"
#include <string.h>

/// Bytes of one block of 32 weights.
static inline int64_t quant_block_bytes(heed_quant_type type) {
    switch (type) {
    case HEED_QUANT_Q4_0: return 18;
    case HEED_QUANT_Q4_1: return 20;
    case HEED_QUANT_Q8_0: return 34;
    }
    return 0;
}

/// The little-endian u16 at p.
static inline uint16_t quant_load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/// IEEE binary16 → binary32, exact (normals, subnormals, ±0, ±∞, NaN with payload).
static inline float quant_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent == 0) {
        float magnitude = (float)mantissa * 0x1p-24f;   // exact
        return sign ? -magnitude : magnitude;
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

/// Σ of each block of 32 of x [n, columns] into sums [n, columns / 32].
static inline void quant_block_sums(const float *x, int64_t n, int64_t columns, float *sums) {
    int64_t blocks = columns / 32;
    for (int64_t t = 0; t < n; t++) {
        for (int64_t b = 0; b < blocks; b++) {
            const float *xb = x + t * columns + b * 32;
            float s = 0;
            for (int j = 0; j < 32; j++) s += xb[j];
            sums[t * blocks + b] = s;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
void heed_quant_matmul_avx2(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                            int64_t row_end, const float *x, int64_t n, float *y, int64_t y_stride,
                            const float *block_sums);
void heed_quant_activations_q8_avx2(const float *x, int64_t n, int64_t columns, heed_q8_block *out);
void heed_quant_matmul_q8_avx2(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                               int64_t row_end, const heed_q8_block *x, int64_t n, float *y, int64_t y_stride);
void heed_quant_dequantize_avx2(heed_quant_type type, const void *weights, int64_t columns, int64_t row_begin,
                                int64_t row_end, float *out);
#endif

#endif
