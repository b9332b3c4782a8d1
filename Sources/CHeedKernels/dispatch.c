// Run-time dispatch: pick the best kernel table for this CPU once.
//
// The choice is cached in one atomic pointer: the first call detects the CPU
// (cpuid through __builtin_cpu_supports, which also checks that the OS saves
// the YMM registers), every later call is a single load. The tables are
// immutable constants, so a pointer load with acquire ordering (a plain MOV on
// x86) is all a kernel call pays.
#include "kernels_internal.h"
#include <stdatomic.h>

/// The table in use; NULL until the first call (or after force_portable(0)).
static _Atomic(const heed_kernel_table *) active_table = NULL;

/// The best table this CPU supports.
static const heed_kernel_table *detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &heed_avx2_kernels;
#endif
    return &heed_portable_kernels;
}

static inline const heed_kernel_table *active(void) {
    const heed_kernel_table *table = atomic_load_explicit(&active_table, memory_order_acquire);
    if (__builtin_expect(table != NULL, 1)) return table;
    const heed_kernel_table *expected = NULL;
    table = detect();
    // A concurrent force_portable() wins over a first-use detection.
    if (!atomic_compare_exchange_strong_explicit(&active_table, &expected, table,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        table = expected;
    }
    return table;
}

void heed_kernels_force_portable(int force) {
    atomic_store_explicit(&active_table, force ? &heed_portable_kernels : detect(), memory_order_release);
}
int heed_kernels_cpu_has_avx2(void) { return detect() != &heed_portable_kernels; }
const char *heed_kernels_isa(void) { return active()->name; }
int heed_kernels_avx2_active(void) { return active() != &heed_portable_kernels; }

/// AVX-512 (F, VL and DQ) on this CPU, with the OS saving its registers (the
/// builtin checks XCR0 as well as cpuid).
static int cpu_has_avx512(void) {
#if defined(__x86_64__) || defined(__i386__)
    static atomic_int known = -1;                    // -1 until the first check
    int has = atomic_load_explicit(&known, memory_order_relaxed);
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
              __builtin_cpu_supports("avx512dq");
        atomic_store_explicit(&known, has, memory_order_relaxed);
    }
    return has;
#else
    return 0;
#endif
}

static atomic_int avx512_allowed = 1;

void heed_kernels_allow_avx512(int allow) { atomic_store_explicit(&avx512_allowed, allow != 0, memory_order_release); }
int heed_kernels_avx512_active(void) {
    return heed_kernels_avx2_active() && atomic_load_explicit(&avx512_allowed, memory_order_acquire) && cpu_has_avx512();
}

void heed_binary_f32(heed_binary_op op, const float *a, int64_t sa, const float *b, int64_t sb, float *out, int64_t n) {
    active()->binary(op, a, sa, b, sb, out, n);
}
void heed_unary_f32(heed_unary_op op, const float *x, float *out, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (op == HEED_GELU_ERF && heed_kernels_avx512_active()) { heed_avx512_gelu_erf(x, out, n); return; }
#endif
    active()->unary(op, x, out, n);
}
float heed_reduce_f32(heed_reduce_op op, const float *x, int64_t n) { return active()->reduce(op, x, n); }
void heed_accumulate_f32(heed_reduce_op op, float *acc, const float *x, int64_t n) { active()->accumulate(op, acc, x, n); }
void heed_softmax_rows_f32(const float *x, float *out, int64_t rows, int64_t cols) { active()->softmax_rows(x, out, rows, cols); }
void heed_log_softmax_rows_f32(const float *x, float *out, int64_t rows, int64_t cols) { active()->log_softmax_rows(x, out, rows, cols); }
void heed_affine_f32(const float *x, float scale, float shift, float *out, int64_t n) { active()->affine(x, scale, shift, out, n); }
void heed_layer_norm_rows_f32(const float *x, float *out, int64_t rows, int64_t cols, const float *weight,
                              const float *bias, float epsilon) {
    active()->layer_norm_rows(x, out, rows, cols, weight, bias, epsilon);
}
void heed_fill_f32(float *out, float value, int64_t n) { for (int64_t i = 0; i < n; i++) out[i] = value; }
