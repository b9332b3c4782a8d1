// Attention of one new query over a head's cached keys and values: the
// decoding step of a language model (one token at a time), where a BLAS
// call per head costs more in dispatch than the product itself.
//
// Dispatches at run time to AVX2+FMA or portable C, like heed_kernels.h.
#ifndef HEED_DECODE_H
#define HEED_DECODE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out = softmax(scale · K q) V for one query q [D] over `length` cached rows:
///
///     score_t = scale · Σ_j q_j K[t, j],   p = softmax(score),   out_j = Σ_t p_t V[t, j]
///
/// - keys, values: row t at keys + t·stride (D contiguous floats; stride ≥ D)
/// - scores: scratch of `length` floats (the weights p on return)
/// - length ≥ 1
void heed_attention_decode_f32(const float *query, const float *keys, const float *values, int64_t length,
                               int64_t depth, int64_t stride, float scale, float *scores, float *out);

#ifdef __cplusplus
}
#endif

#endif
