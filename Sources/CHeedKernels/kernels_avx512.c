// AVX-512 kernels, for the operations where 16 lanes measured clearly faster
// than the AVX2 table's 8 (heed_unary_f32 sends them here when
// heed_kernels_avx512_active()). Each returns the AVX2 kernel's bits
// (avx512_math.h): dispatch changes the speed, never the result.
//
// GELU (erf): 0.90 against 1.54 ns per element on one Zen 4 core, L1-hot.
// The last 1–15 elements use masked loads and stores (fast on AVX-512,
// unlike VMASKMOVPS on AMD), through the same code.
#if defined(__x86_64__) || defined(__i386__)

#include "kernels_internal.h"
#include "avx512_math.h"

__attribute__((target("avx512f,avx512dq,avx2,fma"))) void heed_avx512_gelu_erf(const float *x, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(v, w_normal_cdf(v)));
    }
    if (i < n) {
        const __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(v, w_normal_cdf(v)));
    }
}

#endif
