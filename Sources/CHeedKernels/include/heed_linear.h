// Kernels of the kernelized ("linear") attentions: the causal chunked scan of
// φ(Q), φ(K), V with its backward, and the feature maps of Performer (FAVOR+),
// random feature attention and elu+1 linear attention.
//
// Like heed_kernels.h, every entry point dispatches at run time to an
// AVX2+FMA version or a portable one (and follows heed_kernels_force_portable).
// All functions are thread-safe and write only their own outputs, so callers
// run independent heads (or row ranges) on different threads.
#ifndef HEED_LINEAR_H
#define HEED_LINEAR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What the kernels' `query_features` and `key_features` hold.
typedef enum heed_linear_feature_map {
    /// The features φ(q), φ(k) themselves.
    HEED_LINEAR_FEATURES_GIVEN = 0,
    /// The rows q, k; the kernel applies φ = elu + 1 (heed_elu_plus_one_f32) to
    /// each chunk as it reads it, so no [T, F] feature tensor exists, and the
    /// backward's gradients are those of q and k (F = D).
    HEED_LINEAR_FEATURES_ELU_PLUS_ONE = 1,
    /// The rows q, k; the kernel applies RFA's random Fourier features
    /// (heed_random_fourier_features_f32 with the shape's `random_fourier`) to
    /// each chunk as it reads it (F = 2m, rows of width D).
    HEED_LINEAR_FEATURES_RANDOM_FOURIER = 2,
    /// The rows q, k; the kernel applies Performer's positive features
    /// (heed_performer_features_f32 with the shape's `performer`) to each chunk
    /// as it reads it (F = m, rows of width D): a query row is shifted by its
    /// own maximum, every key by the shape's `key_shift`. The backward adds
    /// the query shifts' gradient itself and returns what reaches the keys'
    /// shift in `key_row_sum`.
    HEED_LINEAR_FEATURES_PERFORMER = 3,
} heed_linear_feature_map;

/// The parameters of HEED_LINEAR_FEATURES_RANDOM_FOURIER (see
/// heed_random_fourier_features_f32).
typedef struct heed_linear_random_fourier {
    const float *w_transposed;  ///< Wᵀ [D, m]
    const float *w;             ///< W [m, D] (the backward)
    int64_t input_width;        ///< D
    int32_t normalize;
    float angle_scale;
    float scale;
} heed_linear_random_fourier;

/// The parameters of HEED_LINEAR_FEATURES_PERFORMER (see
/// heed_performer_features_f32), for one key/value head.
typedef struct heed_linear_performer {
    const float *w_transposed;  ///< Wᵀ [D, m]
    const float *w;             ///< W [m, D] (the backward)
    int64_t input_width;        ///< D
    float input_scale;
    float epsilon;
    float feature_scale;
    /// c of every key: the maximum of u = x̂ Wᵀ over all keys of the head and
    /// all features (a first pass: heed_performer_features_f32 without features).
    float key_shift;
    /// The backward's output (NULL in the forward): Σ_r row_sum_r over the
    /// head's keys (row_sum as in heed_performer_features_backward_f32), so
    /// that ∂c = −key_row_sum, which the caller adds at the keys' maxima.
    double *key_row_sum;
} heed_linear_performer;

/// The geometry of one causal scan: one key/value head and the `heads` query
/// heads that share it (grouped-query attention; 1 without grouping).
///
/// Query i sits at key position i + Tk − Tq (bottom-right alignment) and sees
/// keys j ≤ i + Tk − Tq. Keys before the first query (Tk > Tq) are cut into
/// chunks of their own, then the aligned part: a chunk holds either no query
/// or only queries, as in the composed reference (KernelizedAttention.swift).
typedef struct heed_linear_scan_shape {
    int64_t heads;          ///< G ≥ 1: query heads sharing the keys and values
    int64_t query_length;   ///< Tq ≥ 1
    int64_t key_length;     ///< Tk ≥ Tq
    int64_t features;       ///< F ≥ 1: the feature count of φ
    int64_t value_dim;      ///< Dv ≥ 1
    int64_t chunk;          ///< C ≥ 1: positions per chunk
    float epsilon;          ///< ε added to every denominator
    int32_t has_decay;      ///< 1: per-step decay (log_decay, input_scale given), 0: none
    int32_t feature_map;    ///< a heed_linear_feature_map: what query_features and key_features hold
    const heed_linear_random_fourier *random_fourier;   ///< with HEED_LINEAR_FEATURES_RANDOM_FOURIER, else NULL
    const heed_linear_performer *performer;             ///< with HEED_LINEAR_FEATURES_PERFORMER, else NULL
} heed_linear_scan_shape;

