// Internal: the building blocks of the flash attention steps, one table per
// ISA (flash_gemm.c, flash_kernels.c). flash_forward.c and flash_backward.c
// write each step once, against this table; flash_kernels() picks the table
// per call.
#ifndef HEED_FLASH_INTERNAL_H
#define HEED_FLASH_INTERNAL_H

#include "heed_flash.h"
#include <math.h>
#include <stdint.h>

/// How a tile GEMM combines with its output C.
enum flash_gemm_mode {
    FLASH_STORE = 0,          ///< C = AB
    FLASH_ACCUMULATE = 1,     ///< C += AB
    FLASH_RESCALE = 2,        ///< C = row_scale ∘ C + AB  (row i of C scaled by row_scale[i] first)
    FLASH_EXPONENT = 3,       ///< C = max(−126, min(AB − row_scale[i], 64)), the AVX2 kernel only (its scores_exp)
};

typedef struct flash_kernel_table {
    /// C[m, n] (mode) Σ_{k < kc} A(i, k)·B(k, j) with A(i, k) = a[i·ars + k·aks]
    /// (aks = 1 or ars = 1) and B(k, j) = b[(j/16)·panel_stride + k·ldb + j mod 16]:
    /// a row-major B (panel_stride 16, ldb its stride) or heed_flash_pack_panels
    /// output (panel_stride kc·16, ldb 16). Nothing past column n is read or written.
    void (*gemm)(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                 int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale);
    /// Forward, Algorithm 1 lines 8–9 for every row of the tile, given the raw
    /// products Q Kᵀ in `scores`: S̃ = transform(scale·S); m′ = max(m, rowmax S̃);
    /// P = exp(S̃ − m′) ∘ keep into `scores`; ℓ = e^(m − m′)ℓ + rowsum exp(S̃ − m′);
    /// e^(m − m′) into row_scale (1 while m′ = −inf); m = m′.
    void (*online_softmax)(const heed_flash_forward_args *args);
    /// Backward: P = exp(S̃ − LSE) into `scores` (0 where LSE = −inf), the
    /// softcap's tanh into softcap_scratch, and P ∘ keep into d_scores when keep.
    void (*backward_probabilities)(const heed_flash_backward_args *args);
    /// Backward: with dO Vᵀ in d_scores: dS = P ∘ (dP ∘ keep − Δ) into
    /// bias_gradient (when non-NULL), then d_scores = scale·(1 − t²)·dS.
    void (*backward_d_scores)(const heed_flash_backward_args *args);
    /// heed_flash_weights_step's row pass: exp(S̃ − LSE) from the raw products in `scores` into out.
    void (*weights)(const heed_flash_forward_args *args, const float *log_sum_exp, float *out, int64_t out_stride);
    /// out = e^x for x ≤ 0 through the row exponential (heed_flash_exp_f32).
    void (*exp)(const float *x, float *out, int64_t n);
    /// The forward's one-pass path, or NULL: P = 2^t with t = S − shift2[r] and
    /// S = Σ_k Q(r, k)·K(c, k) added in k order by FMAs from 0 (Q is the query
    /// already multiplied by scale·log₂e; shift2[r] = flash_shift2(m_r)) — S for
    /// the whole tile first, then one sweep for the exponential; sums[r] =
    /// Σ_c P(r, c). No check of t: the caller inspects the row sums (a t too
    /// large, ±inf or NaN shows there as a large or NaN sum).
    void (*scores_exp)(int64_t rows, int64_t keys, int64_t depth, const float *query, int64_t query_stride,
                       const float *key_panels, float *p, int64_t stride, const float *shift2, float *sums);
} flash_kernel_table;

/// log₂e: the flash kernels take exponentials in base 2.
#define FLASH_LOG2E 0x1.715476p+0f

/// A row's shift in base 2 for a running maximum or log-sum-exp m (finite or
/// −inf): m·log₂e, or 0 for −inf.
static inline float flash_shift2(float m) { return m > -INFINITY ? m * FLASH_LOG2E : 0.0f; }

/// Whether flash_gemm_avx512 runs an output `n` columns wide on its 6 × 64
/// blocks (otherwise it hands the product to the AVX2 kernel).
static inline int flash_gemm_avx512_wide(int64_t n) { return n % 64 == 0; }

/// Blocks of the micro-kernel's height (6) in a tile.
#define FLASH_ROW_BLOCKS ((HEED_FLASH_QUERY_TILE + 5) / 6)
#define FLASH_KEY_BLOCKS ((HEED_FLASH_KEY_TILE + 5) / 6)

/// The hull of a masked tile's allowed pairs: for each block of 6 rows, the
/// key columns [row_first, row_end) that hold every allowed pair of its rows;
/// for each block of 6 keys, the rows [key_first, key_end) likewise. An
/// entirely masked block gets an empty range.
typedef struct flash_extents {
    int64_t row_first[FLASH_ROW_BLOCKS], row_end[FLASH_ROW_BLOCKS];
    int64_t key_first[FLASH_KEY_BLOCKS], key_end[FLASH_KEY_BLOCKS];
} flash_extents;

/// Fills `out` from a [rows, keys] 0/1 mask with row stride `stride` (flash_extents.c).
void flash_tile_extents(const float *mask, int64_t rows, int64_t keys, int64_t stride, flash_extents *out);

/// heed_flash_pack_panels, portable (flash_forward.c) and AVX2 (flash_gemm.c):
/// the same floats in the same places.
void flash_pack_panels_portable(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels);
#if defined(__x86_64__) || defined(__i386__)
void flash_pack_panels_avx2(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels);
#endif

/// The tile GEMMs (flash_gemm.c).
void flash_gemm_portable(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                         int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale);
#if defined(__x86_64__) || defined(__i386__)
void flash_gemm_avx2(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                     int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale);
void flash_scores_exp_avx2(int64_t rows, int64_t keys, int64_t depth, const float *query, int64_t query_stride,
                           const float *key_panels, float *p, int64_t stride, const float *shift2, float *sums);
/// The same on AVX-512 (flash_avx512.c), and the backward's row passes there.
void flash_backward_probabilities_avx512(const heed_flash_backward_args *args);
void flash_backward_d_scores_avx512(const heed_flash_backward_args *args);
void flash_scores_exp_avx512(int64_t rows, int64_t keys, int64_t depth, const float *query, int64_t query_stride,
                             const float *key_panels, float *p, int64_t stride, const float *shift2, float *sums);
void flash_gemm_avx512(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                       int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale);
#endif

extern const flash_kernel_table flash_portable_kernels;
#if defined(__x86_64__) || defined(__i386__)
extern const flash_kernel_table flash_avx2_kernels;
/// flash_avx2_kernels with the AVX-512 GEMM (64-column outputs), scores_exp and backward row passes.
extern const flash_kernel_table flash_avx512_kernels;
#endif

/// The table for this CPU (honours heed_kernels_force_portable and heed_kernels_allow_avx512).
const flash_kernel_table *flash_kernels(void);

#endif
