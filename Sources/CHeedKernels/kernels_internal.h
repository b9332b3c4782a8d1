// Internal: the per-ISA implementations that dispatch.c chooses between.
#ifndef HEED_KERNELS_INTERNAL_H
#define HEED_KERNELS_INTERNAL_H

#include "heed_kernels.h"

typedef struct heed_kernel_table {
    void (*binary)(heed_binary_op, const float *, int64_t, const float *, int64_t, float *, int64_t);
    void (*unary)(heed_unary_op, const float *, float *, int64_t);
    float (*reduce)(heed_reduce_op, const float *, int64_t);
    void (*accumulate)(heed_reduce_op, float *, const float *, int64_t);
    void (*softmax_rows)(const float *, float *, int64_t, int64_t);
    void (*log_softmax_rows)(const float *, float *, int64_t, int64_t);
    void (*affine)(const float *, float, float, float *, int64_t);
    void (*layer_norm_rows)(const float *, float *, int64_t, int64_t, const float *, const float *, float);
    const char *name;
} heed_kernel_table;

extern const heed_kernel_table heed_portable_kernels;
#if defined(__x86_64__) || defined(__i386__)
/// AVX2+FMA table (kernels_avx2.c); only called after the CPU check.
extern const heed_kernel_table heed_avx2_kernels;
#endif

/// 1 when the AVX2+FMA table is in use (not forced portable), else 0; for the
/// other kernel families (flash attention) that dispatch the same way.
int heed_kernels_avx2_active(void);

#if defined(__x86_64__) || defined(__i386__)
/// HEED_GELU_ERF on 16 lanes (kernels_avx512.c); the AVX2 kernel's bits. Only
/// called when heed_kernels_avx512_active().
void heed_avx512_gelu_erf(const float *x, float *out, int64_t n);
#endif

#endif
