// Flash attention forward: one (query tile, key tile) step of the online
// softmax — FlashAttention-2 Algorithm 1 (Dao, 2023, arXiv:2307.08691),
// lines 8–10 — plus Kᵀ panel packing and the end-of-tile normalisation
// (lines 12–13).
//
// The step is written once against the kernel table of flash_internal.h
// (AVX2+FMA or portable, chosen per call).
#include "flash_internal.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

// MARK: Packing

int64_t heed_flash_panels_count(int64_t rows, int64_t columns) {
    return (rows + HEED_FLASH_PANEL - 1) / HEED_FLASH_PANEL * HEED_FLASH_PANEL * columns;
}

void heed_flash_pack_panels(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels) {
#if defined(__x86_64__) || defined(__i386__)
    if (heed_kernels_avx2_active()) { flash_pack_panels_avx2(source, rows, columns, stride, panels); return; }
#endif
    flash_pack_panels_portable(source, rows, columns, stride, panels);
}

void flash_pack_panels_portable(const float *source, int64_t rows, int64_t columns, int64_t stride, float *panels) {
    for (int64_t p = 0; p * HEED_FLASH_PANEL < rows; p++) {
        float *panel = panels + p * HEED_FLASH_PANEL * columns;
        const int64_t first = p * HEED_FLASH_PANEL;
        const int64_t width = rows - first < HEED_FLASH_PANEL ? rows - first : HEED_FLASH_PANEL;
        for (int64_t c = 0; c < columns; c++) {
            float *line = panel + c * HEED_FLASH_PANEL;
            for (int64_t r = 0; r < width; r++) line[r] = source[(first + r) * stride + c];
            for (int64_t r = width; r < HEED_FLASH_PANEL; r++) line[r] = 0.0f;
        }
    }
}

void heed_flash_pack_slabs(const float *source, int64_t rows, int64_t columns, int64_t stride, float *slabs) {
    for (int64_t first = 0; first < columns; first += HEED_FLASH_PANEL) {
        float *slab = slabs + first * rows;                                  // slab first/16 starts at first·rows
        const int64_t width = columns - first < HEED_FLASH_PANEL ? columns - first : HEED_FLASH_PANEL;
        for (int64_t r = 0; r < rows; r++) {
            const float *from = source + r * stride + first;
            float *line = slab + r * HEED_FLASH_PANEL;
            if (width == HEED_FLASH_PANEL) {            // a constant size: inlined as vector moves
                memcpy(line, from, HEED_FLASH_PANEL * sizeof(float));
                continue;
            }
            for (int64_t c = 0; c < width; c++) line[c] = from[c];
            for (int64_t c = width; c < HEED_FLASH_PANEL; c++) line[c] = 0.0f;
        }
    }
}

int heed_flash_value_slabs_help(int64_t value_depth) {
    return !(heed_kernels_avx512_active() && flash_gemm_avx512_wide(value_depth));
}

// MARK: One step

/// First multiple of 16 at or above n, at most `limit`.
static inline int64_t panel_end(int64_t n, int64_t limit) {
    const int64_t rounded = (n + HEED_FLASH_PANEL - 1) / HEED_FLASH_PANEL * HEED_FLASH_PANEL;
    return rounded < limit ? rounded : limit;
}

/// How far the scores of one key tile may add up past their row's running
/// maximum in the fused path, as a power of two: the tile's Σ P ≤ 2^12, so
/// every P ≤ 2^12 and ℓ and O grow by at most that per tile, far from
/// overflow (the conditional rescaling FlashAttention-4 uses on GPUs: move
/// the maximum only when it grows past a threshold). A tile of 96 keys at
/// the running maximum sums to 96 ≈ 2^6.6.
#define FLASH_HEADROOM_SUM 4096.0f

/// The least row sum that a row's first key tile may have in the fused path,
/// which starts such a row at m = 0 instead of its tile maximum: 2^−40 keeps
/// every term within 2^−86 of the row's largest one (f32 resolves 2^−24), so
/// nothing that matters has underflowed. Scores all far below 0 fail it, and
/// the two-pass step takes the tile.
#define FLASH_FIRST_TILE_MIN_SUM 0x1p-40f

