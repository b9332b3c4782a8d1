// Exact round-to-nearest-even conversions between f32 and f16 / bf16.
// Pure integer arithmetic on the bit patterns: identical on every machine.
#include "heed_kernels.h"
#include <string.h>

static inline uint32_t f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

static inline uint16_t f32_to_f16_one(float value) {
    uint32_t x = f32_bits(value);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exponent = (x >> 23) & 0xFFu;
    uint32_t mantissa = x & 0x7FFFFFu;
    if (exponent == 0xFFu) {                       // inf or NaN (NaN stays quiet NaN)
        return (uint16_t)(sign | 0x7C00u | (mantissa ? (0x200u | (mantissa >> 13)) : 0));
    }
    int32_t e = (int32_t)exponent - 127 + 15;      // rebias
    if (e >= 31) return (uint16_t)(sign | 0x7C00u); // overflow → inf
    if (e <= 0) {                                  // f16 subnormal or zero
        if (e < -10) return (uint16_t)sign;        // below half the smallest subnormal → ±0
        uint32_t m = mantissa | 0x800000u;          // implicit leading one
        uint32_t shift = (uint32_t)(14 - e);        // 24-bit mantissa → subnormal field
        uint32_t half = 1u << (shift - 1);
        uint32_t rest = m & ((1u << shift) - 1);
        uint32_t result = m >> shift;
        if (rest > half || (rest == half && (result & 1u))) result += 1;
        return (uint16_t)(sign | result);           // a carry into the exponent is correct
    }
    uint32_t result = ((uint32_t)e << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (result & 1u))) result += 1; // may round up to inf: correct
    return (uint16_t)(sign | result);
}

static inline float f16_to_f32_one(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu) return bits_f32(sign | 0x7F800000u | (mantissa << 13));
    if (exponent == 0) {
        if (mantissa == 0) return bits_f32(sign);
        // Subnormal: value = mantissa · 2^-24, exact in f32.
        float v = (float)mantissa * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

static inline uint16_t f32_to_bf16_one(float value) {
    uint32_t x = f32_bits(value);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu)) {
        return (uint16_t)((x >> 16) | 0x40u);      // NaN stays a quiet NaN
    }
    uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)((x + rounding) >> 16);
}

void heed_f32_to_f16(const float *x, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = f32_to_f16_one(x[i]);
}
void heed_f16_to_f32(const uint16_t *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = f16_to_f32_one(x[i]);
}
void heed_f32_to_bf16(const float *x, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16_one(x[i]);
}
void heed_bf16_to_f32(const uint16_t *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = bits_f32((uint32_t)x[i] << 16);
}
