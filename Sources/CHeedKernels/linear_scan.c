// The causal chunked scan of kernelized attention, forward and backward
// (heed_linear.h). The small products and the vector exp come from the
// dispatched table (linear_avx2.c / linear_portable.c); this file holds the
// algorithm, the same for every ISA.
//
// Notation, per chunk of n positions (local index t), per query head g:
//
//     V'   = [V_c | 1]                                   [n, Dv+1]: the ones column gives the denominator
//     a_t  = Σ_{l ≤ t} logDecay_l (within the chunk),  A = a_{n−1},  s_j = inputScale_j
//     E    = e^{a_t − a_j} for j ≤ t, 0 above            (no decay: the lower triangle of ones, s = 1)
//     P    = φ(Q_c) φ(K_c)ᵀ,   W = P ∘ E ∘ s_j           [n, n]
//  (1) U   = diag(e^{a_t}) φ(Q_c) S_{c−1} + W V'         [n, Dv+1]
//  (2) out = U[:, :Dv] / (U[:, Dv] + ε)
//  (3) S_c = e^{A} S_{c−1} + φ(K_c)ᵀ diag(e^{A − a_j} s_j) V'      [F, Dv+1]
//
// (Katharopoulos et al., 2020, eq. 8–10, chunked as in the composed
// reference; the decay is the gated recurrence of Peng et al., 2021, eq. 7.)
// Without decay the state is shared by the G query heads of a key/value head.
//
// The backward walks the chunks in reverse with dS = ∂L/∂S_c. It needs
// S_{c−1} at every chunk: the forward saves the state entering every
// ⌈√N⌉-th chunk, and the backward recomputes one segment of states at a time
// from its checkpoint ("checkpointing", Griewank & Walther, 2000; the
// √N segment rule of Chen et al., 2016, "Training Deep Nets with Sublinear
// Memory Cost"). The decay's gradient uses, for every position t,
//
//     ∂L/∂a_t = φq_t · ∂L/∂φq_t − φk_t · ∂L/∂φk_t^{(g)}
//
// (each pair weight e^{a_i − a_j} contributes +Pr to its query end and −Pr to
// its key end, and φq_t·∂φq_t, φk_t·∂φk_t collect exactly those sums), plus,
// on the chunk's last position (through A), the pairs that cross the chunk
// boundary: Σ_j R_j (keys of this chunk, queries after it) and
// e^{A}⟨S_{c−1}, dS⟩ (keys before it, queries after it). Then
// ∂L/∂logDecay_l = Σ_{t ≥ l} ∂L/∂a_t inside the chunk.
//
// With a feature map in the shape (elu + 1, random Fourier features, Performer) the
// inputs are q and k: each chunk's φ(K_c) and each head's φ(Q_c) are computed
// into scratch (`phi_k`, `phi_q`, [C, F]) where they are read, and the
// backward turns ∂φ into ∂q, ∂k once a chunk's gradients are complete.
#include "linear_internal.h"
#include "heed_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const heed_linear_table *heed_linear_active(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(heed_kernels_isa(), "avx2+fma") == 0) return &heed_linear_avx2;
#endif
    return &heed_linear_portable;
}

// MARK: Geometry

typedef struct geometry {
    int64_t heads, tq, tk, f, dv, dp, chunk, shift;
    int64_t prefix_chunks, chunks, segment, checkpoints;
    int64_t states;     ///< state copies: G with decay, 1 without
    int decay;
    int64_t w;          ///< the row width of query_features and key_features (heed_linear_input_width)
    int64_t map_size;   ///< scratch floats of the feature map (heed_linear_map_scratch)
    float epsilon;
} geometry;

static geometry make_geometry(const heed_linear_scan_shape *shape) {
    geometry g;
    g.heads = shape->heads;
    g.tq = shape->query_length;
    g.tk = shape->key_length;
    g.f = shape->features;
    g.dv = shape->value_dim;
    g.dp = shape->value_dim + 1;
    g.chunk = shape->chunk;
    g.shift = g.tk - g.tq;
    g.prefix_chunks = (g.shift + g.chunk - 1) / g.chunk;
    g.chunks = g.prefix_chunks + (g.tq + g.chunk - 1) / g.chunk;
    g.segment = 1;
    while (g.segment * g.segment < g.chunks) g.segment++;
    g.checkpoints = (g.chunks + g.segment - 1) / g.segment;
    g.decay = shape->has_decay != 0;
    g.states = g.decay ? g.heads : 1;
    g.w = heed_linear_input_width(shape);
    g.map_size = heed_linear_map_scratch(shape);
    g.epsilon = shape->epsilon;
    return g;
}