void heed_flash_forward_begin(const heed_flash_forward_args *args) {
    if (!args->scaled_query) return;
    // heed_affine_f32 multiplies, then adds 0: q·factor exactly, on vectors.
    const float factor = args->scale * FLASH_LOG2E;
    if (args->query_stride == args->depth) {
        heed_affine_f32(args->query, factor, 0.0f, args->scaled_query, args->rows * args->depth);
        return;
    }
    for (int64_t r = 0; r < args->rows; r++) {
        heed_affine_f32(args->query + r * args->query_stride, factor, 0.0f, args->scaled_query + r * args->depth,
                        args->depth);
    }
}

/// The one-pass forward step for plain scores (no softcap, bias, mask or
/// dropout), given a finite running maximum m — or, for a row's first key
/// tile (m = −inf so far), m = 0, kept when the row's sum passes both checks
/// below (typical attention scores lie within a few units of 0): the
/// exponential is taken against the current m instead of the tile's new
/// maximum,
///
///     P = exp(S̃ − m),  ℓ += rowsum P,  O += P V      (m, and so O and ℓ, unchanged)
///
/// exact, since O/ℓ and LSE = m + log ℓ hold for any m; it only needs the
/// row's P to stay small (FLASH_HEADROOM_SUM). In base 2 with the scale
/// folded into the query (scaled_query = Q·scale·log₂e, filled once per query
/// tile), the exponent is t = Σ_k Q̂(r, k) K(c, k) − m·log₂e: one
/// subtraction per score before 2^t, in the sweep that follows the tile's
/// product. When a row's sum exceeds the headroom (a new, much larger
/// maximum) or is NaN (a NaN or infinite score), the two-pass step below
/// runs instead, which moves m. Saves the two-pass step's max pass over S
/// and its rescaling of ℓ and O.
static int fused_path(const flash_kernel_table *kernels, const heed_flash_forward_args *args) {
    if (!args->scaled_query || args->softcap != 0.0f || args->bias || args->mask || args->keep ||
        !(args->scale > 0.0f)) {
        return 0;
    }
    const int64_t rows = args->rows;
    // The rows' shifts here, once, not per row inside the kernels' sweeps (a
    // compare and a masked move there, then a broadcast every exponential of
    // the row waited on: 15 % of the AVX-512 sweep, 2.49 → 2.12 ns per 16 lanes).
    float shift2[HEED_FLASH_QUERY_TILE], tile_sums[HEED_FLASH_QUERY_TILE];
    for (int64_t r = 0; r < rows; r++) {
        if (!(args->row_max[r] < INFINITY)) return 0;                       // +inf or NaN
        shift2[r] = flash_shift2(args->row_max[r]);
    }
    kernels->scores_exp(rows, args->keys, args->depth, args->scaled_query, args->depth, args->key_panels,
                        args->scores, args->tile_stride, shift2, tile_sums);
    for (int64_t r = 0; r < rows; r++) {
        if (!(tile_sums[r] <= FLASH_HEADROOM_SUM)) return 0;              // NaN counts as exceeded
        if (args->row_max[r] == -INFINITY && !(tile_sums[r] >= FLASH_FIRST_TILE_MIN_SUM)) return 0;
    }
    for (int64_t r = 0; r < rows; r++) {
        if (args->row_max[r] == -INFINITY) args->row_max[r] = 0.0f;
        args->row_sum[r] += tile_sums[r];
    }
    kernels->gemm(rows, args->value_depth, args->keys, args->scores, args->tile_stride, 1, args->value,
                  args->value_stride, args->value_panel_stride, args->output, args->output_stride,
                  args->output_fresh ? FLASH_STORE : FLASH_ACCUMULATE, 0);
    return 1;
}

