// The allowed region of a partially masked tile, block by block, so the tile
// GEMMs can skip the parts a pattern masks (FlashAttention-2 §3.1.1 skips
// whole blocks above a causal diagonal; this goes one level finer, to the
// micro-kernel's blocks of 6 rows or keys inside a tile that straddles it).
#include "flash_internal.h"

void flash_tile_extents(const float *mask, int64_t rows, int64_t keys, int64_t stride, flash_extents *out) {
    const int64_t row_blocks = (rows + 5) / 6, key_blocks = (keys + 5) / 6;
    for (int64_t b = 0; b < row_blocks; b++) { out->row_first[b] = keys; out->row_end[b] = 0; }
    for (int64_t b = 0; b < key_blocks; b++) { out->key_first[b] = rows; out->key_end[b] = 0; }
    for (int64_t r = 0; r < rows; r++) {
        const float *line = mask + r * stride;
        int64_t first = 0, end = keys;
        while (first < keys && line[first] == 0.0f) first++;          // first allowed key
        if (first == keys) continue;                                   // nothing allowed in this row
        while (line[end - 1] == 0.0f) end--;                           // one past the last allowed key
        const int64_t b = r / 6;
        if (first < out->row_first[b]) out->row_first[b] = first;
        if (end > out->row_end[b]) out->row_end[b] = end;
        for (int64_t k = first / 6; k <= (end - 1) / 6; k++) {         // key blocks this row reaches
            if (r < out->key_first[k]) out->key_first[k] = r;
            if (r + 1 > out->key_end[k]) out->key_end[k] = r + 1;
        }
    }
    for (int64_t b = 0; b < row_blocks; b++) {
        if (out->row_first[b] >= out->row_end[b]) out->row_first[b] = out->row_end[b] = 0;
    }
    for (int64_t b = 0; b < key_blocks; b++) {
        if (out->key_first[b] >= out->key_end[b]) out->key_first[b] = out->key_end[b] = 0;
    }
}
