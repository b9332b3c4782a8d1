// Flash attention backward: one (query tile, key tile) step — FlashAttention-2
// Algorithm 2 (Dao, 2023, arXiv:2307.08691), lines 11–20 — recomputing the
// tile's probabilities from the forward's log-sum-exp instead of storing them.
//
// Each numbered stage below differentiates the forward line it quotes
// (flash_forward.c), in reverse order. Written once against the kernel table
// of flash_internal.h (AVX2+FMA or portable).
#include "flash_internal.h"
#include <math.h>

void heed_flash_backward_step(const heed_flash_backward_args *args) {
    const flash_kernel_table *kernels = flash_kernels();
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

void heed_flash_row_dot(const float *d_output, const float *output, int64_t rows, int64_t value_depth, float *delta) {
    for (int64_t r = 0; r < rows; r++) {
        const float *g = d_output + r * value_depth, *o = output + r * value_depth;
        float sum = 0.0f;
        for (int64_t c = 0; c < value_depth; c++) sum += g[c] * o[c];
        delta[r] = sum;
    }
}
