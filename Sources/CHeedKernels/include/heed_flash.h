// The fused tiled ("flash") attention kernels: parameters and entry points.
//
// FlashAttention-2 (T. Dao, "FlashAttention-2: Faster Attention with Better
// Parallelism and Work Partitioning", 2023, arXiv:2307.08691): Algorithm 1
// (forward, online softmax over key tiles, saving the per-row log-sum-exp)
// and Algorithm 2 (backward, recomputing each tile from the log-sum-exp).
//
// The Swift driver (HeedAttention/Flash/) owns the loops over batch, head and
// tiles, the thread split and the Pattern/bias tiles; one call here does the
// work of one (query tile, key tile) pair for one head. Every call is
// thread-safe and writes only the buffers its arguments name.
//
// Shapes use the legend of the Swift side: D (query/key depth), Dv (value
// depth); "rows" are the queries of the tile, "keys" its keys. Every matrix
// is row-major with the stated row stride (in floats).
#ifndef HEED_FLASH_H
#define HEED_FLASH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Tile sizes, in one place (measured: BENCHMARKS.md, "Flash attention").
enum {
    /// Bq: queries per tile (a work item of the forward).
    HEED_FLASH_QUERY_TILE = 96,
    /// Bk: keys per tile.
    HEED_FLASH_KEY_TILE = 96,
    /// The most keys of one forward step over key tiles that the pattern
    /// leaves whole, without bias or dropout: such runs of tiles are taken
    /// in steps of up to this many keys, which spread each step's fixed work
    /// (loading and storing O in P V, the row checks and sums) over more
    /// keys. Measured on one core (Zen 4, D = 64): the forward 105.5 → 106.5
    /// GFLOP/s at L = 1024, 106.4 → 108.1 at 4096 (BENCHMARKS.md).
    HEED_FLASH_KEY_RUN = 512,
    /// The same for the backward: query tiles that the pattern leaves whole
    /// against a key tile, without bias or dropout, go in steps of up to this
    /// many rows (dK and dV are loaded and stored once per step). One core,
    /// L = 2048, rows per step 96 / 288 / 384 / 512: AVX-512 107.8 / 109.0 /
    /// 109.0 / 109.2 GFLOP/s, AVX2 104.7 / 105.8 / 105.6 / 105.0 (BENCHMARKS.md).
    HEED_FLASH_QUERY_RUN = 384,
    /// Keys per packed panel: the width of the register-blocked micro-kernel.
    HEED_FLASH_PANEL = 16,
};

/// Packs the transpose of a [rows, columns] matrix (row stride `stride`) into
/// ⌈rows/16⌉ panels of [columns][16]: panels[p·columns·16 + c·16 + r] =
/// source[(16p + r)·stride + c], zero where 16p + r ≥ rows. Used for Kᵀ (and
/// Vᵀ in the backward), so the micro-kernel reads 16 keys with two loads.
void heed_flash_pack_panels(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels);

/// Floats that heed_flash_pack_panels writes for `rows` × `columns`.
int64_t heed_flash_panels_count(int64_t rows, int64_t columns);

/// ⌈columns/16⌉ slabs of [rows][16]: slabs[s·rows·16 + r·16 + c] =
/// source[r·stride + 16s + c], zero where 16s + c ≥ columns. Used for V in
/// the forward (P V reads 16 value columns of consecutive keys from one
/// contiguous slab instead of rows `stride` apart: ≈ 3 % faster measured).
/// Writes heed_flash_panels_count(columns, rows) floats.
void heed_flash_pack_slabs(const float *source, int64_t rows, int64_t columns, int64_t stride, float *slabs);

/// Whether the forward's P V reads V faster from heed_flash_pack_slabs
/// output than in place (row-major) on this CPU, for value depth Dv: yes for
/// the AVX2 6 × 16 kernel (it walks a row-major V one 16-column slice at a
/// time), no where the AVX-512 kernel takes whole 64-column rows (Dv a
/// multiple of 64), which reads V in place as fast and saves the packing.
/// Either layout gives the same result on every kernel.
int heed_flash_value_slabs_help(int64_t value_depth);

