// Portable C kernels: the reference every SIMD path is tested against, and the
// path taken on CPUs without AVX2+FMA. Plain loops that any compiler can
// auto-vectorise at its baseline ISA.
#include "kernels_internal.h"
#include <math.h>

// x·Φ(x) through erfc: ½x·erfc(−x/√2) does not cancel for x ≪ 0 as ½x(1 + erf(x/√2)) does.
static inline float gelu_erf(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static inline float gelu_tanh(float x) {
    const float c = 0.79788456080286536f; // √(2/π)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}
static inline float sigmoid(float x) {
    // Stable both ways: exp never overflows.
    if (x >= 0) { return 1.0f / (1.0f + expf(-x)); }
    float e = expf(x);
    return e / (1.0f + e);
}

static float unary_one(heed_unary_op op, float x) {
    switch (op) {
    case HEED_NEG: return -x;
    case HEED_EXP: return expf(x);
    case HEED_LOG: return logf(x);
    case HEED_SQRT: return sqrtf(x);
    case HEED_RSQRT: return 1.0f / sqrtf(x);
    case HEED_TANH: return tanhf(x);
    case HEED_SIGMOID: return sigmoid(x);
    case HEED_RELU: return x > 0 ? x : 0.0f;
    case HEED_GELU_ERF: return gelu_erf(x);
    case HEED_GELU_TANH: return gelu_tanh(x);
    case HEED_SILU: return x * sigmoid(x);
    case HEED_ABS: return fabsf(x);
    case HEED_ERF: return erff(x);
    case HEED_GELU_ERF_GRAD: {
        // Φ(x) + x·φ(x)
        float cdf = 0.5f * erfcf(-x * 0.70710678118654752f);
        float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case HEED_GELU_TANH_GRAD: {
        // Beyond |x| = 20 the derivative is exactly 1 or 0 in float; the formula
        // below would give inf·0 = NaN once x³ overflows (|x| > 1.8e19, ±inf).
        if (x > 20.0f) return 1.0f;
        if (x < -20.0f) return 0.0f;
        const float c = 0.79788456080286536f;
        float u = c * (x + 0.044715f * x * x * x);
        float t = tanhf(u);
        float du = c * (1.0f + 3.0f * 0.044715f * x * x);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case HEED_SILU_GRAD: {
        float s = sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case HEED_SIGN: return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    case HEED_STEP: return x > 0 ? 1.0f : 0.0f;
    case HEED_RECIPROCAL: return 1.0f / x;
    case HEED_SQUARE: return x * x;
    }
    return x;
}

static void portable_unary(heed_unary_op op, const float *x, float *out, int64_t n) {
    switch (op) {
    case HEED_NEG: for (int64_t i = 0; i < n; i++) out[i] = -x[i]; return;
    case HEED_ABS: for (int64_t i = 0; i < n; i++) out[i] = fabsf(x[i]); return;
    case HEED_RELU: for (int64_t i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0.0f; return;
    case HEED_SQUARE: for (int64_t i = 0; i < n; i++) out[i] = x[i] * x[i]; return;
    default: for (int64_t i = 0; i < n; i++) out[i] = unary_one(op, x[i]); return;
    }
}

static inline float binary_one(heed_binary_op op, float a, float b) {
    switch (op) {
    case HEED_ADD: return a + b;
    case HEED_SUB: return a - b;
    case HEED_MUL: return a * b;
    case HEED_DIV: return a / b;
    case HEED_MAXIMUM: return (a != a || b != b) ? NAN : (a > b ? a : b);
    case HEED_MINIMUM: return (a != a || b != b) ? NAN : (a < b ? a : b);
    case HEED_POW: return powf(a, b);
    case HEED_EQUAL: return a == b ? 1.0f : 0.0f;
    case HEED_GREATER: return a > b ? 1.0f : 0.0f;
    case HEED_LESS: return a < b ? 1.0f : 0.0f;
    }
    return a;
}

#define HEED_BINARY_LOOPS(EXPR)                                                          \
    if (sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); } } \
    else if (sa == 1) { float y = b[0]; for (int64_t i = 0; i < n; i++) { float x = a[i]; out[i] = (EXPR); } } \
    else if (sb == 1) { float x = a[0]; for (int64_t i = 0; i < n; i++) { float y = b[i]; out[i] = (EXPR); } } \
    else { float x = a[0], y = b[0]; float v = (EXPR); for (int64_t i = 0; i < n; i++) out[i] = v; }

static void portable_binary(heed_binary_op op, const float *a, int64_t sa, const float *b, int64_t sb,
                            float *out, int64_t n) {
    switch (op) {
    case HEED_ADD: HEED_BINARY_LOOPS(x + y); return;
    case HEED_SUB: HEED_BINARY_LOOPS(x - y); return;
    case HEED_MUL: HEED_BINARY_LOOPS(x * y); return;
    case HEED_DIV: HEED_BINARY_LOOPS(x / y); return;
    default: HEED_BINARY_LOOPS(binary_one(op, x, y)); return;
    }
}

static float portable_reduce(heed_reduce_op op, const float *x, int64_t n) {
    if (op == HEED_REDUCE_SUM) {
        // Eight independent accumulators, summed pairwise at the end.
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            for (int k = 0; k < 8; k++) acc[k] += x[i + k];
        }
        for (; i < n; i++) acc[i & 7] += x[i];
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    float r = op == HEED_REDUCE_MAX ? -INFINITY : INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (v != v) return NAN;
        if (op == HEED_REDUCE_MAX ? v > r : v < r) r = v;
    }
    return r;
}

static void portable_accumulate(heed_reduce_op op, float *acc, const float *x, int64_t n) {
    switch (op) {
    case HEED_REDUCE_SUM: for (int64_t i = 0; i < n; i++) acc[i] += x[i]; return;
    case HEED_REDUCE_MAX: for (int64_t i = 0; i < n; i++) acc[i] = binary_one(HEED_MAXIMUM, acc[i], x[i]); return;
    case HEED_REDUCE_MIN: for (int64_t i = 0; i < n; i++) acc[i] = binary_one(HEED_MINIMUM, acc[i], x[i]); return;
    }
}

static void portable_softmax_rows(const float *x, float *out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = portable_reduce(HEED_REDUCE_MAX, xr, cols);
        if (m == -INFINITY) { for (int64_t c = 0; c < cols; c++) yr[c] = 0.0f; continue; }
        float s = 0.0f;
        for (int64_t c = 0; c < cols; c++) { yr[c] = expf(xr[c] - m); s += yr[c]; }
        float inv = 1.0f / s;
        for (int64_t c = 0; c < cols; c++) yr[c] *= inv;
    }
}

static void portable_log_softmax_rows(const float *x, float *out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = portable_reduce(HEED_REDUCE_MAX, xr, cols);
        if (m == -INFINITY) { for (int64_t c = 0; c < cols; c++) yr[c] = -INFINITY; continue; }
        float s = 0.0f;
        for (int64_t c = 0; c < cols; c++) s += expf(xr[c] - m);
        float lse = m + logf(s);
        for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] - lse;
    }
}

static void portable_affine(const float *x, float scale, float shift, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = scale * x[i] + shift;
}

static void portable_layer_norm_rows(const float *x, float *out, int64_t rows, int64_t cols, const float *weight,
                                     const float *bias, float epsilon) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        const float mean = portable_reduce(HEED_REDUCE_SUM, xr, cols) / (float)cols;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                 // Σ (x − μ)², summed as portable_reduce does
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            for (int k = 0; k < 8; k++) acc[k] += (xr[c + k] - mean) * (xr[c + k] - mean);
        }
        for (; c < cols; c++) acc[c & 7] += (xr[c] - mean) * (xr[c] - mean);
        const float variance = (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) / (float)cols;
        const float inverse = 1.0f / sqrtf(variance + epsilon);
        for (c = 0; c < cols; c++) {
            float y = (xr[c] - mean) * inverse;
            if (weight) y *= weight[c];
            if (bias) y += bias[c];
            yr[c] = y;
        }
    }
}

const heed_kernel_table heed_portable_kernels = {
    portable_binary, portable_unary, portable_reduce, portable_accumulate,
    portable_softmax_rows, portable_log_softmax_rows, portable_affine, portable_layer_norm_rows, "portable",
};
