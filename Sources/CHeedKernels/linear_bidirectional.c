// The bidirectional form of kernelized attention, forward and backward
// (heed_linear.h): the summary of all keys, then the queries, chunk by chunk
// through the dispatched small products (linear_avx2.c / linear_portable.c).
//
//  (1) S   = Σ_c φ(K_c)ᵀ V'_c,   V' = [V | 1]                 [F, Dv+1], shared by the G query heads
//  (2) U_c = φ(Q_c) S                                          [C, Dv+1]
//  (3) out = U[:, :Dv] / (U[:, Dv] + ε)
//
// Backward, stages in reverse: (3) ∂U from ∂out; (2) ∂φ(Q_c) = ∂U_c Sᵀ and
// ∂S = Σ_c φ(Q_c)ᵀ ∂U_c; (1) ∂φ(K_c) = V'_c ∂Sᵀ, ∂V'_c = φ(K_c) ∂S.
//
// With a feature map in the shape (elu + 1, random Fourier features, Performer) the
// inputs are q and k: each chunk's φ is computed into scratch where it is read
// (`phi`, [C, F]), and ∂φ becomes ∂q, ∂k chunk by chunk.
#include "linear_internal.h"
#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/// (1): S = Σ_c φ(K_c)ᵀ V'_c over chunks of `chunk` keys; `vp` [chunk, Dv+1] and `phi` [chunk, F] are scratch.
static void summarize(const heed_linear_table *k, const heed_linear_scan_shape *shape, const float *key_features,
                      const float *value, float *vp, float *phi, float *map_scratch, float *summary) {
    const int64_t f = shape->features, dv = shape->value_dim, dp = dv + 1, w = heed_linear_input_width(shape);
    for (int64_t start = 0; start < shape->key_length; start += shape->chunk) {
        const int64_t n = min64(shape->chunk, shape->key_length - start);
        const float *keys = heed_linear_features(k, shape, HEED_LINEAR_KEYS, key_features + start * w, n, phi, map_scratch);
        heed_linear_load_values(value, dv, start, n, vp);
        k->gemm(f, dp, n, keys, 1, f, vp, dp, summary, dp, start > 0, HEED_TRIANGLE_NONE);
    }
}

int heed_linear_bidirectional_forward(const heed_linear_scan_shape *shape,
                                      const float *query_features, const float *key_features, const float *value,
                                      float *out, float *denominator, float *summary) {
    const heed_linear_table *k = heed_linear_active();
    const int64_t f = shape->features, dv = shape->value_dim, dp = dv + 1, c = shape->chunk, w = heed_linear_input_width(shape);
    const int64_t map_size = heed_linear_map_scratch(shape);
    float *scratch = malloc((size_t)(c * dp + c * dp + c * f + map_size + (summary ? 0 : f * dp)) * sizeof(float));
    if (!scratch) return -1;
    float *vp = scratch, *u = vp + c * dp, *phi = u + c * dp, *map_scratch = phi + c * f;
    float *s = summary ? summary : map_scratch + map_size;
    summarize(k, shape, key_features, value, vp, phi, map_scratch, s);                          // (1)
    for (int64_t head = 0; head < shape->heads; head++) {
        for (int64_t start = 0; start < shape->query_length; start += c) {
            const int64_t n = min64(c, shape->query_length - start), row = head * shape->query_length + start;
            const float *queries = heed_linear_features(k, shape, HEED_LINEAR_QUERIES, query_features + row * w, n, phi, map_scratch);
            k->gemm(n, dp, f, queries, f, 1, s, dp, u, dp, 0, HEED_TRIANGLE_NONE);                  // (2)
            for (int64_t t = 0; t < n; t++)                                                          // (3)
                denominator[row + t] = heed_linear_normalize_row(u + t * dp, dv, shape->epsilon, out + (row + t) * dv);
        }
    }
    free(scratch);
    return 0;
}

int heed_linear_bidirectional_backward(const heed_linear_scan_shape *shape,
                                       const float *query_features, const float *key_features, const float *value,
                                       const float *out, const float *denominator, const float *summary,
                                       const float *grad_out,
                                       float *grad_query_features, float *grad_key_features, float *grad_value) {
    const heed_linear_table *k = heed_linear_active();
    const int64_t f = shape->features, dv = shape->value_dim, dp = dv + 1, c = shape->chunk, w = heed_linear_input_width(shape);
    float *scratch = malloc((size_t)(2 * c * dp + 3 * f * dp + 2 * c * f + heed_linear_map_scratch(shape)) * sizeof(float));
    if (!scratch) return -1;
    float *vp = scratch, *du = vp + c * dp, *st = du + c * dp, *ds = st + f * dp, *dst = ds + f * dp, *phi = dst + f * dp;
    float *dphi = phi + c * f, *map_scratch = dphi + c * f;
    heed_linear_transpose(summary, f, dp, dp, st);                                              // Sᵀ [Dv+1, F]
    heed_linear_feature_gradient_begin(shape);
    int has_gradient = 0;
    for (int64_t head = 0; head < shape->heads; head++) {
        for (int64_t start = 0; start < shape->query_length; start += c) {
            const int64_t n = min64(c, shape->query_length - start), row = head * shape->query_length + start;
            for (int64_t t = 0; t < n; t++)                                                          // (3)
                heed_linear_row_gradient(grad_out + (row + t) * dv, out + (row + t) * dv, denominator[row + t], dv, du + t * dp);
            const float *raw = query_features + row * w, *queries = heed_linear_features(k, shape, HEED_LINEAR_QUERIES, raw, n, phi, map_scratch);
            float *grad_queries = heed_linear_feature_gradient_buffer(shape, grad_query_features + row * w, dphi);
            k->gemm(n, f, dp, du, dp, 1, st, f, grad_queries, f, 0, HEED_TRIANGLE_NONE);                 // ∂φQ = ∂U Sᵀ
            k->gemm(f, dp, n, queries, 1, f, du, dp, ds, dp, has_gradient, HEED_TRIANGLE_NONE);           // ∂S += φQᵀ ∂U
            heed_linear_feature_gradient(k, shape, HEED_LINEAR_QUERIES, raw, queries, grad_queries, n, map_scratch, grad_query_features + row * w);
            has_gradient = 1;
        }
    }
    heed_linear_transpose(ds, f, dp, dp, dst);                                                  // ∂Sᵀ [Dv+1, F]
    for (int64_t start = 0; start < shape->key_length; start += c) {                            // (1)
        const int64_t n = min64(c, shape->key_length - start);
        const float *raw = key_features + start * w, *keys = heed_linear_features(k, shape, HEED_LINEAR_KEYS, raw, n, phi, map_scratch);
        float *grad_keys = heed_linear_feature_gradient_buffer(shape, grad_key_features + start * w, dphi);
        heed_linear_load_values(value, dv, start, n, vp);
        k->gemm(n, f, dp, vp, dp, 1, dst, f, grad_keys, f, 0, HEED_TRIANGLE_NONE);                     // ∂φK = V' ∂Sᵀ
        k->gemm(n, dp, f, keys, f, 1, ds, dp, du, dp, 0, HEED_TRIANGLE_NONE);                           // ∂V' = φK ∂S
        heed_linear_feature_gradient(k, shape, HEED_LINEAR_KEYS, raw, keys, grad_keys, n, map_scratch, grad_key_features + start * w);
        for (int64_t j = 0; j < n; j++) memcpy(grad_value + (start + j) * dv, du + j * dp, (size_t)dv * sizeof(float));
    }
    free(scratch);
    return 0;
}
