// The tile GEMM of the flash attention steps (flash_internal.h), portable and
// AVX2+FMA.
//
//     C[m, n] (=, +=, or row_scale ∘ C +=) Σ_{k < kc} A(i, k) · B(k, j)
//
// The AVX2 micro-kernel holds a 6 × 16 block of C in 12 ymm registers; per
// step k it loads two vectors of B and broadcasts six scalars of A for 12
// FMAs — 2 loads + 6 broadcasts per 12 FMAs keeps Zen 3's two FMA pipes fed
// from L1 (the shape of BLIS's Haswell sgemm kernel, derived here from the
// register budget: 12 accumulators + 2 B vectors + 1 broadcast of the 16
// registers). Row blocks of 6 run inside column panels of 16 so a B panel
// (16 × kc floats, 6 KB for kc = 96) stays in L1 across the row blocks. A
// last panel narrower than 16 uses masked loads and stores, never touching
// memory past column n. Measured on 96 × 96 × 64 tiles: ≈ 90 % of one Zen 3
// core's FMA peak (BENCHMARKS.md, "Flash attention").
#include "flash_internal.h"
#include <math.h>

void flash_gemm_portable(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b,
                          int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode, const float *row_scale) {
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++) {
            const float *bj = b + (j / HEED_FLASH_PANEL) * panel_stride + j % HEED_FLASH_PANEL;
            float sum = 0.0f;
            for (int64_t k = 0; k < kc; k++) sum += a[i * ars + k * aks] * bj[k * ldb];
            if (mode == FLASH_STORE) ci[j] = sum;
            else if (mode == FLASH_ACCUMULATE) ci[j] += sum;
            else ci[j] = row_scale[i] * ci[j] + sum;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define FLASH_AVX2 __attribute__((target("avx2,fma")))
#define FLASH_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#include "flash_exp2.h"

/// Lanes 0 ..< count set (count ≤ 0: none, ≥ 8: all).
FLASH_AVX2_INLINE __m256i lanes(int64_t count) {
    int clamped = count < 0 ? 0 : count > 8 ? 8 : (int)count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(clamped), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// One step k of the 6 × 16 block: two loads of B, six broadcasts of A
/// (rows at a0, a0 + s, a0 + 2s, a3, a3 + s, a3 + 2s), twelve FMAs.
#define FLASH_STEP_6x16                                                                                        \
    "vmovups (%[b]), %[t0]\n\t"                                                                              \
    "vmovups 32(%[b]), %[t1]\n\t"                                                                            \
    "vbroadcastss (%[a0]), %[t2]\n\t"                                                                        \
    "vfmadd231ps %[t0], %[t2], %[c0]\n\t"                                                                    \
    "vfmadd231ps %[t1], %[t2], %[c1]\n\t"                                                                    \
    "vbroadcastss (%[a0],%[s],1), %[t2]\n\t"                                                                 \
    "vfmadd231ps %[t0], %[t2], %[c2]\n\t"                                                                    \
    "vfmadd231ps %[t1], %[t2], %[c3]\n\t"                                                                    \
    "vbroadcastss (%[a0],%[s],2), %[t2]\n\t"                                                                 \
    "vfmadd231ps %[t0], %[t2], %[c4]\n\t"                                                                    \
    "vfmadd231ps %[t1], %[t2], %[c5]\n\t"                                                                    \
    "vbroadcastss (%[a3]), %[t2]\n\t"                                                                        \
    "vfmadd231ps %[t0], %[t2], %[c6]\n\t"                                                                    \
    "vfmadd231ps %[t1], %[t2], %[c7]\n\t"                                                                    \
    "vbroadcastss (%[a3],%[s],1), %[t2]\n\t"                                                                 \
    "vfmadd231ps %[t0], %[t2], %[c8]\n\t"                                                                    \
    "vfmadd231ps %[t1], %[t2], %[c9]\n\t"                                                                    \
    "vbroadcastss (%[a3],%[s],2), %[t2]\n\t"                                                                 \
    "vfmadd231ps %[t0], %[t2], %[c10]\n\t"                                                                   \
    "vfmadd231ps %[t1], %[t2], %[c11]\n\t"                                                                   \
    "add %[bstep], %[b]\n\t"                                                                                 \
    "add %[astep], %[a0]\n\t"                                                                                \
    "add %[astep], %[a3]\n\t"

/// The k loop of a full 6 × 16 block in inline assembly, so the 12
/// accumulators, 2 B vectors and the broadcast register are pinned whatever
/// the compiler's register pressure: with -fno-omit-frame-pointer (SwiftPM's
/// default) clang's own schedule of the intrinsic loop spilled accumulators
/// and ran at half speed. Row r of A is at a + r·row_bytes, step k moves A by
/// step_bytes and B by ldb_bytes — one form for both A layouts.
FLASH_AVX2_INLINE void gemm_loop_6x16(int64_t kc, const float *a, int64_t row_bytes, int64_t step_bytes, const float *b,
                                      int64_t ldb_bytes, __m256 acc[6][2]) {
    __m256 c0 = acc[0][0], c1 = acc[0][1], c2 = acc[1][0], c3 = acc[1][1], c4 = acc[2][0], c5 = acc[2][1];
    __m256 c6 = acc[3][0], c7 = acc[3][1], c8 = acc[4][0], c9 = acc[4][1], c10 = acc[5][0], c11 = acc[5][1];
    __m256 t0, t1, t2;
    const char *a0 = (const char *)a, *a3 = (const char *)a + 3 * row_bytes, *bp = (const char *)b;
    int64_t pairs = kc / 2;
    if (kc & 1) {
        __asm__ volatile(FLASH_STEP_6x16
                         : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4), [c5] "+x"(c5),
                           [c6] "+x"(c6), [c7] "+x"(c7), [c8] "+x"(c8), [c9] "+x"(c9), [c10] "+x"(c10),
                           [c11] "+x"(c11), [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2), [a0] "+r"(a0),
                           [a3] "+r"(a3), [b] "+r"(bp)
                         : [s] "r"(row_bytes), [astep] "r"(step_bytes), [bstep] "r"(ldb_bytes)
                         : "memory");
    }
    if (pairs > 0) {
        __asm__ volatile("1:\n\t" FLASH_STEP_6x16 FLASH_STEP_6x16
                         "dec %[k]\n\t"
                         "jnz 1b\n\t"
                         : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4), [c5] "+x"(c5),
                           [c6] "+x"(c6), [c7] "+x"(c7), [c8] "+x"(c8), [c9] "+x"(c9), [c10] "+x"(c10),
                           [c11] "+x"(c11), [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2), [a0] "+r"(a0),
                           [a3] "+r"(a3), [b] "+r"(bp), [k] "+r"(pairs)
                         : [s] "r"(row_bytes), [astep] "r"(step_bytes), [bstep] "r"(ldb_bytes)
                         : "cc", "memory");
    }
    acc[0][0] = c0; acc[0][1] = c1; acc[1][0] = c2; acc[1][1] = c3; acc[2][0] = c4; acc[2][1] = c5;
    acc[3][0] = c6; acc[3][1] = c7; acc[4][0] = c8; acc[4][1] = c9; acc[5][0] = c10; acc[5][1] = c11;
}

