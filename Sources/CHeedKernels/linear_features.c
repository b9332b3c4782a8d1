// The feature maps of the linear attentions (heed_linear.h), forward and
// backward, a block of rows at a time: the projection u = x̂ Wᵀ of a block
// ([64, m], 64 KiB for m = 256) lives in L2 and goes straight through the
// vector exp or sin/cos, so no [T, m] intermediate is ever written. The
// products and the vector maths come from the dispatched table
// (linear_avx2.c / linear_portable.c); the rest is plain C.
#include "linear_internal.h"
#include <math.h>
#include <stdlib.h>

/// Rows per block.
#define FEATURE_BLOCK 64

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/// Σ x_i y_i with eight float accumulators (independent chains the compiler can vectorise).
static float dot8(const float *x, const float *y, int64_t n) {
    float sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) sum[l] += x[i + l] * y[i + l];
    for (; i < n; i++) sum[0] += x[i] * y[i];
    return ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
}

// MARK: Performer

int heed_performer_features_f32(const float *x, int64_t rows, int64_t d, const float *w_transposed, int64_t m,
                                float input_scale, float epsilon, float feature_scale, const float *shift,
                                float *row_max, int64_t *max_index, int64_t *max_count, float *features) {
    const heed_linear_table *k = heed_linear_active();
    float *scratch = malloc((size_t)(FEATURE_BLOCK * (d + m + 2)) * sizeof(float));
    if (!scratch) return -1;
    float *scaled = scratch, *u = scaled + FEATURE_BLOCK * d, *half_norm = u + FEATURE_BLOCK * m, *shifts = half_norm + FEATURE_BLOCK;
    for (int64_t r0 = 0; r0 < rows; r0 += FEATURE_BLOCK) {
        const int64_t n = min64(FEATURE_BLOCK, rows - r0);
        for (int64_t r = 0; r < n; r++) {                                              // x̂ and h
            float *row = scaled + r * d;
            for (int64_t j = 0; j < d; j++) row[j] = x[(r0 + r) * d + j] * input_scale;
            half_norm[r] = dot8(row, row, d) * 0.5f;
        }
        k->gemm(n, m, d, scaled, d, 1, w_transposed, m, u, m, 0, HEED_TRIANGLE_NONE);   // u = x̂ Wᵀ
        k->row_maxima(u, n, m, row_max + r0, max_index + r0, max_count + r0);
        for (int64_t r = 0; r < n; r++) shifts[r] = shift ? shift[r0 + r] : row_max[r0 + r];
        if (features) k->performer_features(u, half_norm, shifts, n, m, epsilon, feature_scale, features + r0 * m);
    }
    free(scratch);
    return 0;
}

int64_t heed_performer_maxima_f32(const float *x, int64_t d, const float *w_transposed, int64_t m, float input_scale,
                                  float value, int64_t *positions, int64_t capacity) {
    const heed_linear_table *k = heed_linear_active();
    float *scratch = malloc((size_t)(d + m) * sizeof(float));
    if (!scratch) return -1;
    float *scaled = scratch, *u = scratch + d;
    for (int64_t j = 0; j < d; j++) scaled[j] = x[j] * input_scale;
    k->gemm(1, m, d, scaled, d, 1, w_transposed, m, u, m, 0, HEED_TRIANGLE_NONE);    // the same per-element sums as above
    int64_t count = 0;
    for (int64_t i = 0; i < m; i++) {
        if (u[i] != value) continue;
        if (count < capacity) positions[count] = i;
        count++;
    }
    free(scratch);
    return count;
}

int heed_performer_features_backward_f32(const float *x, const float *features, const float *grad, int64_t rows, int64_t d,
                                         const float *w, int64_t m, float input_scale, float epsilon, float feature_scale,
                                         float *row_sum, float *grad_x) {
    const heed_linear_table *k = heed_linear_active();
    float *du = malloc((size_t)(FEATURE_BLOCK * m) * sizeof(float));
    if (!du) return -1;
    const float offset = epsilon * feature_scale;
    for (int64_t r0 = 0; r0 < rows; r0 += FEATURE_BLOCK) {
        const int64_t n = min64(FEATURE_BLOCK, rows - r0);
        for (int64_t r = 0; r < n; r++) {                                              // ∂u = ∂φ ∘ e, e = φ − ε·scale
            const float *phi = features + (r0 + r) * m, *g = grad + (r0 + r) * m;
            float *row = du + r * m;
            for (int64_t i = 0; i < m; i++) row[i] = phi[i] - offset;
            row_sum[r0 + r] = dot8(g, row, m);
            for (int64_t i = 0; i < m; i++) row[i] *= g[i];
        }
        float *gx = grad_x + r0 * d;
        k->gemm(n, d, m, du, m, 1, w, d, gx, d, 0, HEED_TRIANGLE_NONE);                // ∂u W
        for (int64_t r = 0; r < n; r++) {                                              // − row_sum · x̂, then · input_scale
            const float sum = row_sum[r0 + r];
            for (int64_t j = 0; j < d; j++)
                gx[r * d + j] = (gx[r * d + j] - sum * (x[(r0 + r) * d + j] * input_scale)) * input_scale;
        }
    }
    free(du);
    return 0;
}

