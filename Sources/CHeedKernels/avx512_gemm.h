// The AVX-512 register block shared by the packed linear layers
// (packed_linear.c) and the flash tile GEMMs (flash_avx512.c): up to 12 rows
// × 32 columns of C in 24 zmm accumulators, B in 16-column panels (the
// layout of heed_flash_pack_panels), A read in place with either layout.
//
//     acc[r][p] += Σ_{k < kc} A(r, k) · B(k, 16p ..< 16p + 16)
//
// Per step k: one or two loads of B, MR broadcasts of A, MR · PANELS FMAs.
// The products are added in k order with one FMA each, as in the AVX2 6 × 16
// kernel (flash_gemm.c) and the portable loops, so every path returns the same
// sums. Included only inside `#if defined(__x86_64__)` blocks.
#ifndef HEED_AVX512_GEMM_H
#define HEED_AVX512_GEMM_H

#include <immintrin.h>
#include <stdint.h>

#define HEED_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define HEED_AVX512_GEMM_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

/// Rows of the largest register block.
enum { HEED_AVX512_ROWS = 12 };

/// Lanes 0 ..< count of 16 (count ≤ 0: none).
HEED_AVX512_GEMM_INLINE __mmask16 heed_lanes16(int64_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

/// The k loop of an MR × 16·PANELS block: A(r, k) = a[r·ars + k] when
/// A_ROWS, else a[r + k·aks]; B(k, 16p + j) = b[p·panel_stride + k·ldb + j].
/// MR, PANELS and A_ROWS are constants at every call, so `acc` stays in
/// registers and the loops unroll. With PANELS = 1 the second panel is
/// never read.
HEED_AVX512_GEMM_INLINE void heed_avx512_accumulate(const int MR, const int PANELS, const int A_ROWS, int64_t kc,
                                                    const float *a, int64_t ars, int64_t aks, const float *b,
                                                    int64_t ldb, int64_t panel_stride,
                                                    __m512 acc[HEED_AVX512_ROWS][2]) {
    const float *second = b + panel_stride;
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b + k * ldb);
        const __m512 b1 = PANELS == 2 ? _mm512_loadu_ps(second + k * ldb) : b0;
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(A_ROWS ? a[r * ars + k] : a[r + k * aks]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            if (PANELS == 2) acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
}

/// Runs BLOCK(MR) with MR the constant equal to `mr` (1 … 12).
#define HEED_AVX512_ROWS_SWITCH(mr, BLOCK)                                                                     \
    switch (mr) {                                                                                               \
    case 12: BLOCK(12); break;                                                                                  \
    case 11: BLOCK(11); break;                                                                                  \
    case 10: BLOCK(10); break;                                                                                  \
    case 9: BLOCK(9); break;                                                                                    \
    case 8: BLOCK(8); break;                                                                                    \
    case 7: BLOCK(7); break;                                                                                    \
    case 6: BLOCK(6); break;                                                                                    \
    case 5: BLOCK(5); break;                                                                                    \
    case 4: BLOCK(4); break;                                                                                    \
    case 3: BLOCK(3); break;                                                                                    \
    case 2: BLOCK(2); break;                                                                                    \
    default: BLOCK(1); break;                                                                                   \
    }

#endif
