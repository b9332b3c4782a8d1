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
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

/// Lanes 0 ..< count of 16 (count ≤ 0: none).
AVX512_INLINE __mmask16 lanes16(int64_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

/// The start of a row's 16 outputs (see start()); masked-off lanes 0.
AVX512_INLINE __m512 start16(const float *bias, const float *residual, __mmask16 mask) {
    if (bias && residual) return _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias), _mm512_maskz_loadu_ps(mask, residual));
    if (bias) return _mm512_maskz_loadu_ps(mask, bias);
    if (residual) return _mm512_maskz_loadu_ps(mask, residual);
    return _mm512_setzero_ps();
}

/// MR rows × (16 · PANELS) columns of out from w (PANELS = 2: w and w + 16k).
/// MR and PANELS are constants at every call, so the accumulators stay in
/// registers and the loops unroll.
AVX512_INLINE void block(const int MR, const int PANELS, int64_t k, const float *a, int64_t lda, const float *w,
                         const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo,
                         __mmask16 m0, __mmask16 m1) {
    __m512 acc[12][2];
    for (int r = 0; r < MR; r++) {
        acc[r][0] = start16(bias, residual ? residual + r * ldr : 0, m0);
        if (PANELS == 2) acc[r][1] = start16(bias ? bias + PANEL : 0, residual ? residual + r * ldr + PANEL : 0, m1);
    }
    const float *w1 = w + PANEL * k;
    for (int64_t kk = 0; kk < k; kk++) {
        const __m512 w0v = _mm512_loadu_ps(w + kk * PANEL);
        const __m512 w1v = PANELS == 2 ? _mm512_loadu_ps(w1 + kk * PANEL) : w0v;
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(a[r * lda + kk]);
            acc[r][0] = _mm512_fmadd_ps(av, w0v, acc[r][0]);
            if (PANELS == 2) acc[r][1] = _mm512_fmadd_ps(av, w1v, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_mask_storeu_ps(out + r * ldo, m0, acc[r][0]);
        if (PANELS == 2) _mm512_mask_storeu_ps(out + r * ldo + PANEL, m1, acc[r][1]);
    }
}

#define BLOCK_ROWS(PANELS)                                                                                     \
    switch (mr) {                                                                                              \
    case 12: block(12, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                          \
    case 11: block(11, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                          \
    case 10: block(10, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                          \
    case 9: block(9, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 8: block(8, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 7: block(7, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 6: block(6, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 5: block(5, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 4: block(4, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 3: block(3, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    case 2: block(2, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                            \
    default: block(1, PANELS, k, ai, lda, w, bj, rij, ldr, oij, ldo, m0, m1); break;                           \
    }

AVX512 static void avx512_linear(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *panels,
                                 const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo) {
    for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t column_end = jc + NC < n ? jc + NC : n;
        for (int64_t ic = 0; ic < m; ic += MC) {
            const int64_t row_end = ic + MC < m ? ic + MC : m;
            for (int64_t j = jc; j < column_end; j += 2 * PANEL) {
                const float *w = panels + j * k;                      // panel j/16 starts at (j/16)·16k
                const __mmask16 m0 = lanes16(column_end - j), m1 = lanes16(column_end - j - PANEL);
                const float *bj = bias ? bias + j : 0;
                for (int64_t i = ic; i < row_end; i += 12) {
                    const int64_t mr = row_end - i < 12 ? row_end - i : 12;
                    const float *ai = a + i * lda;
                    const float *rij = residual ? residual + i * ldr + j : 0;
                    float *oij = out + i * ldo + j;
                    if (column_end - j > PANEL) { BLOCK_ROWS(2) } else { BLOCK_ROWS(1) }
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
