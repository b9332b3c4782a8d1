// Counter-based dropout masks for attention weights: Philox4x32-10 (J. K.
// Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel Random Numbers: As
// Easy as 1, 2, 3", SC'11), the same generator as HeedTensor's `Philox.block`,
// so an element's keep decision is a pure function of (seed, b, h, i, j) and
// every engine, tile and thread order draws the same mask.
#include "heed_flash.h"

void heed_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
        const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;                          // the Weyl key schedule
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void heed_dropout_keep_tile(uint64_t seed, float probability, int64_t batch, int64_t head,
                            int64_t row0, int64_t col0, int64_t rows, int64_t cols, float *out, int64_t stride) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const float kept = probability < 1.0f ? 1.0f / (1.0f - probability) : 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        float *line = out + r * stride;
        uint32_t words[4];
        int64_t block = -1;
        for (int64_t c = 0; c < cols; c++) {
            const int64_t j = col0 + c;
            if (j >> 2 != block) {
                block = j >> 2;
                const uint32_t counter[4] = {(uint32_t)block, (uint32_t)(row0 + r), (uint32_t)head, (uint32_t)batch};
                heed_philox4x32_10(counter, key, words);
            }
            // Uniform in [0, 1) from the top 24 bits, as RandomGenerator.nextUniform.
            const float u = (float)(words[j & 3] >> 8) * 0x1p-24f;
            line[c] = u < probability ? 0.0f : kept;
        }
    }
}
