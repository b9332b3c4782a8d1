import Foundation
import HeedTensor

/// Performer attention by FAVOR+: softmax attention estimated with positive
/// (orthogonal) random features in linear time (Choromanski et al., 2021,
/// "Rethinking Attention with Performers").
///
/// With the data scaled by D^(−1/4) so that x̂·ŷ = q·k/√D, the softmax kernel
/// is an expectation over Gaussian w (Lemma 1), estimated with m rows of the
/// projection W (eq. 5 with h(x) = exp(−‖x‖²/2), f = exp):
///
/// ```
/// exp(q·k/√D) = E_w[ exp(wᵀq̂ − ‖q̂‖²/2) · exp(wᵀk̂ − ‖k̂‖²/2) ],   x̂ = x · D^(−1/4)
/// φ(x)_i      = (exp(w_iᵀx̂ − ‖x̂‖²/2 − c) + ε) / √m                   i = 1…m
/// out         = φ(Q)(φ(K)ᵀV) / (φ(Q)(φ(K)ᵀ1))                        (bidirectional)
/// out_i       = φ(q_i)ᵀ Σ_{j≤i} φ(k_j)v_jᵀ / φ(q_i)ᵀ Σ_{j≤i} φ(k_j)   (causal, prefix sums)
/// ```
///
/// **Stabilisation, as in the authors' code** (`softmax_kernel_transformation`
/// in google-research/performer): the shift c is the maximum of w_iᵀx̂ over
/// the features of each query row, and over all features *and positions* of
/// the keys of each (batch, head); ε = 10⁻⁶ (``featureEpsilon``) keeps every
/// feature positive. Both shifts cancel between numerator and denominator up
/// to ε; gradients flow through them as in the authors' code (no stop-gradient).
/// The keys' shift spans the whole sequence, so in the causal form a later key
/// moves earlier outputs by O(ε) only.
///
/// The projection W [m, D] is drawn from Philox by `seed` — orthogonal blocks
/// rescaled by χ-distributed norms (``RandomProjection/orthogonalGaussian(rows:columns:seed:)``)
/// or i.i.d. Gaussian rows — and ``redraw(seed:)`` draws a new one (the
/// paper redraws during training). It is not learned.
///
/// Shapes: q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv] with Hkv
/// dividing H → [B, H, Tq, Dv]. Every query sees at least one key, and the
/// features are positive, so no row is empty or NaN.
public struct Performer {
    /// m, the number of random features.
    public let features: Int
    /// D, the head dimension of queries and keys.
    public let headDimension: Int
    /// Whether W has orthogonal blocks (FAVOR+) or i.i.d. rows.
    public let orthogonal: Bool
    /// The seed of the current draw (nil when W was given).
    public private(set) var seed: UInt64?
    /// W: [m, D], rows w_i.
    public private(set) var projection: Tensor
    /// ε added to every feature (the authors' `numerical_stabilizer`, 10⁻⁶).
    public var featureEpsilon: Float = 1e-6
    /// Fused kernels (default) or the composed reference path.
    public var implementation: KernelizedAttention.Implementation = .fused

    /// A Performer whose projection W [features, headDimension] is drawn from Philox by `seed`.
    public init(features: Int, headDimension: Int, orthogonal: Bool = true, seed: UInt64) {
        precondition(features >= 1 && headDimension >= 1, "Performer: features \(features) and headDimension \(headDimension) must be ≥ 1")
        self.features = features
        self.headDimension = headDimension
        self.orthogonal = orthogonal
        self.seed = seed
        self.projection = Performer.draw(features: features, headDimension: headDimension, orthogonal: orthogonal, seed: seed)
    }

    /// A Performer with a given projection W [m, D] (for fixtures, or a
    /// projection drawn elsewhere). `orthogonal` only records what it is.
    public init(projection: Tensor, orthogonal: Bool = true) {
        precondition(projection.rank == 2 && projection.shape[0] >= 1 && projection.shape[1] >= 1,
                     "Performer: projection must be [m, D], got \(projection.shape)")
        self.features = projection.shape[0]
        self.headDimension = projection.shape[1]
        self.orthogonal = orthogonal
        self.seed = nil
        self.projection = projection.detached()
    }

    /// Draws a new projection from `seed` (same m, D and kind).
    public mutating func redraw(seed: UInt64) {
        self.seed = seed
        projection = Performer.draw(features: features, headDimension: headDimension, orthogonal: orthogonal, seed: seed)
    }