int64_t heed_linear_scan_checkpoint_count(const heed_linear_scan_shape *shape) {
    return make_geometry(shape).checkpoints;
}

/// Key positions [start, end) of chunk `index`: prefix chunks cover [0, shift), then aligned ones.
static void chunk_range(const geometry *g, int64_t index, int64_t *start, int64_t *end) {
    if (index < g->prefix_chunks) {
        *start = index * g->chunk;
        *end = *start + g->chunk < g->shift ? *start + g->chunk : g->shift;
    } else {
        *start = g->shift + (index - g->prefix_chunks) * g->chunk;
        *end = *start + g->chunk < g->tk ? *start + g->chunk : g->tk;
    }
}

// MARK: Small helpers

/// Local cumulative log-decay a_t and its negation, and the input scales, of head `head` over [start, start + n).
static void load_decay(const geometry *g, const float *log_decay, const float *input_scale, int64_t head,
                       int64_t start, int64_t n, float *a, float *negative_a, float *scale) {
    double sum = 0;
    for (int64_t t = 0; t < n; t++) {
        sum += log_decay[head * g->tk + start + t];
        a[t] = (float)sum;
        negative_a[t] = -a[t];
        scale[t] = input_scale[head * g->tk + start + t];
    }
}

/// E[t, j] = e^{a_t − a_j} for j ≤ t and 0 above (decay), or the lower triangle of ones.
static void pair_decay(const heed_linear_table *k, const float *a, const float *negative_a, int64_t n, float *e) {
    for (int64_t t = 0; t < n; t++) {
        if (a) k->exp_shifted(negative_a, a[t], e + t * n, t + 1);
        else for (int64_t j = 0; j <= t; j++) e[t * n + j] = 1;
        for (int64_t j = t + 1; j < n; j++) e[t * n + j] = 0;
    }
}

/// out[t, j] = x[t, j] · e[t, j] · (scale ? scale[j] : 1) on and below the diagonal, 0 above.
static void masked_product(const float *x, const float *e, const float *scale, int64_t n, float *out) {
    for (int64_t t = 0; t < n; t++) {
        for (int64_t j = 0; j <= t; j++) out[t * n + j] = x[t * n + j] * e[t * n + j] * (scale ? scale[j] : 1.0f);
        for (int64_t j = t + 1; j < n; j++) out[t * n + j] = 0;
    }
}

/// Stage (3): the state after a chunk, from the state before it (has_state) or from zero.
static void advance(const heed_linear_table *k, const geometry *g, float *state, const float *keys, const float *vp,
                    int64_t n, const float *a, const float *negative_a, const float *scale, float *scratch, int has_state) {
    const float *rows = vp;
    if (a) {
        const float total = a[n - 1];
        k->exp_shifted(negative_a, total, scratch, n);                  // e^{A − a_j}
        for (int64_t j = n - 1; j >= 0; j--) {
            const float weight = scratch[j] * scale[j];
            for (int64_t d = 0; d < g->dp; d++) scratch[n + j * g->dp + d] = weight * vp[j * g->dp + d];
        }
        rows = scratch + n;
        if (has_state) {
            const float carried = expf(total);
            for (int64_t i = 0; i < g->f * g->dp; i++) state[i] *= carried;
        }
    }
    // S (+)= φ(K_c)ᵀ rows: A(i = feature, k = position) = keys[k·F + i].
    k->gemm(g->f, g->dp, n, keys, 1, g->f, rows, g->dp, state, g->dp, has_state, HEED_TRIANGLE_NONE);
}

// MARK: Scratch

typedef struct scratch {
    float *vp, *vpt, *kt, *p, *w, *e, *dw, *g_tilde, *g_scaled, *u, *du, *du_decayed;
    float *z, *dkg, *dk, *dv, *tmp_v, *st, *dst, *a, *negative_a, *scale, *da, *ds, *advance, *phi_k, *phi_q, *dphi_q, *map;
    float *block;
} scratch;