/// One MR × 16 block of C; MR, MASKED and A_ROWS (aks = 1, else ars = 1)
/// are constants at every call, so the accumulators live in registers and
/// the loops unroll.
FLASH_AVX2_INLINE void gemm_block(const int MR, const int MASKED, const int A_ROWS, int64_t nc, int64_t kc,
                                  const float *a, int64_t ars, int64_t aks, const float *b, int64_t ldb, float *c,
                                  int64_t ldc, int mode, const float *row_scale) {
    __m256 acc[6][2];
    __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;
    if (MASKED) { m0 = lanes(nc); m1 = lanes(nc - 8); }
    for (int r = 0; r < MR; r++) {
        if (mode == FLASH_STORE || mode == FLASH_EXPONENT) {
            acc[r][0] = _mm256_setzero_ps();
            acc[r][1] = _mm256_setzero_ps();
        } else {
            acc[r][0] = MASKED ? _mm256_maskload_ps(c + r * ldc, m0) : _mm256_loadu_ps(c + r * ldc);
            acc[r][1] = MASKED ? _mm256_maskload_ps(c + r * ldc + 8, m1) : _mm256_loadu_ps(c + r * ldc + 8);
            if (mode == FLASH_RESCALE) {
                __m256 s = _mm256_broadcast_ss(row_scale + r);
                acc[r][0] = _mm256_mul_ps(acc[r][0], s);
                acc[r][1] = _mm256_mul_ps(acc[r][1], s);
            }
        }
    }
    // A's layout is a constant here (rows of A contiguous in k, or columns),
    // so the broadcasts use constant offsets from one or a few pointers.
    if (A_ROWS) aks = 1; else ars = 1;
    if (MR == 6 && !MASKED) {
        gemm_loop_6x16(kc, a, ars * 4, aks * 4, b, ldb * 4, acc);
    } else {
#pragma clang loop unroll(disable)
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * ldb;
        const __m256 b0 = MASKED ? _mm256_maskload_ps(bk, m0) : _mm256_loadu_ps(bk);
        const __m256 b1 = MASKED ? _mm256_maskload_ps(bk + 8, m1) : _mm256_loadu_ps(bk + 8);
        const float *ak = a + k * aks;
        for (int r = 0; r < MR; r++) {
            const __m256 av = _mm256_broadcast_ss(ak + r * ars);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    }
    if (mode == FLASH_EXPONENT) {
        const __m256 low = _mm256_set1_ps(-126.0f), high = _mm256_set1_ps(64.0f);
        for (int r = 0; r < MR; r++) {
            const __m256 shift = _mm256_broadcast_ss(row_scale + r);
            for (int h = 0; h < 2; h++) {
                acc[r][h] = _mm256_max_ps(low, _mm256_min_ps(_mm256_sub_ps(acc[r][h], shift), high));  // NaN → 64
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        if (MASKED) {
            _mm256_maskstore_ps(c + r * ldc, m0, acc[r][0]);
            _mm256_maskstore_ps(c + r * ldc + 8, m1, acc[r][1]);
        } else {
            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
        }
    }
}

#define GEMM_BLOCK_ROWS(MASKED, A_ROWS)                                                                         \
    switch (mr) {                                                                                               \
    case 6: gemm_block(6, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;                 \
    case 5: gemm_block(5, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;                 \
    case 4: gemm_block(4, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;                 \
    case 3: gemm_block(3, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;                 \
    case 2: gemm_block(2, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;                 \
    default: gemm_block(1, MASKED, A_ROWS, nc, kc, ai, ars, aks, bp, ldb, ci, ldc, mode, si); break;                \
    }

/// Panels of 16 columns outside, blocks of 6 rows inside. A must have aks = 1
/// (row-major, ars its stride) or ars = 1 (transposed).
FLASH_AVX2 void flash_gemm_avx2(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks,
                                 const float *b, int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode,
                                 const float *row_scale) {
    for (int64_t j = 0; j < n; j += HEED_FLASH_PANEL) {
        const int64_t nc = n - j < HEED_FLASH_PANEL ? n - j : HEED_FLASH_PANEL;
        const float *bp = b + (j / HEED_FLASH_PANEL) * panel_stride;
        for (int64_t i = 0; i < m; i += 6) {
            const int64_t mr = m - i < 6 ? m - i : 6;
            const float *ai = a + i * ars;
            float *ci = c + i * ldc + j;
            const float *si = row_scale ? row_scale + i : 0;
            if (nc == HEED_FLASH_PANEL) {
                if (aks == 1) { GEMM_BLOCK_ROWS(0, 1) } else { GEMM_BLOCK_ROWS(0, 0) }
            } else {
                if (aks == 1) { GEMM_BLOCK_ROWS(1, 1) } else { GEMM_BLOCK_ROWS(1, 0) }
            }
        }
    }
}

/// The forward's fused path on AVX2: S = Q Kᵀ by the tile GEMM, then one
/// sweep over the tile, P = 2^t with t = S − shift2[r], and the row sums. t is
/// capped at 64 (NaN becomes 64 too) so that the exponent field cannot
/// overflow: a t past the caller's headroom shows as a row sum ≥ 2^64. The
/// subtraction and both clamps (exp2_nonpositive's floor at −126 and the cap)
/// run in the GEMM's store (FLASH_EXPONENT), where they overlap the next
/// block's FMAs; the sweep keeps the polynomial and the exponent-field step
/// (exp2_clamped). Measured on one core (96 × 96 tiles, D = 64): 95.1 GFLOP/s
/// for S and the exponential, against 87.3 with the exponential applied to
/// each register block as it left the FMAs (see flash_avx512.c); with the
/// clamps in the store, the one-pass step 102.4–103.1 → 103.5 GFLOP/s.
FLASH_AVX2 void flash_scores_exp_avx2(int64_t rows, int64_t keys, int64_t depth, const float *query,
                                      int64_t query_stride, const float *key_panels, float *p, int64_t stride,
                                      const float *shift2, float *sums) {
    flash_gemm_avx2(rows, keys, depth, query, query_stride, 1, key_panels, HEED_FLASH_PANEL, depth * HEED_FLASH_PANEL,
                    p, stride, FLASH_EXPONENT, shift2);
    for (int64_t r = 0; r < rows; r++) {
        float *row = p + r * stride;
        __m256 sum = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 8 <= keys; c += 8) {
            const __m256 e = exp2_clamped(_mm256_loadu_ps(row + c));
            _mm256_storeu_ps(row + c, e);
            sum = _mm256_add_ps(sum, e);
        }
        if (c < keys) {
            const __m256i m = lanes(keys - c);
            const __m256 e = _mm256_and_ps(exp2_clamped(_mm256_maskload_ps(row + c, m)), _mm256_castsi256_ps(m));
            _mm256_maskstore_ps(row + c, m, e);
            sum = _mm256_add_ps(sum, e);
        }
        sums[r] = horizontal_sum(sum);
    }
}

/// heed_flash_pack_panels with 8 × 8 blocks moved through registers: eight
/// rows of eight columns loaded, transposed (unpack, shuffle, permute: the
/// usual 24-instruction 8 × 8 transpose) and stored as eight lines of a
/// panel. Rows past the last full block of 8 and columns past the last
/// multiple of 8 are copied one by one, padding rows are zeros, as in the
/// portable loop. Measured: packing was ≈ 3 % of a flash forward+backward at
/// L = 1024 with the scalar loop, whose loads stride across rows.
FLASH_AVX2 void flash_pack_panels_avx2(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels) {
    for (int64_t p = 0; p * HEED_FLASH_PANEL < rows; p++) {
        float *panel = panels + p * HEED_FLASH_PANEL * columns;
        const int64_t first = p * HEED_FLASH_PANEL;
        const int64_t width = rows - first < HEED_FLASH_PANEL ? rows - first : HEED_FLASH_PANEL;
        const int64_t full_columns = columns / 8 * 8;
        int64_t r = 0;
        for (; r + 8 <= width; r += 8) {
            const float *block = source + (first + r) * stride;
            for (int64_t c = 0; c < full_columns; c += 8) {
                const __m256 r0 = _mm256_loadu_ps(block + c), r1 = _mm256_loadu_ps(block + stride + c);
                const __m256 r2 = _mm256_loadu_ps(block + 2 * stride + c), r3 = _mm256_loadu_ps(block + 3 * stride + c);
                const __m256 r4 = _mm256_loadu_ps(block + 4 * stride + c), r5 = _mm256_loadu_ps(block + 5 * stride + c);
                const __m256 r6 = _mm256_loadu_ps(block + 6 * stride + c), r7 = _mm256_loadu_ps(block + 7 * stride + c);
                const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
                const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
                const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
                const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
                const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
                const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
                const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
                const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
                const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
                const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
                const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
                const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
                float *line = panel + c * HEED_FLASH_PANEL + r;                  // column c, rows r ..< r + 8
                _mm256_storeu_ps(line, _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_storeu_ps(line + HEED_FLASH_PANEL, _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_storeu_ps(line + 2 * HEED_FLASH_PANEL, _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_storeu_ps(line + 3 * HEED_FLASH_PANEL, _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_storeu_ps(line + 4 * HEED_FLASH_PANEL, _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_storeu_ps(line + 5 * HEED_FLASH_PANEL, _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_storeu_ps(line + 6 * HEED_FLASH_PANEL, _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_storeu_ps(line + 7 * HEED_FLASH_PANEL, _mm256_permute2f128_ps(u3, u7, 0x31));
            }
            for (int64_t c = full_columns; c < columns; c++) {
                for (int64_t i = 0; i < 8; i++) panel[c * HEED_FLASH_PANEL + r + i] = block[i * stride + c];
            }
        }
        for (int64_t c = 0; c < columns; c++) {
            float *line = panel + c * HEED_FLASH_PANEL;
            for (int64_t i = r; i < width; i++) line[i] = source[(first + i) * stride + c];
            for (int64_t i = width; i < HEED_FLASH_PANEL; i++) line[i] = 0.0f;
        }
    }
}
#endif
