// The feature maps of the linear attentions (heed_linear.h), forward and
// backward, a block of rows at a time: the projection u = x̂ Wᵀ of a block
// ([64, m], 64 KiB for m = 256) lives in L2 and goes straight through the
// vector exp or sin/cos, so no [T, m] intermediate is ever written. The
// products and the vector maths come from the dispatched table
// (linear_avx2.c / linear_portable.c); the rest is plain C.
#include "linear_internal.h"
#include <math.h>
#include <stdint.h>
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

/// The features of one block of n rows: x̂ into `scaled` [n, D], u into `u`
/// [n, m], h into `half_norm`, the shifts into `shifts` [n] — shift[r], or
/// each row's maximum (then also written to row_max, max_index, max_count) —
/// and φ into `features` unless NULL.
static void performer_block(const heed_linear_table *k, const float *x, int64_t n, int64_t d, const float *w_transposed, int64_t m,
                            float input_scale, float epsilon, float feature_scale, const float *shift,
                            float *row_max, int64_t *max_index, int64_t *max_count,
                            float *scaled, float *u, float *half_norm, float *shifts, float *features) {
    for (int64_t r = 0; r < n; r++) {                                                  // x̂ and h
        float *row = scaled + r * d;
        for (int64_t j = 0; j < d; j++) row[j] = x[r * d + j] * input_scale;
        half_norm[r] = dot8(row, row, d) * 0.5f;
    }
    k->gemm(n, m, d, scaled, d, 1, w_transposed, m, u, m, 0, HEED_TRIANGLE_NONE);       // u = x̂ Wᵀ
    if (row_max) k->row_maxima(u, n, m, row_max, max_index, max_count);
    for (int64_t r = 0; r < n; r++) shifts[r] = shift ? shift[r] : row_max[r];
    if (features) k->performer_features(u, half_norm, shifts, n, m, epsilon, feature_scale, features);
}

/// The backward of one block of n rows, except what reaches the shifts:
/// ∂u = ∂φ ∘ (φ − ε·scale) into `du` [n, m], row_sum_r = Σ_i ∂u_ri,
/// ∂x = (∂u W − row_sum_r · x̂_r) · input_scale into grad_x [n, D].
static void performer_block_backward(const heed_linear_table *k, const float *x, const float *features, const float *grad,
                                     int64_t n, int64_t d, const float *w, int64_t m, float input_scale, float epsilon,
                                     float feature_scale, float *du, float *row_sum, float *grad_x) {
    const float offset = epsilon * feature_scale;
    for (int64_t r = 0; r < n; r++) {                                                  // ∂u = ∂φ ∘ e, e = φ − ε·scale
        const float *phi = features + r * m, *g = grad + r * m;
        float *row = du + r * m;
        for (int64_t i = 0; i < m; i++) row[i] = phi[i] - offset;
        row_sum[r] = dot8(g, row, m);
        for (int64_t i = 0; i < m; i++) row[i] *= g[i];
    }
    k->gemm(n, d, m, du, m, 1, w, d, grad_x, d, 0, HEED_TRIANGLE_NONE);                // ∂u W
    for (int64_t r = 0; r < n; r++) {                                                  // − row_sum · x̂, then · input_scale
        const float sum = row_sum[r];
        for (int64_t j = 0; j < d; j++) grad_x[r * d + j] = (grad_x[r * d + j] - sum * (x[r * d + j] * input_scale)) * input_scale;
    }
}