    static func draw(features: Int, headDimension: Int, orthogonal: Bool, seed: UInt64) -> Tensor {
        orthogonal ? RandomProjection.orthogonalGaussian(rows: features, columns: headDimension, seed: seed)
                   : RandomProjection.gaussian(rows: features, columns: headDimension, seed: seed)
    }

    /// The positive random features φ(x) [B, H, T, m] of queries or keys x [B, H, T, D].
    ///
    /// ```
    /// x̂ = x · D^(−1/4);  u_i = w_iᵀx̂
    /// φ(x)_i = (exp(u_i − ‖x̂‖²/2 − c) + ε) / √m,   c = max_i u_i per row (queries)
    ///                                               c = max over all rows and i (keys, per [B, H])
    /// ```
    ///
    /// Fused (one recorded op, ``implementation`` `.fused`) or composed of Tensor ops (`.reference`).
    public func features(of x: Tensor, isQuery: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == headDimension,
                     "Performer.features: input \(x.shape) is not [B, H, T, \(headDimension)]")
        switch implementation {
        case .fused: return FusedFeatureMaps.performer(x, projection: projection, isQuery: isQuery, featureEpsilon: featureEpsilon)
        case .reference: return referenceFeatures(of: x, isQuery: isQuery)
        }
    }

    /// The features composed of Tensor ops: the reference of the fused map.
    func referenceFeatures(of x: Tensor, isQuery: Bool) -> Tensor {
        let scaled = x * Float(Foundation.pow(Double(headDimension), -0.25))           // [B, H, T, D]
        let projected = Tensor.matmul(scaled, projection, transposeB: true)             // [B, H, T, m]
        let halfSquaredNorm = scaled.square().sum(axis: 3, keepDims: true) * 0.5        // [B, H, T, 1]
        let shift = isQuery ? projected.max(axis: 3, keepDims: true)                    // [B, H, T, 1]
                            : projected.max(axes: [2, 3], keepDims: true)               // [B, H, 1, 1]
        let positive = (projected - halfSquaredNorm - shift).exp() + featureEpsilon     // [B, H, T, m]
        return positive * Float(1 / Double(features).squareRoot())
    }

    /// FAVOR+ attention: bidirectional, or causal by chunked prefix sums.
    ///
    /// The fused implementation (the default) hands q and k to the kernels,
    /// which compute φ for each chunk of rows as they read it, forward and
    /// backward: no [B, H, T, m] feature tensors (512 MiB each at
    /// L = 65536, H = 8, m = 256). Only the keys' shift needs a pass of its
    /// own over the keys first.
    ///
    /// - Parameters:
    ///   - query: [B, H, Tq, D].
    ///   - key: [B, Hkv, Tk, D], Tk ≥ 1 (Tk ≥ Tq when causal).
    ///   - value: [B, Hkv, Tk, Dv].
    ///   - causal: query i sees keys j ≤ i + Tk − Tq (bottom-right alignment).
    ///   - chunkSize: positions per chunk of the causal scan (memory O(T·m·Dv / chunkSize)).
    /// - Returns: [B, H, Tq, Dv].
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, causal: Bool = false, chunkSize: Int = 64) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && query.shape[3] == headDimension && key.shape[3] == headDimension,
                     "Performer: query \(query.shape) and key \(key.shape) must be [B, H, T, \(headDimension)]")
        if implementation == .fused {
            // The kernels map q and k chunk by chunk: no [B, H, T, m] feature tensors. The keys'
            // shift (a maximum over each head's keys) comes from a first pass over the keys.
            let map = KernelizedAttention.PerformerMap(projection: projection, featureEpsilon: featureEpsilon, key: key)
            return KernelizedAttention.fused(queryFeatures: query, keyFeatures: key, value: value, causal: causal,
                                             chunkSize: causal ? chunkSize : 64, denominatorEpsilon: 0, decay: nil,
                                             featureMap: .performer(map))
        }
        let queryFeatures = features(of: query, isQuery: true)                          // [B, H, Tq, m]
        let keyFeatures = features(of: key, isQuery: false)                             // [B, Hkv, Tk, m]
        return causal
            ? KernelizedAttention.causal(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value, chunkSize: chunkSize,
                                         implementation: implementation)
            : KernelizedAttention.bidirectional(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value,
                                                implementation: implementation)
    }
}
