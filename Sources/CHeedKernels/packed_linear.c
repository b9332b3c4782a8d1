// Linear layers on packed weights (heed_packed.h): out = a Wᵀ + bias (+ residual).
//
// Blocking (BLIS's loop order, without packing A): column blocks of NC
// outputs outside, row blocks of MC inside, then the panels of the column
// block, then register blocks of rows. A row block of A (MC × k floats, 144 KB
// for k = 384) stays in L2 while the column block's panels pass; one panel
// pair (32 × k floats) is read from L1/L2 by every register block of the row
// block. NC = 192 and MC = 96 measured best or within noise of the best over
// NC ∈ {128, …, 768} and MC ∈ {24, …, 192} on MiniLM's shapes (Zen 4:
// 106–114 GFLOP/s on one core against OpenBLAS's 102–106, which packs both
// operands on every call). The whole k range runs in one pass: splitting k
// measured no faster.
//
// AVX-512: 12 rows × 32 columns in 24 zmm accumulators; per k, two loads of
// W and twelve broadcasts of A for 24 FMAs. The accumulators start at
// bias + residual, so no separate pass writes them. AVX2: the flash engine's
// 6 × 16 tile GEMM (flash_gemm.c) accumulating onto out, after a pass that
// writes bias + residual there.
#include "heed_packed.h"
#include "flash_internal.h"
#include "kernels_internal.h"
#include <math.h>

enum { NC = 192, MC = 96, PANEL = HEED_FLASH_PANEL };

int64_t heed_packed_count(int64_t n, int64_t k) { return heed_flash_panels_count(n, k); }

void heed_pack_weights_f32(const float *weight, int64_t n, int64_t k, float *panels) {
    heed_flash_pack_panels(weight, n, k, k, panels);
}

/// The start of output (i, j): bias + residual, either alone, or 0.
static inline float start(const float *bias, const float *residual, int64_t ldr, int64_t i, int64_t j) {
    if (bias && residual) return bias[j] + residual[i * ldr + j];
    if (bias) return bias[j];
    if (residual) return residual[i * ldr + j];
    return 0.0f;
}

static void portable_linear(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *panels,
                            const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            const float *w = panels + (j / PANEL) * PANEL * k + j % PANEL;
            float sum = start(bias, residual, ldr, i, j);
            for (int64_t kk = 0; kk < k; kk++) sum = fmaf(a[i * lda + kk], w[kk * PANEL], sum);
            out[i * ldo + j] = sum;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include "avx512_gemm.h"

/// The start of a row's 16 outputs (see start()); masked-off lanes 0.
HEED_AVX512_GEMM_INLINE __m512 start16(const float *bias, const float *residual, __mmask16 mask) {
    if (bias && residual) return _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias), _mm512_maskz_loadu_ps(mask, residual));
    if (bias) return _mm512_maskz_loadu_ps(mask, bias);
    if (residual) return _mm512_maskz_loadu_ps(mask, residual);
    return _mm512_setzero_ps();
}

/// MR rows × (16 · PANELS) columns of out from w (PANELS = 2: w and w + 16k),
/// starting at bias + residual.
HEED_AVX512_GEMM_INLINE void block(const int MR, const int PANELS, int64_t k, const float *a, int64_t lda, const float *w,
                                   const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo,
                                   __mmask16 m0, __mmask16 m1) {
    __m512 acc[HEED_AVX512_ROWS][2];
    for (int r = 0; r < MR; r++) {
        acc[r][0] = start16(bias, residual ? residual + r * ldr : 0, m0);
        acc[r][1] = PANELS == 2 ? start16(bias ? bias + PANEL : 0, residual ? residual + r * ldr + PANEL : 0, m1)
                                : _mm512_setzero_ps();
    }
    heed_avx512_accumulate(MR, PANELS, 1, k, a, lda, 1, w, PANEL, PANEL * k, acc);
    for (int r = 0; r < MR; r++) {
        _mm512_mask_storeu_ps(out + r * ldo, m0, acc[r][0]);
        if (PANELS == 2) _mm512_mask_storeu_ps(out + r * ldo + PANEL, m1, acc[r][1]);
    }
}

HEED_AVX512 static void avx512_linear(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *panels,
                                      const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo) {
    for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t column_end = jc + NC < n ? jc + NC : n;
        for (int64_t ic = 0; ic < m; ic += MC) {
            const int64_t row_end = ic + MC < m ? ic + MC : m;
            for (int64_t j = jc; j < column_end; j += 2 * PANEL) {
                const float *w = panels + j * k;                      // panel j/16 starts at (j/16)·16k
                const __mmask16 m0 = heed_lanes16(column_end - j), m1 = heed_lanes16(column_end - j - PANEL);
                const float *bj = bias ? bias + j : 0;
                for (int64_t i = ic; i < row_end; i += HEED_AVX512_ROWS) {
                    const int64_t mr = row_end - i < HEED_AVX512_ROWS ? row_end - i : HEED_AVX512_ROWS;
                    const float *ai = a + i * lda;
                    const float *rij = residual ? residual + i * ldr + j : 0;
                    float *oij = out + i * ldo + j;
#define PAIR(MR) block(MR, 2, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1)
#define SINGLE(MR) block(MR, 1, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1)
                    if (column_end - j > PANEL) { HEED_AVX512_ROWS_SWITCH(mr, PAIR) } else { HEED_AVX512_ROWS_SWITCH(mr, SINGLE) }
#undef PAIR
#undef SINGLE
                }
            }
        }
    }
}

/// Bias + residual into out, then the flash tile GEMM accumulates onto it.
static void avx2_linear(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *panels,
                        const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) out[i * ldo + j] = start(bias, residual, ldr, i, j);
    }
    for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t columns = jc + NC < n ? NC : n - jc;
        for (int64_t ic = 0; ic < m; ic += MC) {
            const int64_t rows = ic + MC < m ? MC : m - ic;
            flash_gemm_avx2(rows, columns, k, a + ic * lda, lda, 1, panels + jc * k, PANEL, PANEL * k,
                            out + ic * ldo + jc, ldo, FLASH_ACCUMULATE, 0);
        }
    }
}
#endif

void heed_packed_linear_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *panels,
                            const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo) {
    if (m <= 0 || n <= 0) return;
#if defined(__x86_64__) || defined(__i386__)
    if (heed_kernels_avx512_active()) { avx512_linear(m, n, k, a, lda, panels, bias, residual, ldr, out, ldo); return; }
    if (heed_kernels_avx2_active()) { avx2_linear(m, n, k, a, lda, panels, bias, residual, ldr, out, ldo); return; }
#endif
    portable_linear(m, n, k, a, lda, panels, bias, residual, ldr, out, ldo);
}

const char *heed_packed_isa(void) {
    if (heed_kernels_avx512_active()) return "avx512";
    return heed_kernels_avx2_active() ? "avx2+fma" : "portable";
}