void heed_flash_forward_step(const heed_flash_forward_args *args) {
    const flash_kernel_table *kernels = flash_kernels();
    const int64_t rows = args->rows, keys = args->keys, stride = args->tile_stride;
    if (kernels->scores_exp && fused_path(kernels, args)) return;
    if (args->output_fresh) {           // the paths below rescale O (by 0 in a row's first tile: O must be finite)
        for (int64_t r = 0; r < rows; r++) memset(args->output + r * args->output_stride, 0,
                                                  (size_t)args->value_depth * sizeof(float));
    }
    if (!args->mask) {
        // S = Q Kᵀ (the scale is applied in the row pass).                   [rows, keys]
        kernels->gemm(rows, keys, args->depth, args->query, args->query_stride, 1, args->key_panels, HEED_FLASH_PANEL,
                      args->depth * HEED_FLASH_PANEL, args->scores, stride, FLASH_STORE, 0);
        // m′ = max(m, rowmax S̃);  P = exp(S̃ − m′);  ℓ = e^(m − m′)ℓ + rowsum P.
        kernels->online_softmax(args);
        // O = diag(e^(m − m′)) O + (P ∘ keep) V.                               [rows, Dv]
        kernels->gemm(rows, args->value_depth, keys, args->scores, stride, 1, args->value, args->value_stride,
                      args->value_panel_stride, args->output, args->output_stride, FLASH_RESCALE, args->row_scale);
        return;
    }
    // A partially masked tile: the same three stages, each block of 6 rows
    // limited to the key columns its rows may see. Scores outside those
    // columns are never computed; the mask makes them −inf whatever they hold.
    flash_extents extents;
    flash_tile_extents(args->mask, rows, keys, stride, &extents);
    for (int64_t r = 0; r < rows; r += 6) {
        const int64_t height = rows - r < 6 ? rows - r : 6;
        const int64_t first = extents.row_first[r / 6] / HEED_FLASH_PANEL * HEED_FLASH_PANEL;
        const int64_t end = panel_end(extents.row_end[r / 6], keys);
        if (end <= first) continue;
        kernels->gemm(height, end - first, args->depth, args->query + r * args->query_stride, args->query_stride, 1,
                      args->key_panels + first * args->depth, HEED_FLASH_PANEL, args->depth * HEED_FLASH_PANEL,
                      args->scores + r * stride + first, stride, FLASH_STORE, 0);
    }
    kernels->online_softmax(args);
    for (int64_t r = 0; r < rows; r += 6) {
        const int64_t height = rows - r < 6 ? rows - r : 6;
        const int64_t first = extents.row_first[r / 6], end = extents.row_end[r / 6];
        kernels->gemm(height, args->value_depth, end - first, args->scores + r * stride + first, stride, 1,
                      args->value + first * args->value_stride, args->value_stride, args->value_panel_stride,
                      args->output + r * args->output_stride, args->output_stride, FLASH_RESCALE, args->row_scale + r);
    }
}

// MARK: Exact weights of a tile

void heed_flash_weights_step(const heed_flash_forward_args *args, const float *log_sum_exp, float *out,
                             int64_t out_stride) {
    const flash_kernel_table *kernels = flash_kernels();
    kernels->gemm(args->rows, args->keys, args->depth, args->query, args->query_stride, 1, args->key_panels,
                  HEED_FLASH_PANEL, args->depth * HEED_FLASH_PANEL, args->scores, args->tile_stride, FLASH_STORE, 0);
    kernels->weights(args, log_sum_exp, out, out_stride);
}

// MARK: End of a query tile

void heed_flash_forward_finish(int64_t rows, int64_t value_depth, const float *row_max, const float *row_sum,
                               float *output, int64_t output_stride, float *log_sum_exp) {
    for (int64_t r = 0; r < rows; r++) {
        float *o = output + r * output_stride;
        if (row_sum[r] == 0.0f) {                        // nothing allowed: zeros, never 0/0
            for (int64_t c = 0; c < value_depth; c++) o[c] = 0.0f;
            log_sum_exp[r] = -INFINITY;
            continue;
        }
        const float inverse = 1.0f / row_sum[r];
        for (int64_t c = 0; c < value_depth; c++) o[c] *= inverse;
        log_sum_exp[r] = row_max[r] + logf(row_sum[r]);
    }
}
