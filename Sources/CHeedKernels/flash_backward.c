// Flash attention backward: one (query tile, key tile) step — FlashAttention-2
// Algorithm 2 (Dao, 2023, arXiv:2307.08691), lines 11–20 — recomputing the
// tile's probabilities from the forward's log-sum-exp instead of storing them.
//
// Each numbered stage below differentiates the forward line it quotes
// (flash_forward.c), in reverse order. Written once against the kernel table
// of flash_internal.h (AVX2+FMA or portable).
#include "flash_internal.h"
#include <math.h>

/// The full-tile backward (no mask): five tile GEMMs and two row passes.
static void backward_full(const flash_kernel_table *kernels, const heed_flash_backward_args *args) {
    const int64_t rows = args->rows, keys = args->keys, stride = args->tile_stride;

    // 1. Recompute S = Q Kᵀ.                                                  [rows, keys]
    kernels->gemm(rows, keys, args->depth, args->query, args->query_stride, 1, args->key_panels, HEED_FLASH_PANEL,
                  args->depth * HEED_FLASH_PANEL, args->scores, stride, FLASH_STORE, 0);

    // 2. P = exp(S̃ − LSE), S̃ the transformed scores of the forward
    //    (forward: "P = exp(S̃ − m′)", normalised by ℓ at the end: exp(S̃ − m − log ℓ)).
    //    A row with nothing allowed (LSE = −inf) gets P = 0, hence no gradient.
    kernels->backward_probabilities(args);

    // 3. forward "O += (P ∘ keep) V":  dV += (P ∘ keep)ᵀ dO                   [keys, Dv]
    //    (P ∘ keep waits in d_scores when there is dropout) …
    kernels->gemm(keys, args->value_depth, rows, args->keep ? args->d_scores : args->scores, 1, stride,
                  args->d_output, args->d_output_stride, HEED_FLASH_PANEL, args->d_value, args->d_value_stride,
                  FLASH_ACCUMULATE, 0);
    //    … and dP = (dO Vᵀ) ∘ keep (the keep factor is applied in stage 4).   [rows, keys]
    kernels->gemm(rows, keys, args->value_depth, args->d_output, args->d_output_stride, 1, args->value_panels,
                  HEED_FLASH_PANEL, args->value_depth * HEED_FLASH_PANEL, args->d_scores, stride, FLASH_STORE, 0);

    // 4. softmax: dS = P ∘ (dP − Δ), Δ = rowsum(dO ∘ O) = rowsum(P ∘ dP);
    //    ∂L/∂bias = dS; through the softcap and the scale: dS ∘ scale(1 − t²).
    kernels->backward_d_scores(args);

    // 5. forward "S = Q Kᵀ":  dK += dSᵀ Q  and  dQ += dS K.
    kernels->gemm(keys, args->depth, rows, args->d_scores, 1, stride, args->query, args->query_stride,
                  HEED_FLASH_PANEL, args->d_key, args->d_key_stride, FLASH_ACCUMULATE, 0);        // [keys, D]
    kernels->gemm(rows, args->depth, keys, args->d_scores, stride, 1, args->key, args->key_stride, HEED_FLASH_PANEL,
                  args->d_query, args->d_query_stride, FLASH_ACCUMULATE, 0);                     // [rows, D]
}

/// Zeros row r's columns outside [first, end) of a [rows, stride] tile.
static void zero_outside(float *tile, int64_t stride, int64_t r, int64_t height, int64_t first, int64_t end,
                         int64_t keys) {
    for (int64_t i = r; i < r + height; i++) {
        for (int64_t c = 0; c < first; c++) tile[i * stride + c] = 0.0f;
        for (int64_t c = end; c < keys; c++) tile[i * stride + c] = 0.0f;
    }
}

