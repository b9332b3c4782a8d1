// Run-time dispatch: pick the best kernel table for this CPU once.
#include "kernels_internal.h"

static int force_portable = 0;

static const heed_kernel_table *active(void) {
    return &heed_portable_kernels;
}

void heed_kernels_force_portable(int force) { force_portable = force; }
const char *heed_kernels_isa(void) { return active()->name; }

void heed_binary_f32(heed_binary_op op, const float *a, int64_t sa, const float *b, int64_t sb, float *out, int64_t n) {
    active()->binary(op, a, sa, b, sb, out, n);
}
void heed_unary_f32(heed_unary_op op, const float *x, float *out, int64_t n) { active()->unary(op, x, out, n); }
float heed_reduce_f32(heed_reduce_op op, const float *x, int64_t n) { return active()->reduce(op, x, n); }
void heed_accumulate_f32(heed_reduce_op op, float *acc, const float *x, int64_t n) { active()->accumulate(op, acc, x, n); }
void heed_softmax_rows_f32(const float *x, float *out, int64_t rows, int64_t cols) { active()->softmax_rows(x, out, rows, cols); }
void heed_log_softmax_rows_f32(const float *x, float *out, int64_t rows, int64_t cols) { active()->log_softmax_rows(x, out, rows, cols); }
void heed_affine_f32(const float *x, float scale, float shift, float *out, int64_t n) { active()->affine(x, scale, shift, out, n); }
void heed_fill_f32(float *out, float value, int64_t n) { for (int64_t i = 0; i < n; i++) out[i] = value; }
