// Linear layers on weights packed once: y = x Wᵀ + bias (+ residual).
//
// A model's weight matrices never change between calls, so they are laid out
// once in the order the micro-kernels read them (panels of 16 output
// columns, the layout of heed_flash_pack_panels) and every product reads them
// from there, where a BLAS call packs its operands again on every call. The
// activations are read in place (rows of any stride).
//
// Dispatch at run time: AVX-512 (a 12 × 32 register block over two panels)
// where the CPU has it, else AVX2+FMA (the flash engine's 6 × 16 tile GEMM),
// else portable C; heed_kernels_force_portable and heed_kernels_allow_avx512
// choose for tests. All three add the products of each output in the same
// order, each with one fused multiply-add, so they return the same bits.
#ifndef HEED_PACKED_H
#define HEED_PACKED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Floats that the packed form of a [n, k] weight matrix takes: n rounded up
/// to a multiple of 16, times k.
int64_t heed_packed_count(int64_t n, int64_t k);

/// Packs W [n, k] (row-major, row stride k: out = x Wᵀ) into `panels`
/// (heed_packed_count(n, k) floats; 64-byte alignment is best): panel p holds
/// rows 16p ..< 16p + 16 of W transposed, panels[(p·k + i)·16 + j] = W[16p + j, i],
/// zeros past row n.
void heed_pack_weights_f32(const float *weight, int64_t n, int64_t k, float *panels);

/// out[i, j] = bias[j] + residual[i, j] + Σₖ a[i, k]·W[j, k] for i < m, j < n,
/// with W packed by heed_pack_weights_f32. `bias` (n floats) and `residual`
/// (row stride ldr; may equal out with ldr = ldo) may be NULL for zeros.
/// Rows of `a` have stride lda, rows of `out` ldo. Nothing past column n of
/// out is written. The sum starts from bias + residual and adds the k
/// products in order.
void heed_packed_linear_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *panels,
                            const float *bias, const float *residual, int64_t ldr, float *out, int64_t ldo);

/// Which micro-kernel heed_packed_linear_f32 runs now: "avx512", "avx2+fma" or "portable".
const char *heed_packed_isa(void);

#ifdef __cplusplus
}
#endif

#endif
