// AVX2+FMA kernels: the table dispatch.c picks on x86 CPUs that have both.
//
// Every function carries __attribute__((target("avx2,fma"))), so the package
// builds with no -march flag and this code only runs after the CPU check.
//
// Loops take 8 floats at a time; the last 1–7 elements go through the same
// vector code with masked loads and stores (VMASKMOVPS never touches the
// masked-off memory), so an element's result never depends on its position —
// a scalar tail calling libm would make exp(x) differ between index 7 and 8.
//
// Semantics are those of kernels_portable.c, case by case:
// - bit-identical: + − × ÷, max/min (NaN → NaN), comparisons, neg, abs, relu,
//   sqrt, rsqrt (1/√x with two correctly rounded steps), reciprocal, square,
//   sign, step, affine (multiply then add, unfused, like the portable build),
//   pow (the same libm powf), accumulate, and the sum reduction (the same
//   eight lane accumulators and the same pairwise final order);
// - a few ulp apart: exp, log, tanh, sigmoid, silu, erf, the GELUs and their
//   derivatives, softmax and log-softmax (see avx2_math.h for each bound).
//   The two GELUs and their derivatives use forms that are equal in exact
//   arithmetic but do not cancel in the negative tail: x·Φ(x) with
//   Φ(x) = ½·erfc(−x/√2) and x·σ(2u) for ½x(1 + tanh u).
#if defined(__x86_64__) || defined(__i386__)

#include "kernels_internal.h"
#include "avx2_math.h"
#include <math.h>

#define HEED_AVX2 __attribute__((target("avx2,fma")))

/// Lanes 0 ..< count (1...7) set.
HEED_AVX2_INLINE __m256i tail_mask(int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// MARK: Unary

/// out[i] = EXPR(v) with v the 8 lanes x[i ..< i+8], masked in the tail.
#define HEED_MAP(EXPR)                                                                   \
    do {                                                                                 \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8) {                                                     \
            __m256 v = _mm256_loadu_ps(x + i);                                           \
            _mm256_storeu_ps(out + i, (EXPR));                                           \
        }                                                                                \
        if (i < n) {                                                                     \
            __m256i mask = tail_mask(n - i);                                             \
            __m256 v = _mm256_maskload_ps(x + i, mask);                                  \
            _mm256_maskstore_ps(out + i, mask, (EXPR));                                  \
        }                                                                                \
    } while (0)

HEED_AVX2_INLINE __m256 one_where(__m256 mask) { return _mm256_and_ps(mask, v_set(1.0f)); }

/// ½x(1 + tanh u) with u = √(2/π)(x + 0.044715x³), computed as x·σ(2u)
/// (1 + tanh u = 2σ(2u)), which keeps relative accuracy for x ≪ 0.
HEED_AVX2_INLINE __m256 gelu_tanh(__m256 v) {
    __m256 v2 = _mm256_mul_ps(v, v);
    __m256 u2 = _mm256_mul_ps(_mm256_mul_ps(v, v_set(2.0f * 0x1.988454p-1f)),
                              _mm256_fmadd_ps(v2, v_set(0.044715f), v_set(1.0f)));
    return _mm256_mul_ps(v, v_sigmoid(u2));
}

/// d/dx of gelu_tanh: ½(1 + t) + ½x(1 − t²)·u′ with t = tanh u, written with
/// s = σ(2u) and s̄ = σ(−2u): ½(1 + t) = s and ½(1 − t²) = 2·s·s̄.
/// |x| is clamped at 20, where the derivative is exactly 1 (x > 0) or 0 in
/// float, so that x³ never overflows into inf·0 (as in the portable kernel).
HEED_AVX2_INLINE __m256 gelu_tanh_grad(__m256 x) {
    const __m256 c = v_set(0x1.988454p-1f);                     // √(2/π)
    __m256 v = _mm256_max_ps(v_set(-20.0f), _mm256_min_ps(v_set(20.0f), x));   // NaN passes
    __m256 v2 = _mm256_mul_ps(v, v);
    __m256 u2 = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_add_ps(c, c)), _mm256_fmadd_ps(v2, v_set(0.044715f), v_set(1.0f)));
    __m256 du = _mm256_mul_ps(c, _mm256_fmadd_ps(v2, v_set(3.0f * 0.044715f), v_set(1.0f)));
    __m256 s, sc;
    v_sigmoid_pair(u2, &s, &sc);
    __m256 term = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(v, v), s), _mm256_mul_ps(sc, du));
    return _mm256_add_ps(s, term);
}