/// One forward step: a query tile against one key tile (Algorithm 1, lines 8–10).
///
///     S = scale·Q Kᵀ;  S = c·tanh(S/c) if c > 0;  S += bias;  S = −inf where mask = 0
///     m' = max(m, rowmax S);  P = exp(S − m');  ℓ = e^(m − m')·ℓ + rowsum P
///     O = e^(m − m')·O + (P ∘ keep) V;  m = m'
///
/// A row whose scores are all −inf so far keeps m = −inf, ℓ = 0, O untouched.
typedef struct heed_flash_forward_args {
    const float *query;         ///< [rows, query_stride]: the tile's first query
    int64_t query_stride;
    const float *key_panels;    ///< this key tile's Kᵀ panels (heed_flash_pack_panels of [keys, D])
    const float *value;         ///< the tile's first value row: V(k, c) = value[(c/16)·value_panel_stride +
    int64_t value_stride;       ///< k·value_stride + c mod 16] — row-major V (value_panel_stride 16), or
    int64_t value_panel_stride; ///< heed_flash_pack_slabs output (value_stride 16, value_panel_stride rows·16)
    int64_t rows;               ///< 1 ... HEED_FLASH_QUERY_TILE
    int64_t keys;               ///< 1 ... HEED_FLASH_KEY_TILE; up to HEED_FLASH_KEY_RUN without bias, mask and keep
    int64_t depth;              ///< D
    int64_t value_depth;        ///< Dv
    float scale;                ///< > 0 (1/√D over the temperature)
    float softcap;              ///< c; 0 = none
    const float *bias;          ///< [rows, tile_stride] added after the softcap, or NULL
    const float *mask;          ///< [rows, tile_stride] 1 = attend, 0 = masked, or NULL
    const float *keep;          ///< [rows, tile_stride] dropout multipliers (0 or 1/(1−p)), or NULL
    int64_t tile_stride;        ///< row stride of bias, mask, keep and scores (≥ keys)
    float *scores;              ///< scratch [rows, tile_stride]
    float *row_max;             ///< [rows] m, starts at −inf
    float *row_sum;             ///< [rows] ℓ, starts at 0
    float *row_scale;           ///< scratch [rows]
    float *output;              ///< [rows, output_stride] O accumulator: starts at 0, or unwritten with output_fresh
    int64_t output_stride;
    int32_t output_fresh;       ///< 1: output holds nothing yet — the step stores O instead of adding to it (no
                                ///< zeroing first, no reading it back); the caller sets 0 after the first step
                                ///< it runs. 0: output holds the sum so far
    float *scaled_query;        ///< scratch [rows, depth] that heed_flash_forward_begin fills, or NULL (then
                                ///< every step takes the two-pass path)
} heed_flash_forward_args;

/// Once per query tile, after query, rows, depth and scale are set and before
/// its first step: fills scaled_query (when non-NULL) with Q·scale·log₂e, the
/// operand of the one-pass step that later key tiles take.
void heed_flash_forward_begin(const heed_flash_forward_args *args);

void heed_flash_forward_step(const heed_flash_forward_args *args);

/// The exact normalised weights of one tile from the forward's log-sum-exp,
/// without dropout: out[r·out_stride + c] = exp(S̃ − LSE_r), S̃ transformed as
/// in heed_flash_forward_step (uses query, key_panels, rows, keys, depth,
/// scale, softcap, bias, mask, tile_stride and the scores scratch of `args`).
/// A row with LSE = −inf gets zeros.
void heed_flash_weights_step(const heed_flash_forward_args *args, const float *log_sum_exp, float *out,
                             int64_t out_stride);

/// The end of a query tile (Algorithm 1, lines 12–13): O /= ℓ and
/// LSE = m + log ℓ; a row with nothing allowed gets O = 0 and LSE = −inf.
void heed_flash_forward_finish(int64_t rows, int64_t value_depth, const float *row_max, const float *row_sum,
                               float *output, int64_t output_stride, float *log_sum_exp);

