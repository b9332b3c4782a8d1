// Internal: the per-ISA primitives of the linear-attention kernels
// (linear_avx2.c, linear_portable.c); linear_scan.c and linear_features.c
// hold the logic and pick a table at run time.
#ifndef HEED_LINEAR_INTERNAL_H
#define HEED_LINEAR_INTERNAL_H

#include "heed_linear.h"

/// Which part of a small product is needed or nonzero.
typedef enum heed_triangle {
    HEED_TRIANGLE_NONE = 0,
    /// Only C[i, j] with j ≤ i is needed: tiles wholly above the diagonal are skipped (left unwritten).
    HEED_TRIANGLE_OUTPUT_LOWER = 1,
    /// A(i, k) = 0 for k > i: the sum over k stops at i.
    HEED_TRIANGLE_A_LOWER = 2,
    /// A(i, k) = 0 for k < i: the sum over k starts at i.
    HEED_TRIANGLE_A_UPPER = 3,
} heed_triangle;

/// The small products and vector maths of the scan and the feature maps.
typedef struct heed_linear_table {
    /// C[i, j] = (accumulate ? C[i, j] : 0) + Σ_k A(i, k) · B[k, j] for i < m, j < n, k < depth,
    /// with A(i, k) = a[i·a_row + k·a_column] (so Aᵀ is a stride swap) and B, C row-major
    /// with leading dimensions ldb, ldc.
    void (*gemm)(int64_t m, int64_t n, int64_t depth,
                 const float *a, int64_t a_row, int64_t a_column,
                 const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate, heed_triangle triangle);
    /// out[i] = e^{x[i] + shift}.
    void (*exp_shifted)(const float *x, float shift, float *out, int64_t n);
    void (*performer_features)(const float *u, const float *half_norm, const float *shift, int64_t rows, int64_t m,
                               float epsilon, float scale, float *out);
    void (*sincos_features)(const float *u, int64_t rows, int64_t m, float angle_scale, float scale, float *out);
    void (*elu_plus_one)(const float *x, float *out, int64_t n);
    /// Per row of u [rows, m]: the largest entry (NaN if the row holds one), its first
    /// index, and how many entries equal it (0 for a NaN row).
    void (*row_maxima)(const float *u, int64_t rows, int64_t m, float *maximum, int64_t *index, int64_t *count);
} heed_linear_table;

extern const heed_linear_table heed_linear_portable;
#if defined(__x86_64__) || defined(__i386__)
/// AVX2+FMA primitives; only used after the CPU check of dispatch.c.
extern const heed_linear_table heed_linear_avx2;
#endif

/// The table matching heed_kernels_isa() (so heed_kernels_force_portable applies here too).
const heed_linear_table *heed_linear_active(void);

// Small helpers of the causal and bidirectional kernels (plain C).

/// dst[c, r] = src[r, c] for a [rows, columns] source with leading dimension ld.
static inline void heed_linear_transpose(const float *src, int64_t rows, int64_t columns, int64_t ld, float *dst) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < columns; c++) dst[c * rows + r] = src[r * ld + c];
}

/// V' = [V[start ..< start + n] | 1]: [n, Dv+1].
static inline void heed_linear_load_values(const float *value, int64_t dv, int64_t start, int64_t n, float *vp) {
    for (int64_t j = 0; j < n; j++) {
        for (int64_t d = 0; d < dv; d++) vp[j * (dv + 1) + d] = value[(start + j) * dv + d];
        vp[j * (dv + 1) + dv] = 1;
    }
}

/// Floats of scratch the feature-map helpers below need (room for
/// heed_linear_random_fourier_block, heed_linear_performer_block and their backwards).
static inline int64_t heed_linear_map_scratch(const heed_linear_scan_shape *shape) {
    switch (shape->feature_map) {
    case HEED_LINEAR_FEATURES_RANDOM_FOURIER:
        return shape->chunk * (shape->random_fourier->input_width + shape->features) + shape->random_fourier->input_width;
    case HEED_LINEAR_FEATURES_PERFORMER:
        return shape->chunk * (shape->performer->input_width + 2 * shape->features + 8) + 2;
    default:
        return 0;
    }
}

/// The width of a row of query_features and key_features: F, or D for the maps with a projection.
static inline int64_t heed_linear_input_width(const heed_linear_scan_shape *shape) {
    switch (shape->feature_map) {
    case HEED_LINEAR_FEATURES_RANDOM_FOURIER: return shape->random_fourier->input_width;
    case HEED_LINEAR_FEATURES_PERFORMER: return shape->performer->input_width;
    default: return shape->features;
    }
}

/// Random Fourier features of n ≤ chunk rows (linear_features.c), with
/// `scratch` (heed_linear_map_scratch floats) instead of memory of its own.
void heed_linear_random_fourier_block(const heed_linear_table *k, const heed_linear_random_fourier *map, int64_t m,
                                      const float *x, int64_t n, float *scratch, float *features);
/// Its backward: ∂x [n, D] from x, φ and ∂φ [n, 2m].
void heed_linear_random_fourier_block_backward(const heed_linear_table *k, const heed_linear_random_fourier *map, int64_t m,
                                               const float *x, const float *features, const float *grad, int64_t n,
                                               float *scratch, float *grad_x);

/// Performer's features of n ≤ chunk rows (linear_features.c): queries
/// shifted by their rows' maxima, keys by map->key_shift.
void heed_linear_performer_block(const heed_linear_table *k, const heed_linear_performer *map, int64_t m, const float *x,
                                 int64_t n, int is_query, float *scratch, float *features);