static int make_scratch(const geometry *g, scratch *s) {
    const int64_t c = g->chunk, f = g->f, dp = g->dp;
    const int64_t sizes[] = {c * dp, dp * c, f * c, c * c, c * c, c * c, c * c, c * c, c * c, c * dp, c * dp, c * dp,
                             c * f, c * f, c * f, c * dp, c * dp, dp * f, dp * f, c, c, c, c, c, c + c * dp, c * f, c * f, c * f, g->map_size};
    float **slots[] = {&s->vp, &s->vpt, &s->kt, &s->p, &s->w, &s->e, &s->dw, &s->g_tilde, &s->g_scaled, &s->u, &s->du,
                       &s->du_decayed, &s->z, &s->dkg, &s->dk, &s->dv, &s->tmp_v, &s->st, &s->dst, &s->a,
                       &s->negative_a, &s->scale, &s->da, &s->ds, &s->advance, &s->phi_k, &s->phi_q, &s->dphi_q, &s->map};
    const int count = (int)(sizeof(sizes) / sizeof(sizes[0]));
    int64_t total = 0;
    for (int i = 0; i < count; i++) total += (sizes[i] + 15) & ~(int64_t)15;   // 64-byte multiples
    s->block = malloc((size_t)total * sizeof(float));
    if (!s->block) return -1;
    float *next = s->block;
    for (int i = 0; i < count; i++) {
        *slots[i] = next;
        next += (sizes[i] + 15) & ~(int64_t)15;
    }
    return 0;
}

// MARK: Forward

int heed_linear_scan_forward(const heed_linear_scan_shape *shape,
                             const float *query_features, const float *key_features, const float *value,
                             const float *log_decay, const float *input_scale,
                             float *out, float *denominator, float *checkpoints) {
    const heed_linear_table *k = heed_linear_active();
    const geometry g = make_geometry(shape);
    const int64_t f = g.f, dp = g.dp, state_size = g.f * g.dp;
    scratch s;
    if (make_scratch(&g, &s) != 0) return -1;
    float *states = calloc((size_t)(g.states * state_size), sizeof(float));
    if (!states) { free(s.block); return -1; }

    for (int64_t c = 0; c < g.chunks; c++) {
        int64_t start, end;
        chunk_range(&g, c, &start, &end);
        const int64_t n = end - start;
        const int has_state = c > 0;
        const float *keys = heed_linear_features(k, shape, HEED_LINEAR_KEYS, key_features + start * g.w, n, s.phi_k, s.map);   // φ(K_c) [n, F]
        if (checkpoints && c % g.segment == 0)
            memcpy(checkpoints + (c / g.segment) * g.states * state_size, states, (size_t)(g.states * state_size) * sizeof(float));
        heed_linear_load_values(value, g.dv, start, n, s.vp);                                     // [n, Dv+1]
        const int is_query_chunk = c >= g.prefix_chunks;
        if (is_query_chunk) heed_linear_transpose(keys, n, f, f, s.kt);                         // [F, n]
        for (int64_t head = 0; head < g.heads; head++) {
            float *state = states + (g.decay ? head : 0) * state_size;            // [F, Dv+1]
            const float *a = NULL;
            if (g.decay) {
                load_decay(&g, log_decay, input_scale, head, start, n, s.a, s.negative_a, s.scale);
                a = s.a;
            }
            if (is_query_chunk) {
                const int64_t first = start - g.shift;                               // the chunk's first query
                const float *queries = heed_linear_features(k, shape, HEED_LINEAR_QUERIES, query_features + (head * g.tq + first) * g.w, n, s.phi_q,
                                                            s.map);                 // φ(Q_c) [n, F]
                k->gemm(n, n, f, queries, f, 1, s.kt, n, s.p, n, 0, HEED_TRIANGLE_OUTPUT_LOWER);   // P
                pair_decay(k, a, s.negative_a, n, s.e);
                masked_product(s.p, s.e, a ? s.scale : NULL, n, s.w);               // W = P ∘ E ∘ s
                if (has_state) {                                                     // (1) carried part
                    k->gemm(n, dp, f, queries, f, 1, state, dp, s.u, dp, 0, HEED_TRIANGLE_NONE);
                    if (a) for (int64_t t = 0; t < n; t++) {
                        const float carried = expf(a[t]);
                        for (int64_t d = 0; d < dp; d++) s.u[t * dp + d] *= carried;
                    }
                }
                k->gemm(n, dp, n, s.w, n, 1, s.vp, dp, s.u, dp, has_state, HEED_TRIANGLE_A_LOWER);   // (1) + W V'
                for (int64_t t = 0; t < n; t++)                                      // (2)
                    denominator[head * g.tq + first + t] =
                        heed_linear_normalize_row(s.u + t * dp, g.dv, g.epsilon, out + (head * g.tq + first + t) * g.dv);
            }
            if (g.decay && c + 1 < g.chunks) advance(k, &g, state, keys, s.vp, n, a, s.negative_a, s.scale, s.advance, has_state);
        }
        if (!g.decay && c + 1 < g.chunks) advance(k, &g, states, keys, s.vp, n, NULL, NULL, NULL, s.advance, has_state);
    }
    free(states);
    free(s.block);
    return 0;
}