/// d/dx of x·Φ(x) = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
HEED_AVX2_INLINE __m256 gelu_erf_grad(__m256 v) {
    __m256 gaussian;
    __m256 cdf = v_normal_cdf(v, &gaussian);
    return _mm256_fmadd_ps(_mm256_mul_ps(v, gaussian), v_set(0x1.988454p-2f), cdf);   // 1/√(2π)
}

/// d/dx of x·σ(x) = σ(x)·(1 + x·(1 − σ(x))), with 1 − σ(x) = σ(−x) exactly.
HEED_AVX2_INLINE __m256 silu_grad(__m256 v) {
    __m256 s, sc;
    v_sigmoid_pair(v, &s, &sc);
    return _mm256_fmadd_ps(_mm256_mul_ps(s, v), sc, s);
}

HEED_AVX2 static void avx2_unary(heed_unary_op op, const float *x, float *out, int64_t n) {
    const __m256 zero = _mm256_setzero_ps(), one = v_set(1.0f);
    switch (op) {
    case HEED_NEG: HEED_MAP(_mm256_xor_ps(v, v_sign_bit())); return;
    case HEED_EXP: HEED_MAP(v_exp(v)); return;
    case HEED_LOG: HEED_MAP(v_log(v)); return;
    case HEED_SQRT: HEED_MAP(_mm256_sqrt_ps(v)); return;
    case HEED_RSQRT: HEED_MAP(_mm256_div_ps(one, _mm256_sqrt_ps(v))); return;
    case HEED_TANH: HEED_MAP(v_tanh(v)); return;
    case HEED_SIGMOID: HEED_MAP(v_sigmoid(v)); return;
    // x > 0 ? x : +0 (NaN → 0), as in the portable kernel.
    case HEED_RELU: HEED_MAP(_mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ))); return;
    case HEED_GELU_ERF: HEED_MAP(_mm256_mul_ps(v, v_normal_cdf(v, NULL))); return;
    case HEED_GELU_TANH: HEED_MAP(gelu_tanh(v)); return;
    case HEED_SILU: HEED_MAP(_mm256_mul_ps(v, v_sigmoid(v))); return;
    case HEED_ABS: HEED_MAP(v_abs(v)); return;
    case HEED_ERF: HEED_MAP(v_erf(v)); return;
    case HEED_GELU_ERF_GRAD: HEED_MAP(gelu_erf_grad(v)); return;
    case HEED_GELU_TANH_GRAD: HEED_MAP(gelu_tanh_grad(v)); return;
    case HEED_SILU_GRAD: HEED_MAP(silu_grad(v)); return;
    case HEED_SIGN:
        HEED_MAP(_mm256_or_ps(one_where(_mm256_cmp_ps(v, zero, _CMP_GT_OQ)),
                              _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), v_set(-1.0f))));
        return;
    case HEED_STEP: HEED_MAP(one_where(_mm256_cmp_ps(v, zero, _CMP_GT_OQ))); return;
    case HEED_RECIPROCAL: HEED_MAP(_mm256_div_ps(one, v)); return;
    case HEED_SQUARE: HEED_MAP(_mm256_mul_ps(v, v)); return;
    }
    // An op this table does not know: fall back to the reference.
    heed_portable_kernels.unary(op, x, out, n);
}

// MARK: Binary