/// Its backward: ∂x [n, D] from x, φ and ∂φ [n, m], with the query shifts'
/// gradient added at each row's maxima — which it finds in what the forward
/// of the same rows left in `scratch`, so no other block may be mapped in
/// between — or, for keys, Σ row_sum added to *map->key_row_sum.
void heed_linear_performer_block_backward(const heed_linear_table *k, const heed_linear_performer *map, int64_t m,
                                          const float *x, const float *features, const float *grad, int64_t n, int is_query,
                                          float *scratch, float *grad_x);

/// Which rows a feature map reads: Performer shifts queries and keys differently.
enum { HEED_LINEAR_KEYS = 0, HEED_LINEAR_QUERIES = 1 };

/// The features of `n` rows read from `rows` (row width heed_linear_input_width):
/// `rows` itself when the shape's feature map is HEED_LINEAR_FEATURES_GIVEN,
/// else φ(rows) written into `buffer` (room for n · F floats) and returned.
/// `role`: HEED_LINEAR_QUERIES or HEED_LINEAR_KEYS.
static inline const float *heed_linear_features(const heed_linear_table *k, const heed_linear_scan_shape *shape, int role,
                                                const float *rows, int64_t n, float *buffer, float *map_scratch) {
    switch (shape->feature_map) {
    case HEED_LINEAR_FEATURES_ELU_PLUS_ONE:
        k->elu_plus_one(rows, buffer, n * shape->features);
        return buffer;
    case HEED_LINEAR_FEATURES_RANDOM_FOURIER:
        heed_linear_random_fourier_block(k, shape->random_fourier, shape->features / 2, rows, n, map_scratch, buffer);
        return buffer;
    case HEED_LINEAR_FEATURES_PERFORMER:
        heed_linear_performer_block(k, shape->performer, shape->features, rows, n, role == HEED_LINEAR_QUERIES, map_scratch, buffer);
        return buffer;
    default:
        return rows;
    }
}

/// Where to write ∂φ of rows whose ∂x goes to `grad_rows`: there itself when
/// φ and x have the same width (given features, elu + 1), else `scratch`
/// ([n, F]: the maps with a projection); heed_linear_feature_gradient then turns it into ∂x.
static inline float *heed_linear_feature_gradient_buffer(const heed_linear_scan_shape *shape, float *grad_rows, float *scratch) {
    const int projected = shape->feature_map == HEED_LINEAR_FEATURES_RANDOM_FOURIER || shape->feature_map == HEED_LINEAR_FEATURES_PERFORMER;
    return projected ? scratch : grad_rows;
}

/// ∂x of `n` rows into `grad_rows` from ∂φ in `grad_features` (which may be
/// `grad_rows` itself, see heed_linear_feature_gradient_buffer), for features
/// that heed_linear_features computed from `rows` with the same role and
/// scratch, just before (`features` is what it returned).
static inline void heed_linear_feature_gradient(const heed_linear_table *k, const heed_linear_scan_shape *shape, int role,
                                                const float *rows, const float *features, const float *grad_features,
                                                int64_t n, float *map_scratch, float *grad_rows) {
    switch (shape->feature_map) {
    case HEED_LINEAR_FEATURES_ELU_PLUS_ONE:
        heed_elu_plus_one_backward_f32(rows, features, grad_features, grad_rows, n * shape->features);
        return;
    case HEED_LINEAR_FEATURES_RANDOM_FOURIER:
        heed_linear_random_fourier_block_backward(k, shape->random_fourier, shape->features / 2, rows, features, grad_features, n,
                                                  map_scratch, grad_rows);
        return;
    case HEED_LINEAR_FEATURES_PERFORMER:
        heed_linear_performer_block_backward(k, shape->performer, shape->features, rows, features, grad_features, n,
                                             role == HEED_LINEAR_QUERIES, map_scratch, grad_rows);
        return;
    default:
        if (grad_features != grad_rows)
            for (int64_t i = 0; i < n * shape->features; i++) grad_rows[i] = grad_features[i];
        return;
    }
}

/// Starts a backward: zeroes the outputs that the feature gradients add to
/// (Performer's key_row_sum).
static inline void heed_linear_feature_gradient_begin(const heed_linear_scan_shape *shape) {
    if (shape->feature_map == HEED_LINEAR_FEATURES_PERFORMER) *shape->performer->key_row_sum = 0;
}

/// x · y accumulated in double over four chains (bound by throughput, not
/// latency): these dots feed the decay's gradient, a difference of sums that
/// cancel (see linear_scan.c).
static inline float heed_linear_dot(const float *x, const float *y, int64_t n) {
    double sum[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) sum[l] += (double)x[i + l] * y[i + l];
    for (; i < n; i++) sum[0] += (double)x[i] * y[i];
    return (float)((sum[0] + sum[1]) + (sum[2] + sum[3]));
}

/// Stage (2) of both kernels, one query row: out = U[:Dv] / (U[Dv] + ε); returns the denominator.
static inline float heed_linear_normalize_row(const float *u, int64_t dv, float epsilon, float *out) {
    const float den = u[dv] + epsilon;
    for (int64_t d = 0; d < dv; d++) out[d] = u[d] / den;
    return den;
}

/// ∂U of one query row from ∂out: ∂U[:Dv] = ∂out / den, ∂U[Dv] = −(∂out · out) / den.
static inline void heed_linear_row_gradient(const float *grad_out, const float *out, float den, int64_t dv, float *du) {
    for (int64_t d = 0; d < dv; d++) du[d] = grad_out[d] / den;
    du[dv] = -heed_linear_dot(grad_out, out, dv) / den;
}

#endif