// MARK: Backward

/// The gradient flowing out of the chunk through S_c (keys of this chunk, queries after it):
/// with dS = ∂L/∂S_c and r_j = e^{A − a_j} s_j (1 without decay),
///
///     ∂φk_j += r_j · dS v'_j   (unscaled by s_j into dk_raw: e^{A − a_j} · Z_j, Z = V' dSᵀ)
///     ∂v'_j += r_j · dSᵀ φk_j
///
/// Returns Σ_j R_j, R_j = r_j φk_j·(dS v'_j) (0 without decay).
static float carry_out(const heed_linear_table *k, const geometry *g, scratch *s, const float *ds, const float *keys,
                       int64_t n, const float *a, float *dk_raw, float *dv) {
    const int64_t f = g->f, dp = g->dp;
    heed_linear_transpose(ds, f, dp, dp, s->dst);                                               // [Dv+1, F]
    k->gemm(n, f, dp, s->vp, dp, 1, s->dst, f, s->z, f, 0, HEED_TRIANGLE_NONE);     // Z = V' dSᵀ   [n, F]
    k->gemm(n, dp, f, keys, f, 1, ds, dp, s->tmp_v, dp, 0, HEED_TRIANGLE_NONE);     // φ(K_c) dS    [n, Dv+1]
    float crossing = 0;
    for (int64_t j = 0; j < n; j++) {
        const float decay = a ? expf(a[n - 1] - a[j]) : 1.0f;
        const float r = decay * (a ? s->scale[j] : 1.0f);
        for (int64_t i = 0; i < f; i++) dk_raw[j * f + i] += decay * s->z[j * f + i];
        for (int64_t d = 0; d < dp; d++) dv[j * dp + d] += r * s->tmp_v[j * dp + d];
        if (a) crossing += r * heed_linear_dot(keys + j * f, s->z + j * f, f);
    }
    return crossing;
}