/// One backward step: a query tile against one key tile (Algorithm 2, lines 11–20).
///
///     P  = exp(S − LSE)              (S recomputed as in the forward; P = 0 where LSE = −inf)
///     dV += (P ∘ keep)ᵀ dO
///     dP = (dO Vᵀ) ∘ keep
///     dS = P ∘ (dP − Δ)              (Δ = rowsum(dO ∘ O); this is ∂L/∂bias)
///     dK += scale·(dS ∘ (1 − t²))ᵀ Q,  dQ += scale·(dS ∘ (1 − t²)) K     (t = tanh(scale·QKᵀ/c) with a softcap, else 1 − t² = 1)
typedef struct heed_flash_backward_args {
    const float *query;         ///< [rows, query_stride]
    int64_t query_stride;
    const float *key;           ///< [keys, key_stride] (row-major, for dQ)
    int64_t key_stride;
    const float *key_panels;    ///< Kᵀ panels of this key tile
    const float *value_panels;  ///< Vᵀ panels of this key tile (heed_flash_pack_panels of [keys, Dv])
    const float *d_output;      ///< [rows, d_output_stride] ∂L/∂O
    int64_t d_output_stride;
    const float *log_sum_exp;   ///< [rows] from the forward
    const float *delta;         ///< [rows] Δ = rowsum(dO ∘ O)
    int64_t rows, keys, depth, value_depth;  ///< rows ≤ HEED_FLASH_QUERY_TILE; up to HEED_FLASH_QUERY_RUN without
                                             ///< bias, mask and keep; keys ≤ HEED_FLASH_KEY_TILE
    float scale, softcap;
    const float *bias, *mask, *keep;   ///< as in the forward, [rows, tile_stride] or NULL
    int64_t tile_stride;
    float *scores;              ///< scratch [rows, tile_stride]
    float *d_scores;            ///< scratch [rows, tile_stride]
    float *softcap_scratch;     ///< scratch [rows, tile_stride] when softcap > 0, else NULL
    float *bias_gradient;       ///< [rows, tile_stride] receives dS, or NULL
    float *d_query;             ///< [rows, d_query_stride] accumulated
    int64_t d_query_stride;
    float *d_key;               ///< [keys, d_key_stride] accumulated
    int64_t d_key_stride;
    float *d_value;             ///< [keys, d_value_stride] accumulated
    int64_t d_value_stride;
} heed_flash_backward_args;

void heed_flash_backward_step(const heed_flash_backward_args *args);

/// Δ_i = Σ_c dO[i, c]·O[i, c] for `rows` rows of length `value_depth` (contiguous).
void heed_flash_row_dot(const float *d_output, const float *output, int64_t rows, int64_t value_depth, float *delta);

/// out[i] = e^x[i] for x[i] ≤ 0 through the flash kernels' exponential (the
/// dispatched row kernel, masked scores flushed: e^x = 0 for x < −86.6, −inf
/// → 0); exported for its accuracy test.
void heed_flash_exp_f32(const float *x, float *out, int64_t n);

/// Philox4x32-10 (Salmon et al., SC'11): out = the ten-round block of `counter` under `key`.
void heed_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/// Dropout multipliers of attention weights: out[r·stride + c] for query
/// row0 + r and key col0 + c of (batch, head) is 0 (dropped) or 1/(1 − p):
///
///     (w0, w1, w2, w3) = Philox4x32-10(counter: (j/4, i, head, batch), key: (seed low, seed high))
///     u = (w_{j mod 4} >> 8) · 2⁻²⁴;   dropped iff u < p
///
/// a pure function of (seed, batch, head, i, j), so every engine, tile and
/// thread order draws the same mask. p = 1 drops everything (multiplier 0).
void heed_dropout_keep_tile(uint64_t seed, float probability, int64_t batch, int64_t head,
                            int64_t row0, int64_t col0, int64_t rows, int64_t cols, float *out, int64_t stride);

#ifdef __cplusplus
}
#endif

#endif