/// out[i] = EXPR(va, vb) over the four stride cases (1/1, 1/0, 0/1, 0/0).
#define HEED_ZIP(EXPR)                                                                   \
    do {                                                                                 \
        int64_t i = 0;                                                                   \
        if (sa == 1 && sb == 1) {                                                        \
            for (; i + 8 <= n; i += 8) {                                                 \
                __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);         \
                _mm256_storeu_ps(out + i, (EXPR));                                       \
            }                                                                            \
            if (i < n) {                                                                 \
                __m256i mask = tail_mask(n - i);                                         \
                __m256 va = _mm256_maskload_ps(a + i, mask), vb = _mm256_maskload_ps(b + i, mask); \
                _mm256_maskstore_ps(out + i, mask, (EXPR));                              \
            }                                                                            \
        } else if (sa == 1) {                                                            \
            const __m256 vb = _mm256_set1_ps(b[0]);                                      \
            for (; i + 8 <= n; i += 8) {                                                 \
                __m256 va = _mm256_loadu_ps(a + i);                                      \
                _mm256_storeu_ps(out + i, (EXPR));                                       \
            }                                                                            \
            if (i < n) {                                                                 \
                __m256i mask = tail_mask(n - i);                                         \
                __m256 va = _mm256_maskload_ps(a + i, mask);                             \
                _mm256_maskstore_ps(out + i, mask, (EXPR));                              \
            }                                                                            \
        } else if (sb == 1) {                                                            \
            const __m256 va = _mm256_set1_ps(a[0]);                                      \
            for (; i + 8 <= n; i += 8) {                                                 \
                __m256 vb = _mm256_loadu_ps(b + i);                                      \
                _mm256_storeu_ps(out + i, (EXPR));                                       \
            }                                                                            \
            if (i < n) {                                                                 \
                __m256i mask = tail_mask(n - i);                                         \
                __m256 vb = _mm256_maskload_ps(b + i, mask);                             \
                _mm256_maskstore_ps(out + i, mask, (EXPR));                              \
            }                                                                            \
        } else if (n > 0) {                                                              \
            const __m256 va = _mm256_set1_ps(a[0]), vb = _mm256_set1_ps(b[0]);           \
            const __m256 value = (EXPR);                                                 \
            for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, value);                 \
            if (i < n) _mm256_maskstore_ps(out + i, tail_mask(n - i), value);            \
        }                                                                                \
    } while (0)

/// a > b ? a : b, or NaN when either is NaN — MAXPS returns its second operand
/// on ties and NaN, exactly the portable `a > b ? a : b`; NaN is patched in.
HEED_AVX2_INLINE __m256 v_maximum(__m256 a, __m256 b) {
    return v_select(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), v_set(__builtin_nanf("")), _mm256_max_ps(a, b));
}
/// a < b ? a : b, or NaN when either is NaN.
HEED_AVX2_INLINE __m256 v_minimum(__m256 a, __m256 b) {
    return v_select(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), v_set(__builtin_nanf("")), _mm256_min_ps(a, b));
}

HEED_AVX2 static void avx2_binary(heed_binary_op op, const float *a, int64_t sa, const float *b, int64_t sb,
                                  float *out, int64_t n) {
    if (n <= 0) return;   // a stride-0 operand is read before the loop
    switch (op) {
    case HEED_ADD: HEED_ZIP(_mm256_add_ps(va, vb)); return;
    case HEED_SUB: HEED_ZIP(_mm256_sub_ps(va, vb)); return;
    case HEED_MUL: HEED_ZIP(_mm256_mul_ps(va, vb)); return;
    case HEED_DIV: HEED_ZIP(_mm256_div_ps(va, vb)); return;
    case HEED_MAXIMUM: HEED_ZIP(v_maximum(va, vb)); return;
    case HEED_MINIMUM: HEED_ZIP(v_minimum(va, vb)); return;
    // Ordered, quiet predicates: NaN compares false and gives 0.
    case HEED_EQUAL: HEED_ZIP(one_where(_mm256_cmp_ps(va, vb, _CMP_EQ_OQ))); return;
    case HEED_GREATER: HEED_ZIP(one_where(_mm256_cmp_ps(va, vb, _CMP_GT_OQ))); return;
    case HEED_LESS: HEED_ZIP(one_where(_mm256_cmp_ps(va, vb, _CMP_LT_OQ))); return;
    case HEED_POW:
        // No vector form: pow needs a log and an exp in extra precision plus
        // the integer-exponent special cases; a scalar loop over libm's powf
        // (the portable kernel's own function, so results are identical).
        for (int64_t i = 0; i < n; i++) out[i] = powf(a[i * sa], b[i * sb]);
        return;
    }
    heed_portable_kernels.binary(op, a, sa, b, sb, out, n);
}

// MARK: Reductions

/// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): the portable kernel's order.
HEED_AVX2_INLINE float hsum_pairwise(__m256 v) {
    __m128 pairs = _mm_hadd_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));   // l0+l1, l2+l3, l4+l5, l6+l7
    __m128 quads = _mm_hadd_ps(pairs, pairs);                                             // (..)+(..), (..)+(..)
    return _mm_cvtss_f32(quads) + _mm_cvtss_f32(_mm_movehdup_ps(quads));
}

/// Σ x with eight lane accumulators: lane k adds x[8j + k] in order, tail
/// elements included, then the lanes are combined pairwise — step for step
/// what portable_reduce does, so the sums agree bit for bit across CPUs.
HEED_AVX2_INLINE float sum_run(const float *x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    if (i < n) acc = _mm256_add_ps(acc, _mm256_maskload_ps(x + i, tail_mask(n - i)));   // +0 in unused lanes
    return hsum_pairwise(acc);
}

/// Max (or min) of x[0 ..< n]; NaN if any element is NaN; −inf (+inf) if empty.
HEED_AVX2_INLINE float extreme_run(const float *x, int64_t n, int wantMax) {
    const __m256 identity = v_set(wantMax ? -__builtin_inff() : __builtin_inff());
    __m256 best = identity, nan = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        best = wantMax ? _mm256_max_ps(v, best) : _mm256_min_ps(v, best);
    }
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        __m256 v = v_select(_mm256_castsi256_ps(mask), _mm256_maskload_ps(x + i, mask), identity);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        best = wantMax ? _mm256_max_ps(v, best) : _mm256_min_ps(v, best);
    }
    if (_mm256_movemask_ps(nan)) return __builtin_nanf("");
    __m128 m = wantMax ? _mm_max_ps(_mm256_castps256_ps128(best), _mm256_extractf128_ps(best, 1))
                       : _mm_min_ps(_mm256_castps256_ps128(best), _mm256_extractf128_ps(best, 1));
    m = wantMax ? _mm_max_ps(m, _mm_movehl_ps(m, m)) : _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = wantMax ? _mm_max_ps(m, _mm_movehdup_ps(m)) : _mm_min_ps(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

HEED_AVX2 static float avx2_reduce(heed_reduce_op op, const float *x, int64_t n) {
    switch (op) {
    case HEED_REDUCE_SUM: return sum_run(x, n);
    case HEED_REDUCE_MAX: return extreme_run(x, n, 1);
    case HEED_REDUCE_MIN: return extreme_run(x, n, 0);
    }
    return heed_portable_kernels.reduce(op, x, n);
}

HEED_AVX2 static void avx2_accumulate(heed_reduce_op op, float *acc, const float *x, int64_t n) {
    // acc = acc OP x is the binary kernel with both operands contiguous.
    const float *a = acc, *b = x;
    float *out = acc;
    const int64_t sa = 1, sb = 1;
    switch (op) {
    case HEED_REDUCE_SUM: HEED_ZIP(_mm256_add_ps(va, vb)); return;
    case HEED_REDUCE_MAX: HEED_ZIP(v_maximum(va, vb)); return;
    case HEED_REDUCE_MIN: HEED_ZIP(v_minimum(va, vb)); return;
    }
    heed_portable_kernels.accumulate(op, acc, x, n);
}

// MARK: Softmax

/// y[c] = e^(x[c] − m) for one row; returns Σ y (lane accumulators, pairwise).
/// With `store` false only the sum is formed (log-softmax).
HEED_AVX2_INLINE float exp_shifted_row(const float *x, float *y, int64_t cols, float m, int store) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 e = v_exp(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm));
        if (store) _mm256_storeu_ps(y + c, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (c < cols) {
        __m256i mask = tail_mask(cols - c);
        __m256 e = v_exp(_mm256_sub_ps(_mm256_maskload_ps(x + c, mask), vm));
        if (store) _mm256_maskstore_ps(y + c, mask, e);
        sum = _mm256_add_ps(sum, _mm256_and_ps(e, _mm256_castsi256_ps(mask)));
    }
    return hsum_pairwise(sum);
}