int heed_linear_scan_backward(const heed_linear_scan_shape *shape,
                              const float *query_features, const float *key_features, const float *value,
                              const float *log_decay, const float *input_scale,
                              const float *out, const float *denominator, const float *checkpoints,
                              const float *grad_out,
                              float *grad_query_features, float *grad_key_features, float *grad_value,
                              float *grad_log_decay, float *grad_input_scale) {
    const heed_linear_table *k = heed_linear_active();
    const geometry g = make_geometry(shape);
    const int64_t f = g.f, dp = g.dp, state_size = g.f * g.dp, set_size = g.states * state_size;
    scratch s;
    if (make_scratch(&g, &s) != 0) return -1;
    float *segment_states = malloc((size_t)(g.segment * set_size) * sizeof(float));   // S entering each chunk of a segment
    float *ds = calloc((size_t)set_size, sizeof(float));                               // ∂L/∂S_c, running backwards
    if (!segment_states || !ds) { free(segment_states); free(ds); free(s.block); return -1; }
    heed_linear_feature_gradient_begin(shape);

    for (int64_t segment = g.checkpoints - 1; segment >= 0; segment--) {
        const int64_t c0 = segment * g.segment, c1 = c0 + g.segment < g.chunks ? c0 + g.segment : g.chunks;
        // Recompute the states entering chunks c0 ..< c1 from the checkpoint (stage 3 again).
        memcpy(segment_states, checkpoints + segment * set_size, (size_t)set_size * sizeof(float));
        for (int64_t c = c0; c + 1 < c1; c++) {
            int64_t start, end;
            chunk_range(&g, c, &start, &end);
            const int64_t n = end - start;
            float *next = segment_states + (c - c0 + 1) * set_size;
            memcpy(next, segment_states + (c - c0) * set_size, (size_t)set_size * sizeof(float));
            heed_linear_load_values(value, g.dv, start, n, s.vp);
            const float *keys = heed_linear_features(k, shape, HEED_LINEAR_KEYS, key_features + start * g.w, n, s.phi_k, s.map);
            for (int64_t head = 0; head < g.states; head++) {
                const float *a = NULL;
                if (g.decay) {
                    load_decay(&g, log_decay, input_scale, head, start, n, s.a, s.negative_a, s.scale);
                    a = s.a;
                }
                advance(k, &g, next + head * state_size, keys, s.vp, n, a, s.negative_a, s.scale, s.advance, c > 0);
            }
        }

        for (int64_t c = c1 - 1; c >= c0; c--) {
            int64_t start, end;
            chunk_range(&g, c, &start, &end);
            const int64_t n = end - start;
            const int has_state = c > 0, has_ds = c + 1 < g.chunks, is_query_chunk = c >= g.prefix_chunks;
            const float *keys = heed_linear_features(k, shape, HEED_LINEAR_KEYS, key_features + start * g.w, n, s.phi_k, s.map);   // φ(K_c) [n, F]
            const float *previous = segment_states + (c - c0) * set_size;           // S_{c−1}, [S, F, Dv+1]
            heed_linear_load_values(value, g.dv, start, n, s.vp);
            heed_linear_transpose(s.vp, n, dp, dp, s.vpt);                                        // [Dv+1, n]
            if (is_query_chunk) heed_linear_transpose(keys, n, f, f, s.kt);                       // [F, n]
            memset(s.dk, 0, (size_t)(n * f) * sizeof(float));
            memset(s.dv, 0, (size_t)(n * dp) * sizeof(float));
            if (!g.decay) {
                if (has_ds) carry_out(k, &g, &s, ds, keys, n, NULL, s.dk, s.dv);
                if (has_state && is_query_chunk) heed_linear_transpose(previous, f, dp, dp, s.st);   // S_{c−1}ᵀ [Dv+1, F]
            }
            for (int64_t head = 0; head < g.heads; head++) {
                float *head_ds = ds + (g.decay ? head : 0) * state_size;
                const float *a = NULL;
                float crossing = 0;
                float *dk_raw = g.decay ? s.dkg : s.dk;                               // ∂φk before the s_j factor
                if (g.decay) {
                    load_decay(&g, log_decay, input_scale, head, start, n, s.a, s.negative_a, s.scale);
                    a = s.a;
                    memset(s.dkg, 0, (size_t)(n * f) * sizeof(float));
                    memset(s.da, 0, (size_t)n * sizeof(float));
                    if (has_ds) {
                        crossing = carry_out(k, &g, &s, head_ds, keys, n, a, s.dkg, s.dv);
                        if (has_state) crossing += expf(a[n - 1]) * heed_linear_dot(previous + head * state_size, head_ds, state_size);
                    }
                    if (has_state && is_query_chunk) heed_linear_transpose(previous + head * state_size, f, dp, dp, s.st);
                }
                const int64_t first = start - g.shift;
                const float *raw_queries = query_features + (head * g.tq + first) * g.w;
                const float *queries = is_query_chunk ? heed_linear_features(k, shape, HEED_LINEAR_QUERIES, raw_queries, n, s.phi_q, s.map)
                                                      : raw_queries;                 // φ(Q_c) [n, F]
                float *grad_query_rows = grad_query_features + (head * g.tq + first) * g.w;
                float *grad_queries = heed_linear_feature_gradient_buffer(shape, grad_query_rows, s.dphi_q);   // ∂φ(Q_c) [n, F]
                if (is_query_chunk) {
                    // ∂U from (2): ∂U[:, :Dv] = ∂out / den, ∂U[:, Dv] = −(∂out · out) / den.
                    for (int64_t t = 0; t < n; t++) {
                        const int64_t row = head * g.tq + first + t;
                        heed_linear_row_gradient(grad_out + row * g.dv, out + row * g.dv, denominator[row], g.dv, s.du + t * dp);
                        const float carried = a ? expf(a[t]) : 1.0f;
                        for (int64_t d = 0; d < dp; d++) s.du_decayed[t * dp + d] = carried * s.du[t * dp + d];
                    }
                    // (1) within the chunk: W = P ∘ E ∘ s, ∂W = ∂U V'ᵀ.
                    k->gemm(n, n, f, queries, f, 1, s.kt, n, s.p, n, 0, HEED_TRIANGLE_OUTPUT_LOWER);
                    pair_decay(k, a, s.negative_a, n, s.e);
                    masked_product(s.p, s.e, a ? s.scale : NULL, n, s.w);
                    k->gemm(n, n, dp, s.du, dp, 1, s.vpt, n, s.dw, n, 0, HEED_TRIANGLE_OUTPUT_LOWER);
                    masked_product(s.dw, s.e, NULL, n, s.g_tilde);                   // ∂P without s: ∂W ∘ E
                    masked_product(s.dw, s.e, a ? s.scale : NULL, n, s.g_scaled);     // ∂P = ∂W ∘ E ∘ s
                    k->gemm(n, dp, n, s.w, 1, n, s.du, dp, s.dv, dp, 1, HEED_TRIANGLE_A_UPPER);              // ∂V' += Wᵀ ∂U
                    k->gemm(n, f, n, s.g_scaled, n, 1, keys, f, grad_queries, f, 0, HEED_TRIANGLE_A_LOWER);  // ∂φQ = ∂P φK
                    k->gemm(n, f, n, s.g_tilde, 1, n, queries, f, dk_raw, f, 1, HEED_TRIANGLE_A_UPPER);     // ∂φK += ∂Pᵀ φQ
                    // (1) carried part: ∂φQ += diag(e^{a_t}) ∂U S_{c−1}ᵀ.
                    if (has_state)
                        k->gemm(n, f, dp, s.du_decayed, dp, 1, s.st, f, grad_queries, f, 1, HEED_TRIANGLE_NONE);
                    if (a) for (int64_t t = 0; t < n; t++) s.da[t] += heed_linear_dot(queries + t * f, grad_queries + t * f, f);
                    heed_linear_feature_gradient(k, shape, HEED_LINEAR_QUERIES, raw_queries, queries, grad_queries, n, s.map, grad_query_rows);   // ∂φQ → ∂Q
                }
                if (g.decay) {
                    // s_j scales key j's every pair: ∂s_j = φk_j · ∂φk_j(raw), ∂φk_j = s_j ∂φk_j(raw).
                    float *dlog = grad_log_decay + head * g.tk + start, *dscale = grad_input_scale + head * g.tk + start;
                    for (int64_t j = 0; j < n; j++) {
                        const float *raw = s.dkg + j * f;
                        dscale[j] = heed_linear_dot(keys + j * f, raw, f);
                        s.da[j] -= s.scale[j] * dscale[j];
                        for (int64_t i = 0; i < f; i++) s.dk[j * f + i] += s.scale[j] * raw[i];
                    }
                    s.da[n - 1] += crossing;
                    double suffix = 0;
                    for (int64_t t = n - 1; t >= 0; t--) { suffix += s.da[t]; dlog[t] = (float)suffix; }
                    // (3) backwards: ∂S_{c−1} = e^{A} ∂S_c (+ the queries' part below).
                    const float carried = expf(a[n - 1]);
                    for (int64_t i = 0; i < state_size; i++) head_ds[i] *= carried;
                }
                // (1) backwards into the state: ∂S_{c−1} += φ(Q_c)ᵀ diag(e^{a_t}) ∂U.
                if (is_query_chunk && has_state)
                    k->gemm(f, dp, n, queries, 1, f, s.du_decayed, dp, head_ds, dp, 1, HEED_TRIANGLE_NONE);
            }
            heed_linear_feature_gradient(k, shape, HEED_LINEAR_KEYS, key_features + start * g.w, keys, s.dk, n, s.map, grad_key_features + start * g.w);
            for (int64_t j = 0; j < n; j++) memcpy(grad_value + (start + j) * g.dv, s.dv + j * dp, (size_t)g.dv * sizeof(float));
        }
    }
    free(segment_states);
    free(ds);
    free(s.block);
    return 0;
}
