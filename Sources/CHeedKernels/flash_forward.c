// Flash attention forward: one (query tile, key tile) step of the online
// softmax — FlashAttention-2 Algorithm 1 (Dao, 2023, arXiv:2307.08691),
// lines 8–10 — plus Kᵀ panel packing and the end-of-tile normalisation
// (lines 12–13).
//
// The step is written once against the kernel table of flash_internal.h
// (AVX2+FMA or portable, chosen per call).
#include "flash_internal.h"
#include <math.h>

// MARK: Packing

int64_t heed_flash_panels_count(int64_t rows, int64_t columns) {
    return (rows + HEED_FLASH_PANEL - 1) / HEED_FLASH_PANEL * HEED_FLASH_PANEL * columns;
}

void heed_flash_pack_panels(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels) {
    for (int64_t p = 0; p * HEED_FLASH_PANEL < rows; p++) {
        float *panel = panels + p * HEED_FLASH_PANEL * columns;
        const int64_t first = p * HEED_FLASH_PANEL;
        const int64_t width = rows - first < HEED_FLASH_PANEL ? rows - first : HEED_FLASH_PANEL;
        for (int64_t c = 0; c < columns; c++) {
            float *line = panel + c * HEED_FLASH_PANEL;
            for (int64_t r = 0; r < width; r++) line[r] = source[(first + r) * stride + c];
            for (int64_t r = width; r < HEED_FLASH_PANEL; r++) line[r] = 0.0f;
        }
    }
}

// MARK: One step

void heed_flash_forward_step(const heed_flash_forward_args *args) {
    const flash_kernel_table *kernels = flash_kernels();
    const int64_t rows = args->rows, keys = args->keys, stride = args->tile_stride;

    // S = Q Kᵀ (the scale is applied in the row pass).                       [rows, keys]
    kernels->gemm(rows, keys, args->depth, args->query, args->query_stride, 1, args->key_panels, HEED_FLASH_PANEL,
                  args->depth * HEED_FLASH_PANEL, args->scores, stride, FLASH_STORE, 0);

    // m′ = max(m, rowmax S̃);  P = exp(S̃ − m′);  ℓ = e^(m − m′)ℓ + rowsum P.
    // Plain scaled scores (no softcap, bias or mask) fold the scale into the
    // exponent's FMA: max(scale·s) = scale·max(s) for scale > 0.
    const int plain = args->softcap == 0.0f && !args->bias && !args->mask && args->scale > 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        float *s = args->scores + r * stride;
        const int64_t offset = r * stride;
        const float tile_max = plain
            ? args->scale * kernels->row_max(s, keys)
            : kernels->row_transform(s, keys, args->scale, args->softcap, args->bias ? args->bias + offset : 0,
                                     args->mask ? args->mask + offset : 0, 0);
        const float old = args->row_max[r];
        const float m = old > tile_max ? old : tile_max;
        if (m == -INFINITY) {                            // nothing allowed yet: P = 0, O stays 0
            for (int64_t c = 0; c < keys; c++) s[c] = 0.0f;
            args->row_scale[r] = 1.0f;
            continue;
        }
        const float alpha = expf(old - m);               // 0 when old = −inf
        const float sum = kernels->row_exp(s, keys, plain ? args->scale : 1.0f, m,
                                           args->keep ? args->keep + offset : 0, !plain);
        args->row_sum[r] = args->row_sum[r] * alpha + sum;
        args->row_max[r] = m;
        args->row_scale[r] = alpha;
    }

    // O = diag(e^(m − m′)) O + (P ∘ keep) V.                                   [rows, Dv]
    kernels->gemm(rows, args->value_depth, keys, args->scores, stride, 1, args->value, args->value_stride,
                  HEED_FLASH_PANEL, args->output, args->output_stride, FLASH_RESCALE, args->row_scale);
}

// MARK: Exact weights of a tile

void heed_flash_weights_step(const heed_flash_forward_args *args, const float *log_sum_exp, float *out,
                             int64_t out_stride) {
    const flash_kernel_table *kernels = flash_kernels();
    const int64_t rows = args->rows, keys = args->keys, stride = args->tile_stride;
    kernels->gemm(rows, keys, args->depth, args->query, args->query_stride, 1, args->key_panels, HEED_FLASH_PANEL,
                  args->depth * HEED_FLASH_PANEL, args->scores, stride, FLASH_STORE, 0);
    const int plain = args->softcap == 0.0f && !args->bias && !args->mask;
    for (int64_t r = 0; r < rows; r++) {
        float *s = args->scores + r * stride, *o = out + r * out_stride;
        const int64_t offset = r * stride;
        if (log_sum_exp[r] == -INFINITY) {               // nothing allowed in this row
            for (int64_t c = 0; c < keys; c++) o[c] = 0.0f;
            continue;
        }
        if (!plain) {
            kernels->row_transform(s, keys, args->scale, args->softcap, args->bias ? args->bias + offset : 0,
                                   args->mask ? args->mask + offset : 0, 0);
        }
        kernels->row_exp(s, keys, plain ? args->scale : 1.0f, log_sum_exp[r], 0, !plain);
        for (int64_t c = 0; c < keys; c++) o[c] = s[c];
    }
}

// MARK: End of a query tile

void heed_flash_forward_finish(int64_t rows, int64_t value_depth, const float *row_max, const float *row_sum,
                               float *output, int64_t output_stride, float *log_sum_exp) {
    for (int64_t r = 0; r < rows; r++) {
        float *o = output + r * output_stride;
        if (row_sum[r] == 0.0f) {                        // nothing allowed: zeros, never 0/0
            for (int64_t c = 0; c < value_depth; c++) o[c] = 0.0f;
            log_sum_exp[r] = -INFINITY;
            continue;
        }
        const float inverse = 1.0f / row_sum[r];
        for (int64_t c = 0; c < value_depth; c++) o[c] *= inverse;
        log_sum_exp[r] = row_max[r] + logf(row_sum[r]);
    }
}
