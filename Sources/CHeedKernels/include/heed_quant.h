// Matrix products straight from ggml's quantised blocks (Q4_0, Q4_1, Q8_0):
// the weights stay as the GGUF file stores them and are unpacked inside the
// kernel, one block of 32 at a time; the activations stay in f32.
//
// Block layouts (ggml `ggml-common.h`), 32 weights a block, little-endian:
//
//   Q4_0  { f16 d; uint8 qs[16]; }          w[j] = ((qs[j] & 0xF) − 8)·d,  w[j+16] = ((qs[j] >> 4) − 8)·d
//   Q4_1  { f16 d; f16 m; uint8 qs[16]; }   w[j] = (qs[j] & 0xF)·d + m,    w[j+16] = (qs[j] >> 4)·d + m
//   Q8_0  { f16 d; int8 qs[32]; }           w[j] = qs[j]·d
//
// A weight matrix W [rows, columns] is `rows` rows of columns / 32 blocks.
// Like heed_kernels.h, every entry point dispatches at run time to an
// AVX2+FMA+F16C version or a portable one (and follows
// heed_kernels_force_portable). All functions are thread-safe and write only
// rows [row_begin, row_end) of their output, so callers split rows over
// threads.
#ifndef HEED_QUANT_H
#define HEED_QUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The block types with a kernel; the values are ggml's type ids.
typedef enum heed_quant_type {
    HEED_QUANT_Q4_0 = 2,
    HEED_QUANT_Q4_1 = 3,
    HEED_QUANT_Q8_0 = 8,
} heed_quant_type;

/// Bytes of one row of `columns` weights (columns a multiple of 32); 0 for an unknown type.
int64_t heed_quant_row_bytes(heed_quant_type type, int64_t columns);

/// y = x Wᵀ for the rows r ∈ [row_begin, row_end) of W:
///
///     y[t·y_stride + r] = Σ_c x[t·columns + c] · W(r, c),   t < n
///
/// Each block's weights are unpacked once for up to four tokens at a time, so
/// the kernel suits small n (decoding); for long prompts, dequantise panels
/// of rows and multiply them with sgemm (heed_quant_dequantize_f32).
/// Q4_1's offset m enters as m · Σ_block x, the block sums of x computed once
/// per call.
///
/// - weights: W's first row (rows are contiguous, heed_quant_row_bytes each)
/// - x: [n, columns];  y: row r of token t at y[t·y_stride + r]
void heed_quant_matmul_f32(heed_quant_type type, const void *weights, int64_t columns,
                           int64_t row_begin, int64_t row_end,
                           const float *x, int64_t n, float *y, int64_t y_stride);

/// out[(r − row_begin)·columns + c] = W(r, c) for r ∈ [row_begin, row_end):
/// bit for bit the reference dequantisation (d·q in f32, exact; Q4_1 then + m).
void heed_quant_dequantize_f32(heed_quant_type type, const void *weights, int64_t columns,
                               int64_t row_begin, int64_t row_end, float *out);

/// Activations quantised to 8 bits, 32 at a time (as llama.cpp's Q8_1, with
/// f32 instead of f16 scales): d = max|x| / 127, q = round(x · (1/d)) (to
/// nearest, ties to even), s = d · Σq. For heed_quant_matmul_q8, the opt-in fast path that
/// trades the exactness of f32 activations for integer dot products.
typedef struct heed_q8_block {
    float d;
    float s;
    int8_t q[32];
} heed_q8_block;

/// x [n, columns] → blocks [n, columns / 32].
void heed_quant_activations_q8(const float *x, int64_t n, int64_t columns, heed_q8_block *out);

/// heed_quant_matmul_f32 with activations quantised by heed_quant_activations_q8:
///
///     y[t·y_stride + r] = Σ_blocks d_w·d_x·Σ_j q_j p_j + m·s_x     (m: Q4_1's offset, −8·d_w for Q4_0, 0 for Q8_0)
///
/// The inner sums are exact integer arithmetic (VPMADDUBSW/VPMADDWD).
void heed_quant_matmul_q8(heed_quant_type type, const void *weights, int64_t columns,
                          int64_t row_begin, int64_t row_end,
                          const heed_q8_block *x, int64_t n, float *y, int64_t y_stride);

#ifdef __cplusplus
}
#endif

#endif