int heed_performer_features_f32(const float *x, int64_t rows, int64_t d, const float *w_transposed, int64_t m,
                                float input_scale, float epsilon, float feature_scale, const float *shift,
                                float *row_max, int64_t *max_index, int64_t *max_count, float *features) {
    const heed_linear_table *k = heed_linear_active();
    float *scratch = malloc((size_t)(FEATURE_BLOCK * (d + m + 2)) * sizeof(float));
    if (!scratch) return -1;
    float *scaled = scratch, *u = scaled + FEATURE_BLOCK * d, *half_norm = u + FEATURE_BLOCK * m, *shifts = half_norm + FEATURE_BLOCK;
    for (int64_t r0 = 0; r0 < rows; r0 += FEATURE_BLOCK)
        performer_block(k, x + r0 * d, min64(FEATURE_BLOCK, rows - r0), d, w_transposed, m, input_scale, epsilon, feature_scale,
                        shift ? shift + r0 : NULL, row_max + r0, max_index + r0, max_count + r0, scaled, u, half_norm, shifts,
                        features ? features + r0 * m : NULL);
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
    for (int64_t r0 = 0; r0 < rows; r0 += FEATURE_BLOCK)
        performer_block_backward(k, x + r0 * d, features + r0 * m, grad + r0 * m, min64(FEATURE_BLOCK, rows - r0), d, w, m,
                                 input_scale, epsilon, feature_scale, du, row_sum + r0, grad_x + r0 * d);
    free(du);
    return 0;
}

/// The regions of the in-kernel map's scratch for a block of n rows
/// (heed_linear_map_scratch: chunk · (D + 2m + 8) + 2 floats): what the
/// forward of a block leaves there (u, the row maxima, their first index and
/// count) is what the backward of the same query rows reads.
typedef struct performer_scratch {
    int64_t *max_index, *max_count;
    float *scaled, *u, *du, *half_norm, *shifts, *row_max, *row_sum;
} performer_scratch;

static performer_scratch performer_regions(float *scratch, int64_t n, int64_t d, int64_t m) {
    performer_scratch s;
    s.max_index = (int64_t *)(((uintptr_t)scratch + 7) & ~(uintptr_t)7);             // 8-byte aligned (2 floats of slack)
    s.max_count = s.max_index + n;
    s.scaled = (float *)(s.max_count + n);
    s.u = s.scaled + n * d;
    s.du = s.u + n * m;
    s.half_norm = s.du + n * m;
    s.shifts = s.half_norm + n;
    s.row_max = s.shifts + n;
    s.row_sum = s.row_max + n;
    return s;
}

void heed_linear_performer_block(const heed_linear_table *k, const heed_linear_performer *map, int64_t m, const float *x,
                                 int64_t n, int is_query, float *scratch, float *features) {
    const int64_t d = map->input_width;
    performer_scratch s = performer_regions(scratch, n, d, m);
    if (!is_query)
        for (int64_t r = 0; r < n; r++) s.shifts[r] = map->key_shift;
    performer_block(k, x, n, d, map->w_transposed, m, map->input_scale, map->epsilon, map->feature_scale,
                    is_query ? NULL : s.shifts, is_query ? s.row_max : NULL, s.max_index, s.max_count,
                    s.scaled, s.u, s.half_norm, s.shifts, features);
}

void heed_linear_performer_block_backward(const heed_linear_table *k, const heed_linear_performer *map, int64_t m,
                                          const float *x, const float *features, const float *grad, int64_t n, int is_query,
                                          float *scratch, float *grad_x) {
    const int64_t d = map->input_width;
    performer_scratch s = performer_regions(scratch, n, d, m);
    performer_block_backward(k, x, features, grad, n, d, map->w, m, map->input_scale, map->epsilon, map->feature_scale,
                             s.du, s.row_sum, grad_x);
    if (!is_query) {                                                                   // ∂c of the keys: the caller's
        double total = 0;
        for (int64_t r = 0; r < n; r++) total += s.row_sum[r];
        *map->key_row_sum += total;
        return;
    }
    // A query row's shift c_r = max_i u_ri: ∂c_r = −row_sum_r, shared by the
    // entries that equal it, ∂x_r += ∂c_r / count · W_i · input_scale.
    for (int64_t r = 0; r < n; r++) {
        const int64_t count = s.max_count[r];
        if (count == 0) continue;                                                      // a NaN row
        const float share = -s.row_sum[r] / (float)count * map->input_scale;
        const float *u = s.u + r * m;
        for (int64_t i = s.max_index[r], found = 0; found < count && i < m; i++) {
            if (u[i] != s.row_max[r]) continue;
            const float *w = map->w + i * d;
            for (int64_t j = 0; j < d; j++) grad_x[r * d + j] += share * w[j];
            found++;
        }
    }
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
