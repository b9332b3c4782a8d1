// The flash kernels that run on AVX-512 where the CPU has it
// (heed_kernels_avx512_active): the forward's scores-and-exponential step
// (flash_internal.h, `scores_exp`) on avx512_gemm.h's register block, the
// tile GEMM for 64-column outputs, and the backward's two row passes on 16
// lanes.
//
// Other tile GEMMs (S and dP, whose width is the key tile) stay the AVX2
// 6 × 16 kernel on these CPUs: the same GEMM on the 12 × 32 block (every
// mode, both layouts of A) measured slower in the flash steps (`flash-tile`,
// one core: forward 100.1 against 102.3 GFLOP/s, backward 99.6 against
// 103.2), and so did its k loop in inline assembly with four base registers
// (99.8 and 99.5; slower in the packed linear layers too). Zen 4 runs a
// 512-bit FMA as two 256-bit halves: a wider block buys throughput only
// where it loads less per FMA, as the 6 × 64 block below does (4 loads and 6
// broadcasts per 24 FMAs).
//
// The scores-and-exponential step has the contract and arithmetic of
// flash_scores_exp_avx2 (flash_gemm.c): S = Σ_k Q(r, k)·K(c, k) by FMAs in
// k order from 0, then t = S − m_r·log₂e, P = 2^t, row sums. Differences:
// S on a 12 × 32 register block (24 zmm accumulators, two key panels; with
// the sweep below 1.7 % faster than S by the AVX2 6 × 16 kernel) with no
// masks where all 32 lanes are keys, and 2^t finishes with VSCALEFPS
// (P(f)·2^n in one instruction, exact while the result is normal) instead of
// building 2^n in the exponent field — 9 operations per 16 lanes against 13
// per 8. P equals the AVX2 kernel's wherever it is a normal float; the row
// sums add the same terms in another order.
#if defined(__x86_64__) || defined(__i386__)

#include "flash_internal.h"
#include "avx512_gemm.h"
#include "flash_exp2.h"
#include <math.h>

#define AVX512 HEED_AVX512
#define AVX512_INLINE HEED_AVX512_GEMM_INLINE

enum { PANEL = HEED_FLASH_PANEL, ROWS = HEED_AVX512_ROWS };

/// 2^x: flash_exp2.h's polynomial on f = x − round(x), scaled by
/// 2^round(x) with VSCALEFPS: subnormal or 0 far below 2^−126 (the AVX2
/// kernel's floor is 2^−126 — both far below what a softmax row resolves),
/// +inf past 2^128, NaN for NaN and ±inf (f = NaN) — the caller's row-sum
/// check sends those to the two-pass step.
AVX512_INLINE __m512 exp2_scalef(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(heed_flash_exp2[0]);
    for (int i = 1; i < 7; i++) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(heed_flash_exp2[i]));
    return _mm512_scalef_ps(p, n);
}

/// MR query rows × (16 · PANELS) keys of t = Σ_k Q(r, k)·K(c, k) − shift_r,
/// stored (masked past the last key). MR, PANELS and FULL (every lane a key: no
/// masks) are constants at every call (the accumulators stay in registers);
/// PANELS = 1 where fewer than 17 keys remain, so the second panel is never
/// read past the packed keys.
AVX512_INLINE void scores_block(const int MR, const int PANELS, const int FULL, int64_t depth, const float *query,
                                int64_t query_stride, const float *panel, const float *shift, float *t,
                                int64_t stride, __mmask16 m0, __mmask16 m1) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < MR; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = acc[r][0];
    }
    heed_avx512_accumulate(MR, PANELS, 1, depth, query, query_stride, 1, panel, PANEL, PANEL * depth, acc);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        const __m512 s = _mm512_set1_ps(shift[r]);
        acc[r][0] = _mm512_sub_ps(acc[r][0], s);
        acc[r][1] = _mm512_sub_ps(acc[r][1], s);
        if (FULL) {
            _mm512_storeu_ps(t + r * stride, acc[r][0]);
            _mm512_storeu_ps(t + r * stride + PANEL, acc[r][1]);
        } else {
            _mm512_mask_storeu_ps(t + r * stride, m0, acc[r][0]);
            if (PANELS == 2) _mm512_mask_storeu_ps(t + r * stride + PANEL, m1, acc[r][1]);
        }
    }
}