/// The number of saved states the forward writes for the backward
/// (⌈N / ⌈√N⌉⌉ for N chunks): checkpoints holds that many × S × F × (Dv + 1)
/// floats, S = heads with decay, 1 without.
int64_t heed_linear_scan_checkpoint_count(const heed_linear_scan_shape *shape);

/// The causal scan, normalised:
///
///     S_t   = e^{logDecay_t} S_{t−1} + inputScale_t φ(k_t) [v_t | 1]ᵀ      (S_{−1} = 0; no decay: e⁰, 1)
///     U_i   = φ(q_i)ᵀ S_{i+Tk−Tq}                                         [Dv + 1]
///     out_i = U_i[:Dv] / (U_i[Dv] + ε),   denominator_i = U_i[Dv] + ε
///
/// computed chunk by chunk: a [C, C] block inside the chunk, the running state
/// [F, Dv+1] across chunks (Katharopoulos et al., 2020, eq. 8–10; with decay,
/// the within-chunk cumulative log-decays keep every exponent ≤ 0).
///
/// - query_features: [G, Tq, F];  key_features: [Tk, F];  value: [Tk, Dv]
/// - log_decay, input_scale: [G, Tk] when has_decay, else NULL
/// - out: [G, Tq, Dv];  denominator: [G, Tq]
/// - checkpoints: NULL (inference) or room for the states the backward needs
int heed_linear_scan_forward(const heed_linear_scan_shape *shape,
                             const float *query_features, const float *key_features, const float *value,
                             const float *log_decay, const float *input_scale,
                             float *out, float *denominator, float *checkpoints);

/// The backward of heed_linear_scan_forward, from its saved outputs and
/// checkpoints: recomputes the states of one segment of ⌈√N⌉ chunks at a time
/// from its checkpoint and walks the chunks in reverse with the running
/// gradient of the state, so memory stays O(√N · F · Dv) per head.
///
/// Writes (overwrites) grad_query_features [G, Tq, F], grad_key_features
/// [Tk, F], grad_value [Tk, Dv] and, with decay, grad_log_decay and
/// grad_input_scale [G, Tk]; with HEED_LINEAR_FEATURES_PERFORMER also
/// *performer->key_row_sum. Returns 0, or −1 when scratch memory ran out.
int heed_linear_scan_backward(const heed_linear_scan_shape *shape,
                              const float *query_features, const float *key_features, const float *value,
                              const float *log_decay, const float *input_scale,
                              const float *out, const float *denominator, const float *checkpoints,
                              const float *grad_out,
                              float *grad_query_features, float *grad_key_features, float *grad_value,
                              float *grad_log_decay, float *grad_input_scale);

/// The bidirectional (non-causal) form with the same shapes and outputs —
/// the summary S = φ(K)ᵀ [V | 1] [F, Dv+1] of all keys, then every query:
///
///     U_i = φ(q_i)ᵀ S,   out_i = U_i[:Dv] / (U_i[Dv] + ε),   denominator_i = U_i[Dv] + ε
///
/// (Katharopoulos et al., 2020, eq. 6), chunk by chunk so that no [T, Dv+1]
/// intermediate exists. Any Tq, Tk ≥ 1; has_decay must be 0. `summary`:
/// NULL, or room for S (F × (Dv+1) floats), which the backward reads.
int heed_linear_bidirectional_forward(const heed_linear_scan_shape *shape,
                                      const float *query_features, const float *key_features, const float *value,
                                      float *out, float *denominator, float *summary);

/// Its backward: ∂φ(q_i) = ∂U_i Sᵀ, ∂S = Σ_i φ(q_i) ∂U_iᵀ, then per key
/// ∂φ(k_j) = ∂S v'_j and ∂v'_j = ∂Sᵀ φ(k_j). Overwrites the three gradients
/// (and, with HEED_LINEAR_FEATURES_PERFORMER, *performer->key_row_sum).
int heed_linear_bidirectional_backward(const heed_linear_scan_shape *shape,
                                       const float *query_features, const float *key_features, const float *value,
                                       const float *out, const float *denominator, const float *summary,
                                       const float *grad_out,
                                       float *grad_query_features, float *grad_key_features, float *grad_value);

