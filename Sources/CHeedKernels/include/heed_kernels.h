// Heed's hand-written CPU kernels.
//
// Every entry point below dispatches at run time: on x86-64 with AVX2+FMA it
// calls a version compiled with __attribute__((target("avx2,fma"))) (a few,
// where measured faster, an AVX-512 one with the same results); elsewhere a
// portable C version. No build flag is needed for the fast path.
//
// Conventions: `n` counts float elements; a stride argument is 0 (broadcast a
// single value) or 1 (contiguous). All functions are thread-safe and work on
// disjoint outputs, so callers may split ranges across threads.
#ifndef HEED_KERNELS_H
#define HEED_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Binary elementwise operations: out[i] = a[i*sa] OP b[i*sb].
typedef enum heed_binary_op {
    HEED_ADD = 0,
    HEED_SUB = 1,
    HEED_MUL = 2,
    HEED_DIV = 3,
    HEED_MAXIMUM = 4,
    HEED_MINIMUM = 5,
    HEED_POW = 6,
    HEED_EQUAL = 7,      ///< 1 where a == b, else 0
    HEED_GREATER = 8,    ///< 1 where a > b, else 0
    HEED_LESS = 9,       ///< 1 where a < b, else 0
} heed_binary_op;

/// Unary elementwise operations: out[i] = f(x[i]).
typedef enum heed_unary_op {
    HEED_NEG = 0,
    HEED_EXP = 1,
    HEED_LOG = 2,
    HEED_SQRT = 3,
    HEED_RSQRT = 4,
    HEED_TANH = 5,
    HEED_SIGMOID = 6,
    HEED_RELU = 7,
    HEED_GELU_ERF = 8,      ///< x·Φ(x) = ½x(1 + erf(x/√2))
    HEED_GELU_TANH = 9,     ///< ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    HEED_SILU = 10,         ///< x·σ(x)
    HEED_ABS = 11,
    HEED_ERF = 12,
    HEED_GELU_ERF_GRAD = 13,   ///< d/dx of HEED_GELU_ERF
    HEED_GELU_TANH_GRAD = 14,  ///< d/dx of HEED_GELU_TANH
    HEED_SILU_GRAD = 15,       ///< d/dx of HEED_SILU
    HEED_SIGN = 16,            ///< -1, 0 or 1 (0 for NaN)
    HEED_STEP = 17,            ///< 1 where x > 0, else 0 (relu's derivative)
    HEED_RECIPROCAL = 18,
    HEED_SQUARE = 19,
} heed_unary_op;

/// Reductions over a contiguous run.
typedef enum heed_reduce_op {
    HEED_REDUCE_SUM = 0,
    HEED_REDUCE_MAX = 1,
    HEED_REDUCE_MIN = 2,
} heed_reduce_op;

/// out[i] = a[i*sa] OP b[i*sb], i < n; sa, sb ∈ {0, 1}.
void heed_binary_f32(heed_binary_op op, const float *a, int64_t sa,
                     const float *b, int64_t sb, float *out, int64_t n);

/// out[i] = f(x[i]), i < n. `out` may equal `x`.
void heed_unary_f32(heed_unary_op op, const float *x, float *out, int64_t n);

/// Reduce x[0..<n]; sum uses several accumulators (pairwise-like accuracy).
/// The max/min of an empty run is -inf/+inf; NaN propagates.
float heed_reduce_f32(heed_reduce_op op, const float *x, int64_t n);

/// acc[i] = acc[i] OP x[i] for the reduce op (sum: +, max, min), i < n.
void heed_accumulate_f32(heed_reduce_op op, float *acc, const float *x, int64_t n);

/// Numerically stable softmax of each row of a [rows, cols] matrix.
/// A row whose entries are all -inf gives all zeros (never NaN).
void heed_softmax_rows_f32(const float *x, float *out, int64_t rows, int64_t cols);

/// Stable log-softmax of each row; an all -inf row gives all -inf.
void heed_log_softmax_rows_f32(const float *x, float *out, int64_t rows, int64_t cols);

/// Layer normalisation of each row of a [rows, cols] matrix (Ba et al., 2016),
/// in the order of HeedTensor's composed `layerNorm`:
///
///     μ = Σ x / cols;  σ² = Σ (x − μ)² / cols;  out = (x − μ) · rsqrt(σ² + ε) · weight + bias
///
/// `weight` and `bias` ([cols]) may be NULL (1 and 0). `out` may equal `x`.
void heed_layer_norm_rows_f32(const float *x, float *out, int64_t rows, int64_t cols, const float *weight,
                              const float *bias, float epsilon);

/// out[i] = scale * x[i] + shift (used by mean, dropout, normalisation).
void heed_affine_f32(const float *x, float scale, float shift, float *out, int64_t n);

/// Fills out[0..<n] with `value`.
void heed_fill_f32(float *out, float value, int64_t n);

/// Exact round-to-nearest-even conversions between f32 and the 16-bit storage types.
void heed_f32_to_f16(const float *x, uint16_t *out, int64_t n);
void heed_f16_to_f32(const uint16_t *x, float *out, int64_t n);
void heed_f32_to_bf16(const float *x, uint16_t *out, int64_t n);
void heed_bf16_to_f32(const uint16_t *x, float *out, int64_t n);

/// Which implementation the dispatcher chose: "avx2+fma" or "portable".
const char *heed_kernels_isa(void);

/// Forces the portable path (1) or restores automatic dispatch (0); for tests
/// and benchmarks that compare both.
void heed_kernels_force_portable(int force);

/// 1 when the CPU (and OS) can run the AVX2+FMA kernels, whatever
/// heed_kernels_force_portable chose.
int heed_kernels_cpu_has_avx2(void);

/// Whether AVX-512 kernels may run where the CPU has them (1, the default) or
/// not (0: the AVX2 ones run instead); for tests and benchmarks that compare.
/// Where AVX-512 runs (HEED_GELU_ERF in heed_unary_f32, heed_packed.h) it
/// returns the AVX2 kernels' bits, or the same sums as they do.
void heed_kernels_allow_avx512(int allow);

/// 1 when AVX-512 kernels run: the CPU has AVX-512 F, VL and DQ, the OS saves
/// the registers, they are allowed and the kernels are not forced portable.
int heed_kernels_avx512_active(void);

#ifdef __cplusplus
}
#endif

#endif
