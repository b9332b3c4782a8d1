// Portable primitives of the linear-attention kernels: plain C that any
// compiler vectorises as far as it can (the j loops are unit-stride), and
// libm for exp, sin and cos. The AVX2+FMA versions (linear_avx2.c) compute the
// same things; tests hold both to the composed reference.
#include "linear_internal.h"
#include <math.h>

/// The k range of row i under a triangle (see heed_triangle).
static void depth_range(heed_triangle triangle, int64_t i, int64_t depth, int64_t *start, int64_t *end) {
    *start = 0;
    *end = depth;
    if (triangle == HEED_TRIANGLE_A_LOWER) *end = i + 1 < depth ? i + 1 : depth;
    if (triangle == HEED_TRIANGLE_A_UPPER) *start = i < depth ? i : depth;
}

static void portable_gemm(int64_t m, int64_t n, int64_t depth, const float *a, int64_t a_row, int64_t a_column,
                          const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate, heed_triangle triangle) {
    for (int64_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        int64_t columns = triangle == HEED_TRIANGLE_OUTPUT_LOWER ? (i + 1 < n ? i + 1 : n) : n;
        if (!accumulate) for (int64_t j = 0; j < columns; j++) row[j] = 0;
        int64_t k0, k1;
        depth_range(triangle, i, depth, &k0, &k1);
        for (int64_t k = k0; k < k1; k++) {
            const float scalar = a[i * a_row + k * a_column];
            const float *source = b + k * ldb;
            for (int64_t j = 0; j < columns; j++) row[j] += scalar * source[j];
        }
    }
}

static void portable_exp_shifted(const float *x, float shift, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = expf(x[i] + shift);
}

static void portable_performer_features(const float *u, const float *half_norm, const float *shift, int64_t rows, int64_t m,
                                        float epsilon, float scale, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < m; i++) out[r * m + i] = (expf((u[r * m + i] - half_norm[r]) - shift[r]) + epsilon) * scale;
    }
}

static void portable_sincos_features(const float *u, int64_t rows, int64_t m, float angle_scale, float scale, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < m; i++) {
            const float angle = u[r * m + i] * angle_scale;
            out[r * 2 * m + i] = sinf(angle) * scale;
            out[r * 2 * m + m + i] = cosf(angle) * scale;
        }
    }
}

static void portable_elu_plus_one(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] + 1 : expf(x[i]);
}

static void portable_row_maxima(const float *u, int64_t rows, int64_t m, float *maximum, int64_t *index, int64_t *count) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = u + r * m;
        float best = row[0];
        int64_t at = 0, ties = 1;
        for (int64_t i = 1; i < m && best == best; i++) {
            if (row[i] > best || row[i] != row[i]) { best = row[i]; at = i; ties = 1; }
            else if (row[i] == best) ties++;
        }
        maximum[r] = best;
        index[r] = at;
        count[r] = best == best ? ties : 0;   // NaN equals nothing
    }
}

const heed_linear_table heed_linear_portable = {
    .gemm = portable_gemm,
    .exp_shifted = portable_exp_shifted,
    .performer_features = portable_performer_features,
    .sincos_features = portable_sincos_features,
    .elu_plus_one = portable_elu_plus_one,
    .row_maxima = portable_row_maxima,
};