// MARK: Random feature attention

/// The norm ‖x_r‖ and x̂_r = x_r / max(‖x_r‖, 10⁻¹²) (or x_r itself without normalize).
static float unit_row(const float *x, int64_t d, int normalize, float *unit) {
    if (!normalize) {
        for (int64_t j = 0; j < d; j++) unit[j] = x[j];
        return 1;
    }
    const float norm = sqrtf(dot8(x, x, d)), divisor = norm > 1e-12f ? norm : 1e-12f;
    for (int64_t j = 0; j < d; j++) unit[j] = x[j] / divisor;
    return norm;
}

void heed_linear_random_fourier_block(const heed_linear_table *k, const heed_linear_random_fourier *map, int64_t m,
                                      const float *x, int64_t n, float *scratch, float *features) {
    const int64_t d = map->input_width;
    float *unit = scratch, *u = scratch + n * d;
    for (int64_t r = 0; r < n; r++) unit_row(x + r * d, d, map->normalize, unit + r * d);
    k->gemm(n, m, d, unit, d, 1, map->w_transposed, m, u, m, 0, HEED_TRIANGLE_NONE);          // x̂ Wᵀ
    k->sincos_features(u, n, m, map->angle_scale, map->scale, features);
}

void heed_linear_random_fourier_block_backward(const heed_linear_table *k, const heed_linear_random_fourier *map, int64_t m,
                                               const float *x, const float *features, const float *grad, int64_t n,
                                               float *scratch, float *grad_x) {
    const int64_t d = map->input_width;
    float *du = scratch, *unit = scratch + n * m;
    for (int64_t r = 0; r < n; r++) {                                                          // ∂a = φ_cos ∘ ∂φ_sin − φ_sin ∘ ∂φ_cos
        const float *sine = features + r * 2 * m, *cosine = sine + m;
        const float *grad_sine = grad + r * 2 * m, *grad_cosine = grad_sine + m;
        for (int64_t i = 0; i < m; i++) du[r * m + i] = cosine[i] * grad_sine[i] - sine[i] * grad_cosine[i];
    }
    k->gemm(n, d, m, du, m, 1, map->w, d, grad_x, d, 0, HEED_TRIANGLE_NONE);                  // ∂a W
    for (int64_t r = 0; r < n; r++) {
        float *row = grad_x + r * d;
        for (int64_t j = 0; j < d; j++) row[j] *= map->angle_scale;                            // ∂x̂
        if (!map->normalize) continue;
        const float norm = unit_row(x + r * d, d, 1, unit);
        if (norm > 1e-12f) {
            const float along = dot8(unit, row, d);
            for (int64_t j = 0; j < d; j++) row[j] = (row[j] - unit[j] * along) / norm;
        } else {
            for (int64_t j = 0; j < d; j++) row[j] /= 1e-12f;
        }
    }
}

int heed_random_fourier_features_f32(const float *x, int64_t rows, int64_t d, const float *w_transposed, int64_t m,
                                     int32_t normalize, float angle_scale, float scale, float *features) {
    const heed_linear_table *k = heed_linear_active();
    const heed_linear_random_fourier map = {w_transposed, NULL, d, normalize, angle_scale, scale};
    float *scratch = malloc((size_t)(FEATURE_BLOCK * (d + m)) * sizeof(float));
    if (!scratch) return -1;
    for (int64_t r0 = 0; r0 < rows; r0 += FEATURE_BLOCK)
        heed_linear_random_fourier_block(k, &map, m, x + r0 * d, min64(FEATURE_BLOCK, rows - r0), scratch, features + r0 * 2 * m);
    free(scratch);
    return 0;
}

int heed_random_fourier_features_backward_f32(const float *x, const float *features, const float *grad, int64_t rows,
                                              int64_t d, const float *w, int64_t m, int32_t normalize, float angle_scale,
                                              float *grad_x) {
    const heed_linear_table *k = heed_linear_active();
    const heed_linear_random_fourier map = {NULL, w, d, normalize, angle_scale, 0};
    float *scratch = malloc((size_t)(FEATURE_BLOCK * m + d) * sizeof(float));
    if (!scratch) return -1;
    for (int64_t r0 = 0; r0 < rows; r0 += FEATURE_BLOCK)
        heed_linear_random_fourier_block_backward(k, &map, m, x + r0 * d, features + r0 * 2 * m, grad + r0 * 2 * m,
                                                  min64(FEATURE_BLOCK, rows - r0), scratch, grad_x + r0 * d);
    free(scratch);
    return 0;
}

// MARK: elu + 1

void heed_elu_plus_one_f32(const float *x, float *out, int64_t n) { heed_linear_active()->elu_plus_one(x, out, n); }

void heed_elu_plus_one_backward_f32(const float *x, const float *features, const float *grad, float *grad_x, int64_t n) {
    for (int64_t i = 0; i < n; i++) grad_x[i] = grad[i] * (x[i] > 0 ? 1.0f : features[i]);
}