/// softmax(x)_c = e^(x_c − m) / Σ_c′ e^(x_c′ − m), m = max_c x_c (no overflow;
/// the largest term is 1, so the sum is in [1, cols]). An all −inf row (m = −inf)
/// gives zeros; a row holding NaN gives NaN, as in the portable kernel.
HEED_AVX2 static void avx2_softmax_rows(const float *x, float *out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = extreme_run(xr, cols, 1);
        if (m == -__builtin_inff()) {
            for (int64_t c = 0; c < cols; c++) yr[c] = 0.0f;
            continue;
        }
        const __m256 inv = _mm256_set1_ps(1.0f / exp_shifted_row(xr, yr, cols, m, 1));
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(yr + c, _mm256_mul_ps(_mm256_loadu_ps(yr + c), inv));
        if (c < cols) {
            __m256i mask = tail_mask(cols - c);
            _mm256_maskstore_ps(yr + c, mask, _mm256_mul_ps(_mm256_maskload_ps(yr + c, mask), inv));
        }
    }
}

/// log softmax(x)_c = x_c − (m + ln Σ e^(x_c′ − m)); an all −inf row gives −inf.
/// One scalar logf per row (libm), the rest vectorised.
HEED_AVX2 static void avx2_log_softmax_rows(const float *x, float *out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = extreme_run(xr, cols, 1);
        if (m == -__builtin_inff()) {
            for (int64_t c = 0; c < cols; c++) yr[c] = -__builtin_inff();
            continue;
        }
        const __m256 lse = _mm256_set1_ps(m + logf(exp_shifted_row(xr, yr, cols, m, 0)));
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(yr + c, _mm256_sub_ps(_mm256_loadu_ps(xr + c), lse));
        if (c < cols) {
            __m256i mask = tail_mask(cols - c);
            _mm256_maskstore_ps(yr + c, mask, _mm256_sub_ps(_mm256_maskload_ps(xr + c, mask), lse));
        }
    }
}

// MARK: Affine

/// out = scale·x + shift, rounded after the multiply and after the add (no
/// FMA), exactly like the portable kernel built for baseline x86-64.
HEED_AVX2 static void avx2_affine(const float *x, float scale, float shift, float *out, int64_t n) {
    const __m256 s = _mm256_set1_ps(scale), t = _mm256_set1_ps(shift);
    HEED_MAP(_mm256_add_ps(_mm256_mul_ps(v, s), t));
}

// MARK: Layer normalisation

/// As portable_layer_norm_rows: the same lane-wise sums (bit-identical mean
/// and variance), then (x − μ)·inverse·weight + bias with the same roundings
/// (multiplies and adds unfused).
HEED_AVX2 static void avx2_layer_norm_rows(const float *x, float *out, int64_t rows, int64_t cols, const float *weight,
                                           const float *bias, float epsilon) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        const float mean = sum_run(xr, cols) / (float)cols;
        const __m256 vmean = _mm256_set1_ps(mean);
        __m256 acc = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + c), vmean);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
        }
        if (c < cols) {
            const __m256i mask = tail_mask(cols - c);
            const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, mask), vmean), _mm256_castsi256_ps(mask));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
        }
        const float inverse = 1.0f / sqrtf(hsum_pairwise(acc) / (float)cols + epsilon);
        const __m256 vinverse = _mm256_set1_ps(inverse);
        for (c = 0; c + 8 <= cols; c += 8) {
            __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vmean), vinverse);
            if (weight) y = _mm256_mul_ps(y, _mm256_loadu_ps(weight + c));
            if (bias) y = _mm256_add_ps(y, _mm256_loadu_ps(bias + c));
            _mm256_storeu_ps(yr + c, y);
        }
        if (c < cols) {
            const __m256i mask = tail_mask(cols - c);
            __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, mask), vmean), vinverse);
            if (weight) y = _mm256_mul_ps(y, _mm256_maskload_ps(weight + c, mask));
            if (bias) y = _mm256_add_ps(y, _mm256_maskload_ps(bias + c, mask));
            _mm256_maskstore_ps(yr + c, mask, y);
        }
    }
}

const heed_kernel_table heed_avx2_kernels = {
    avx2_binary, avx2_unary, avx2_reduce, avx2_accumulate,
    avx2_softmax_rows, avx2_log_softmax_rows, avx2_affine, avx2_layer_norm_rows, "avx2+fma",
};

#endif