/// The same stages for a partially masked tile, each GEMM limited block by
/// block to the tile's allowed region (flash_extents): blocks of 6 rows to
/// the key columns their rows may see, blocks of 6 keys to the rows that may
/// see them. P and dS vanish outside that region, so the skipped products are
/// exactly zero; S and dP start at zero there so the row passes see finite
/// values (0 · finite = 0 in dS = P ∘ (dP − Δ), never 0 · NaN).
static void backward_masked(const flash_kernel_table *kernels, const heed_flash_backward_args *args) {
    const int64_t rows = args->rows, keys = args->keys, stride = args->tile_stride;
    flash_extents e;
    flash_tile_extents(args->mask, rows, keys, stride, &e);
    // Stage 1 and, below, dP: row blocks × the 16-key panels holding their columns.
    for (int64_t r = 0; r < rows; r += 6) {
        const int64_t height = rows - r < 6 ? rows - r : 6;
        int64_t first = e.row_first[r / 6] / HEED_FLASH_PANEL * HEED_FLASH_PANEL;
        int64_t end = (e.row_end[r / 6] + HEED_FLASH_PANEL - 1) / HEED_FLASH_PANEL * HEED_FLASH_PANEL;
        if (end > keys) end = keys;
        if (end <= first) first = end = 0;
        zero_outside(args->scores, stride, r, height, first, end, keys);
        zero_outside(args->d_scores, stride, r, height, first, end, keys);
        if (end <= first) continue;
        kernels->gemm(height, end - first, args->depth, args->query + r * args->query_stride, args->query_stride, 1,
                      args->key_panels + first * args->depth, HEED_FLASH_PANEL, args->depth * HEED_FLASH_PANEL,
                      args->scores + r * stride + first, stride, FLASH_STORE, 0);
    }
    kernels->backward_probabilities(args);
    const float *dropped = args->keep ? args->d_scores : args->scores;
    for (int64_t k = 0; k < keys; k += 6) {                                         // dV, key blocks
        const int64_t width = keys - k < 6 ? keys - k : 6, first = e.key_first[k / 6], end = e.key_end[k / 6];
        if (end <= first) continue;
        kernels->gemm(width, args->value_depth, end - first, dropped + first * stride + k, 1, stride,
                      args->d_output + first * args->d_output_stride, args->d_output_stride, HEED_FLASH_PANEL,
                      args->d_value + k * args->d_value_stride, args->d_value_stride, FLASH_ACCUMULATE, 0);
    }
    for (int64_t r = 0; r < rows; r += 6) {                                         // dP, row blocks
        const int64_t height = rows - r < 6 ? rows - r : 6;
        int64_t first = e.row_first[r / 6] / HEED_FLASH_PANEL * HEED_FLASH_PANEL;
        int64_t end = (e.row_end[r / 6] + HEED_FLASH_PANEL - 1) / HEED_FLASH_PANEL * HEED_FLASH_PANEL;
        if (end > keys) end = keys;
        if (end <= first) continue;
        kernels->gemm(height, end - first, args->value_depth, args->d_output + r * args->d_output_stride,
                      args->d_output_stride, 1, args->value_panels + first * args->value_depth, HEED_FLASH_PANEL,
                      args->value_depth * HEED_FLASH_PANEL, args->d_scores + r * stride + first, stride, FLASH_STORE,
                      0);
    }
    kernels->backward_d_scores(args);
    for (int64_t k = 0; k < keys; k += 6) {                                         // dK, key blocks
        const int64_t width = keys - k < 6 ? keys - k : 6, first = e.key_first[k / 6], end = e.key_end[k / 6];
        if (end <= first) continue;
        kernels->gemm(width, args->depth, end - first, args->d_scores + first * stride + k, 1, stride,
                      args->query + first * args->query_stride, args->query_stride, HEED_FLASH_PANEL,
                      args->d_key + k * args->d_key_stride, args->d_key_stride, FLASH_ACCUMULATE, 0);
    }
    for (int64_t r = 0; r < rows; r += 6) {                                         // dQ, row blocks
        const int64_t height = rows - r < 6 ? rows - r : 6, first = e.row_first[r / 6], end = e.row_end[r / 6];
        if (end <= first) continue;
        kernels->gemm(height, args->depth, end - first, args->d_scores + r * stride + first, stride, 1,
                      args->key + first * args->key_stride, args->key_stride, HEED_FLASH_PANEL,
                      args->d_query + r * args->d_query_stride, args->d_query_stride, FLASH_ACCUMULATE, 0);
    }
}

void heed_flash_backward_step(const heed_flash_backward_args *args) {
    const flash_kernel_table *kernels = flash_kernels();
    if (args->mask) backward_masked(kernels, args);
    else backward_full(kernels, args);
}

void heed_flash_row_dot(const float *d_output, const float *output, int64_t rows, int64_t value_depth, float *delta) {
    for (int64_t r = 0; r < rows; r++) {
        const float *g = d_output + r * value_depth, *o = output + r * value_depth;
        float sum = 0.0f;
        for (int64_t c = 0; c < value_depth; c++) sum += g[c] * o[c];
        delta[r] = sum;
    }
}
