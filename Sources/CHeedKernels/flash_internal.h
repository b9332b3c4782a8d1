// Internal: the building blocks of the flash attention steps, one table per
// ISA (flash_kernels.c). flash_forward.c and flash_backward.c write each step
// once, against this table; flash_kernels() picks the table per call.
#ifndef HEED_FLASH_INTERNAL_H
#define HEED_FLASH_INTERNAL_H

#include "heed_flash.h"
#include <stdint.h>

/// How a tile GEMM combines with its output C.
enum flash_gemm_mode {
    FLASH_STORE = 0,          ///< C = AB
    FLASH_ACCUMULATE = 1,     ///< C += AB
    FLASH_RESCALE = 2,        ///< C = row_scale ∘ C + AB  (row i of C scaled by row_scale[i] first)
};

typedef struct flash_kernel_table {
    /// C[m, n] (mode) Σ_{k < kc} A(i, k)·B(k, j) with A(i, k) = a[i·ars + k·aks]
    /// and B(k, j) = b[(j/16)·panel_stride + k·ldb + j mod 16]: a row-major B
    /// (panel_stride 16, ldb its stride) or heed_flash_pack_panels output
    /// (panel_stride kc·16, ldb 16). Nothing past column n is read or written.
    void (*gemm)(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                 int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale);
    /// max of s[0 ..< n] (−inf for n = 0).
    float (*row_max)(const float *s, int64_t n);
    /// In place: s = scale·s; t = tanh(s/c) (stored in tanh_out when non-NULL),
    /// s = c·t if softcap c > 0; s += bias; s = −inf where mask = 0. Returns max s.
    float (*row_transform)(float *s, int64_t n, float scale, float softcap, const float *bias, const float *mask,
                           float *tanh_out);
    /// In place: p = exp(scale·s − shift); returns Σ p; then p ∘= keep when keep is non-NULL.
    /// Arguments ≤ −87 may give ≈ 1e−38 instead of 0 unless `flush` is set
    /// (needed where masked scores are −inf) or keep is non-NULL.
    float (*row_exp)(float *s, int64_t n, float scale, float shift, const float *keep, int flush);
    /// out = p ∘ (dp ∘ keep − delta) (the bias gradient, stored in bias_out when
    /// non-NULL), then out ∘= scale·(1 − t²) (t = tanh, when non-NULL) or scale.
    void (*row_d_scores)(const float *p, const float *dp, const float *keep, float delta, int64_t n, float scale,
                         const float *tanh_values, float *bias_out, float *out);
    /// out = a ∘ b.
    void (*row_multiply)(const float *a, const float *b, float *out, int64_t n);
} flash_kernel_table;

extern const flash_kernel_table flash_portable_kernels;
#if defined(__x86_64__) || defined(__i386__)
extern const flash_kernel_table flash_avx2_kernels;
#endif

/// The table for this CPU (honours heed_kernels_force_portable).
const flash_kernel_table *flash_kernels(void);

#endif