/// Performer's positive features of `rows` rows of x, a block of rows at a
/// time, so that the projections u never exist beyond one block
/// (Choromanski et al., 2021, eq. 5, stabilised as in the authors' code):
///
///     x̂ = x · input_scale,   u = x̂ Wᵀ,   h_r = ½‖x̂_r‖²,   row_max_r = max_i u_ri
///     φ_ri = (exp((u_ri − h_r) − c_r) + ε) · feature_scale,   c_r = shift ? shift[r] : row_max_r
///
/// - x: [rows, D];  w_transposed: Wᵀ [D, m]
/// - shift: [rows], or NULL for each row's own maximum
/// - row_max, max_index, max_count: [rows] outputs — the row maximum, its
///   first index, and how many entries equal it
/// - features: [rows, m], or NULL to compute only the maxima
/// Returns 0, or −1 when scratch memory ran out.
int heed_performer_features_f32(const float *x, int64_t rows, int64_t d, const float *w_transposed, int64_t m,
                                float input_scale, float epsilon, float feature_scale, const float *shift,
                                float *row_max, int64_t *max_index, int64_t *max_count, float *features);

/// The positions i of one row where u_i = (x · input_scale) Wᵀ equals
/// `value` (computed exactly as heed_performer_features_f32 computes u), at
/// most `capacity` written; returns how many there are.
int64_t heed_performer_maxima_f32(const float *x, int64_t d, const float *w_transposed, int64_t m, float input_scale,
                                  float value, int64_t *positions, int64_t capacity);

/// The backward of heed_performer_features_f32, except what reaches the
/// shifts c (the caller adds it at the maxima, using row_sum):
///
///     ∂u = ∂φ ∘ (φ − ε · feature_scale),   row_sum_r = Σ_i ∂u_ri        (∂h_r = −row_sum_r)
///     ∂x = (∂u W − row_sum_r · x̂_r) · input_scale
///
/// - x, grad_x: [rows, D];  features, grad: [rows, m];  w: W [m, D];  row_sum: [rows] output
int heed_performer_features_backward_f32(const float *x, const float *features, const float *grad, int64_t rows, int64_t d,
                                         const float *w, int64_t m, float input_scale, float epsilon, float feature_scale,
                                         float *row_sum, float *grad_x);

/// Random Fourier features of `rows` rows of x, a block of rows at a time
/// (Rahimi & Recht, 2007; Peng et al., 2021, eq. 2):
///
///     x̂ = normalize ? x / max(‖x‖, 10⁻¹²) : x,   a = (x̂ Wᵀ) · angle_scale
///     φ_r = [sin a_r, cos a_r] · scale                                   [rows, 2m]
///
/// The AVX2 sin/cos is within 2 ulp of the rounded values for |a| ≤ 8192
/// and calls libm for lanes beyond. x: [rows, D]; w_transposed: Wᵀ [D, m].
int heed_random_fourier_features_f32(const float *x, int64_t rows, int64_t d, const float *w_transposed, int64_t m,
                                     int32_t normalize, float angle_scale, float scale, float *features);

/// Its backward, from the features themselves (d/da sin a · s = cos a · s):
///
///     ∂a = φ_cos ∘ ∂φ_sin − φ_sin ∘ ∂φ_cos,   ∂x̂ = (∂a W) · angle_scale
///     ∂x = (∂x̂ − x̂ (x̂ · ∂x̂)) / ‖x‖ where ‖x‖ > 10⁻¹² (normalize), ∂x̂ / 10⁻¹² below, ∂x̂ without normalize
int heed_random_fourier_features_backward_f32(const float *x, const float *features, const float *grad, int64_t rows,
                                              int64_t d, const float *w, int64_t m, int32_t normalize, float angle_scale,
                                              float *grad_x);

/// elu(x) + 1 = x + 1 (x > 0), eˣ (x ≤ 0), elementwise (Katharopoulos et al., 2020, eq. 7).
void heed_elu_plus_one_f32(const float *x, float *out, int64_t n);

/// Its gradient: grad_x = grad · (x > 0 ? 1 : features), features = elu(x) + 1 = eˣ there.
void heed_elu_plus_one_backward_f32(const float *x, const float *features, const float *grad, float *grad_x, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