/// P = 2^t in place over one row of `keys` exponents t; returns the row's 16
/// lane sums.
AVX512_INLINE __m512 exp2_row(float *row, int64_t keys) {
    __m512 sum = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + PANEL <= keys; c += PANEL) {
        const __m512 e = exp2_scalef(_mm512_loadu_ps(row + c));
        _mm512_storeu_ps(row + c, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (c < keys) {
        const __mmask16 m = heed_lanes16(keys - c);
        const __m512 e = _mm512_maskz_mov_ps(m, exp2_scalef(_mm512_maskz_loadu_ps(m, row + c)));
        _mm512_mask_storeu_ps(row + c, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    return sum;
}

/// The totals of 16 vectors, v[i]'s in lane i: a tree of in-lane unpacks and
/// 128-bit shuffles, each level adding pairs, so that every vector's 16 lanes
/// are summed with 15 adds shared among the 16 (45 operations in all).
AVX512_INLINE __m512 row_sums16(const __m512 v[16]) {
    __m512 a[8], b[4], c[2];
    // a[i], 128-bit lane k: v[2i] and v[2i+1], their elements 0+2 and 1+3 of that lane, interleaved.
    for (int i = 0; i < 8; i++) {
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    }
    // b[i], 128-bit lane k: four floats, the totals of lane k of v[4i] … v[4i+3].
    for (int i = 0; i < 4; i++) {
        const __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
        b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    // c[i]: lanes 0 + 1 and 2 + 3 of b[2i], then of b[2i+1].
    for (int i = 0; i < 2; i++) {
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
    }
    return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
}

/// The fused path in two sweeps over the tile: every block of
/// t = S − shift2[r] first, then P = 2^t in place with the row sums. Measured
/// on one core (96 × 96 tiles, D = 64): 103.9 GFLOP/s for S and the exponential, against
/// 100.4 with the exponential applied to each register block as it left the
/// FMAs — 24 exponentials of ≈ 10 dependent operations each at the end of
/// every block held back the next block's FMAs; the separate sweep keeps the
/// two streams apart. The sweep reads S back from L1/L2.
AVX512 void flash_scores_exp_avx512(int64_t rows, int64_t keys, int64_t depth, const float *query,
                                    int64_t query_stride, const float *key_panels, float *p, int64_t stride,
                                    const float *shift2, float *sums) {
    // The shifts are subtracted as each block of S leaves the registers (the
    // sweep 2.12 → 1.90 ns per 16 lanes, the one-pass step +0.5 %).
    for (int64_t j = 0; j < keys; j += 2 * PANEL) {
        const float *panel = key_panels + j * depth;                       // panel j/16 starts at (j/16)·16·depth
        const __mmask16 m0 = heed_lanes16(keys - j), m1 = heed_lanes16(keys - j - PANEL);
        for (int64_t i = 0; i < rows; i += ROWS) {
            const int64_t mr = rows - i < ROWS ? rows - i : ROWS;
            const float *q = query + i * query_stride;
            float *pi = p + i * stride + j;
#define FULL(MR) scores_block(MR, 2, 1, depth, q, query_stride, panel, shift2 + i, pi, stride, m0, m1)
#define PAIR(MR) scores_block(MR, 2, 0, depth, q, query_stride, panel, shift2 + i, pi, stride, m0, m1)
#define SINGLE(MR) scores_block(MR, 1, 0, depth, q, query_stride, panel, shift2 + i, pi, stride, m0, m1)
            if (keys - j >= 2 * PANEL) {
                HEED_AVX512_ROWS_SWITCH(mr, FULL)
            } else if (keys - j > PANEL) {
                HEED_AVX512_ROWS_SWITCH(mr, PAIR)
            } else {
                HEED_AVX512_ROWS_SWITCH(mr, SINGLE)
            }
#undef FULL
#undef PAIR
#undef SINGLE
        }
    }
    // The sweep, 16 rows at a time so that their sums are reduced together
    // (row_sums16: 3 operations a row against 8 for each row alone; the
    // sweep 8.5 → 7.6 cycles per 16 lanes); the last rows one by one.
    __m512 row_sums[16];
    int64_t r = 0;
    for (; r + 16 <= rows; r += 16) {
        for (int i = 0; i < 16; i++) row_sums[i] = exp2_row(p + (r + i) * stride, keys);
        _mm512_storeu_ps(sums + r, row_sums16(row_sums));
    }
    for (; r < rows; r++) sums[r] = _mm512_reduce_add_ps(exp2_row(p + r * stride, keys));
}

/// The tile GEMM (flash_internal.h, `gemm`) for outputs 64 columns wide, the
/// head dimension of most models: P V in the forward, dV, dK and dQ in the
/// backward. MR × 64 blocks of C (MR ≤ 6: 24 zmm accumulators), per step k
/// four loads of B and MR broadcasts of A for 4·MR FMAs, the products added
/// in k order from C's starting value — the FMAs of the AVX2 6 × 16 kernel,
/// in the same order. Measured on one core, 96 × 96 × 64 tile products
/// against the AVX2 kernel: P V 115.0 against 114.2 GFLOP/s, dV 114.4
/// against 112.8, dQ 114.2 against 112.9, dK 113.7 against 111.2; the
/// backward step (`flash-tile`) 104.7 → 107.5. MR, A_ROWS (aks = 1, else
/// ars = 1) are constants at every call.
AVX512_INLINE void wide_block(const int MR, const int A_ROWS, int64_t kc, const float *a, int64_t ars, int64_t aks,
                              const float *b, int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode,
                              const float *row_scale) {
    __m512 acc[6][4];
    // Fully unrolled (MR ≤ 6, 4 panels) so that acc never leaves the registers;
    // left to itself clang kept the init and store loops rolled, through a
    // stack copy of acc (5 % slower).
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        const __m512 scale = mode == FLASH_RESCALE ? _mm512_set1_ps(row_scale[r]) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int p = 0; p < 4; p++) {
            if (mode == FLASH_STORE) acc[r][p] = _mm512_setzero_ps();
            else if (mode == FLASH_ACCUMULATE) acc[r][p] = _mm512_loadu_ps(c + r * ldc + PANEL * p);
            else acc[r][p] = _mm512_mul_ps(_mm512_loadu_ps(c + r * ldc + PANEL * p), scale);
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 bk[4];
#pragma clang loop unroll(full)
        for (int p = 0; p < 4; p++) bk[p] = _mm512_loadu_ps(b + p * panel_stride + k * ldb);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(A_ROWS ? a[r * ars + k] : a[r + k * aks]);
#pragma clang loop unroll(full)
            for (int p = 0; p < 4; p++) acc[r][p] = _mm512_fmadd_ps(av, bk[p], acc[r][p]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int p = 0; p < 4; p++) _mm512_storeu_ps(c + r * ldc + PANEL * p, acc[r][p]);
    }
}

AVX512 void flash_gemm_avx512(int64_t m, int64_t n, int64_t kc, const float *a, int64_t ars, int64_t aks,
                              const float *b, int64_t ldb, int64_t panel_stride, float *c, int64_t ldc, int mode,
                              const float *row_scale) {
    if (!flash_gemm_avx512_wide(n)) {      // keys (S, dP) and other head dimensions: the AVX2 kernel
        flash_gemm_avx2(m, n, kc, a, ars, aks, b, ldb, panel_stride, c, ldc, mode, row_scale);
        return;
    }
    for (int64_t j = 0; j < n; j += 64) {
        const float *bj = b + (j / PANEL) * panel_stride;
        for (int64_t i = 0; i < m; i += 6) {
            const int64_t mr = m - i < 6 ? m - i : 6;
            const float *ai = a + i * ars, *si = row_scale ? row_scale + i : 0;
            float *ci = c + i * ldc + j;
#define ROWS_A(MR) wide_block(MR, 1, kc, ai, ars, 1, bj, ldb, panel_stride, ci, ldc, mode, si)
#define COLUMNS_A(MR) wide_block(MR, 0, kc, ai, 1, aks, bj, ldb, panel_stride, ci, ldc, mode, si)
            switch (mr) {
            case 6: if (aks == 1) ROWS_A(6); else COLUMNS_A(6); break;
            case 5: if (aks == 1) ROWS_A(5); else COLUMNS_A(5); break;
            case 4: if (aks == 1) ROWS_A(4); else COLUMNS_A(4); break;
            case 3: if (aks == 1) ROWS_A(3); else COLUMNS_A(3); break;
            case 2: if (aks == 1) ROWS_A(2); else COLUMNS_A(2); break;
            default: if (aks == 1) ROWS_A(1); else COLUMNS_A(1); break;
            }
#undef ROWS_A
#undef COLUMNS_A
        }
    }
}

/// P = 2^(s·scale2 − shift2) for scores s, the exponent floored at −127; NaN
/// passes (max's second operand).
AVX512_INLINE __m512 probability(__m512 s, __m512 scale2, __m512 shift2) {
    return exp2_scalef(_mm512_max_ps(_mm512_set1_ps(-127.0f), _mm512_fmsub_ps(s, scale2, shift2)));
}

/// The backward's row passes on 16 lanes (flash_internal.h: backward_probabilities,
/// backward_d_scores) for scores that need no transform beyond the scale;
/// a softcap, bias or mask goes to the AVX2 passes. P = 2^(S·scale·log₂e −
/// LSE·log₂e) through exp2_scalef, x clamped at −127 first (a −inf score gives
/// a P of 2^−127 as the AVX2 pass's 2^−126, not NaN). Measured on one core,
/// 96 × 96 tiles: 1.60 and 0.83 µs per tile against the AVX2 passes' 1.83 and
/// 1.46, of a 56 µs backward step.
AVX512 void flash_backward_probabilities_avx512(const heed_flash_backward_args *args) {
    if (args->softcap != 0.0f || args->bias || args->mask) {
        flash_avx2_kernels.backward_probabilities(args);
        return;
    }
    const __m512 scale2 = _mm512_set1_ps(args->scale * FLASH_LOG2E);
    float shifts[HEED_FLASH_QUERY_RUN];                   // first, as for the forward's sweep (fused_path)
    for (int64_t r = 0; r < args->rows; r++) shifts[r] = flash_shift2(args->log_sum_exp[r]);
    for (int64_t r = 0; r < args->rows; r++) {
        float *s = args->scores + r * args->tile_stride;
        const float *keep = args->keep ? args->keep + r * args->tile_stride : 0;
        float *dropped = args->d_scores + r * args->tile_stride;
        const int finite = args->log_sum_exp[r] > -INFINITY;              // −inf: nothing allowed, P = 0
        const __m512 shift2 = _mm512_set1_ps(shifts[r]);
        int64_t c = 0;
        if (finite && !keep) {                             // the common row: whole vectors, no tests
            for (; c + PANEL <= args->keys; c += PANEL) {
                _mm512_storeu_ps(s + c, probability(_mm512_loadu_ps(s + c), scale2, shift2));
            }
        }
        for (; c < args->keys; c += PANEL) {
            const __mmask16 m = heed_lanes16(args->keys - c);
            __m512 p = _mm512_setzero_ps();
            if (finite) p = probability(_mm512_maskz_loadu_ps(m, s + c), scale2, shift2);
            _mm512_mask_storeu_ps(s + c, m, p);
            if (keep) _mm512_mask_storeu_ps(dropped + c, m, _mm512_mul_ps(p, _mm512_maskz_loadu_ps(m, keep + c)));
        }
    }
}

/// dS = scale·P ∘ (dP ∘ keep − Δ) (into bias_gradient without the scale when
/// asked); a softcap goes to the AVX2 pass.
AVX512 void flash_backward_d_scores_avx512(const heed_flash_backward_args *args) {
    if (args->softcap != 0.0f) {
        flash_avx2_kernels.backward_d_scores(args);
        return;
    }
    const __m512 scale = _mm512_set1_ps(args->scale);
    for (int64_t r = 0; r < args->rows; r++) {
        const int64_t offset = r * args->tile_stride;
        const float *p = args->scores + offset, *keep = args->keep ? args->keep + offset : 0;
        float *ds_out = args->d_scores + offset, *bias_out = args->bias_gradient ? args->bias_gradient + offset : 0;
        const __m512 delta = _mm512_set1_ps(args->delta[r]);
        for (int64_t c = 0; c < args->keys; c += PANEL) {
            const __mmask16 m = heed_lanes16(args->keys - c);
            __m512 dp = _mm512_maskz_loadu_ps(m, ds_out + c);
            if (keep) dp = _mm512_mul_ps(dp, _mm512_maskz_loadu_ps(m, keep + c));
            const __m512 ds = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + c), _mm512_sub_ps(dp, delta));
            if (bias_out) _mm512_mask_storeu_ps(bias_out + c, m, ds);
            _mm512_mask_storeu_ps(ds_out + c, m, _mm512_mul_ps(ds, scale));
        }
    }
}

#endif
