import Foundation
import HeedTensor

/// Rotary position embeddings, RoPE (Su et al., 2021, "RoFormer", §3.4.2, eq. 34).
///
/// Each pair of features (a, b) of a query or key at position m is rotated by
/// the angle m·θ_i, so that the score of a query at m and a key at n depends on
/// their content and on m − n only:
///
/// ```
/// θ_i = base^(−2i/R)                     i = 0 ..< R/2,   R = rotaryDimension
/// a′ = a · cos(mθ_i) − b · sin(mθ_i)
/// b′ = b · cos(mθ_i) + a · sin(mθ_i)
/// ⟨rope(q, m), rope(k, n)⟩ = qᵀ R_Θ(n − m) k        (a function of n − m, §3.4.1)
/// ```
///
/// which is eq. 34's `x ⊗ cos(mΘ) + rotate(x) ⊗ sin(mΘ)` written per pair.
/// Which features form a pair is the ``Convention``:
///
/// - ``Convention/halfSplit``: feature i pairs with i + R/2 (GPT-NeoX, Llama,
///   Hugging Face's `rotate_half`).
/// - ``Convention/interleaved``: feature 2i pairs with 2i + 1 (the paper's
///   eq. 34, GPT-J).
///
/// The two give the same attention scores for the same model only after the
/// projection weights are permuted accordingly; checkpoints must use the
/// convention they were trained with.
///
/// **Partial rotation**: only the first R = `rotaryDimension` features are
/// rotated (GPT-NeoX's `rotary_pct`, GPT-J's `rotary_dim`); features R ..< D
/// pass through. The frequencies use R, as those models do.
///
/// Angles m·θ_i, their cosines and sines are computed in `Double` and rounded
/// once to `Float`; the rotation itself composes differentiable ops (slices,
/// products with constant tables, concatenation), so gradients flow to `x`:
/// ∂x is the inverse rotation of the incoming gradient.
public struct Rotary {
    /// Which features are rotated together.
    public enum Convention: Sendable {
        /// Feature i pairs with i + R/2 (GPT-NeoX, Llama, HF `rotate_half`).
        case halfSplit
        /// Feature 2i pairs with 2i + 1 (RoFormer eq. 34, GPT-J).
        case interleaved
    }

    /// D, the size of the last axis of the tensors to rotate.
    public let headDimension: Int
    /// R, how many leading features are rotated (even, ≤ D).
    public let rotaryDimension: Int
    /// The wavelength base (10000 in the paper; 500000 in Llama 3).
    public let base: Double
    /// Pairing of features.
    public let convention: Convention

    /// - Parameters:
    ///   - headDimension: D ≥ 2.
    ///   - base: > 0.
    ///   - convention: `.halfSplit` (Llama/NeoX) by default.
    ///   - rotaryDimension: R, even, `2 ≤ R ≤ D`; nil means R = D (then D must be even).
    public init(headDimension: Int, base: Double = 10000, convention: Convention = .halfSplit, rotaryDimension: Int? = nil) {
        let r = rotaryDimension ?? headDimension
        precondition(r >= 2 && r % 2 == 0 && r <= headDimension,
                     "Rotary: rotaryDimension \(r) must be even and in 2...\(headDimension) (headDimension)")
        precondition(base > 0, "Rotary: base \(base) must be positive")
        self.headDimension = headDimension
        self.rotaryDimension = r
        self.base = base
        self.convention = convention
    }

    /// θ_i = base^(−2i/R) for i in 0 ..< R/2.
    public var frequencies: [Double] {
        (0 ..< rotaryDimension / 2).map { Foundation.pow(base, -2 * Double($0) / Double(rotaryDimension)) }
    }

    /// The rotation tables for the given positions, cos(p·θ_i) and sin(p·θ_i).
    /// - Returns: two [N, R/2] constants for N positions.
    public func tables(positions: [Int]) -> (cos: Tensor, sin: Tensor) {
        let thetas = frequencies, half = thetas.count
        var cosines = [Float](repeating: 0, count: positions.count * half)
        var sines = cosines
        for (row, position) in positions.enumerated() {
            for (i, theta) in thetas.enumerated() {
                let angle = Double(position) * theta
                cosines[row * half + i] = Float(Foundation.cos(angle))
                sines[row * half + i] = Float(Foundation.sin(angle))
            }
        }
        return (Tensor(cosines, shape: [positions.count, half]), Tensor(sines, shape: [positions.count, half]))
    }

    /// Rotates queries or keys at positions `offset ..< offset + T`.
    ///
    /// With a KV cache, rotate the new queries and keys with `offset` = the
    /// number of tokens already cached (keys are cached after rotation).
    /// - Parameters:
    ///   - x: [..., T, D], rank ≥ 2; usually [B, H, T, D].
    ///   - offset: the position of the first row along T.
    /// - Returns: the shape of `x`, differentiable with respect to `x`.
    public func apply(_ x: Tensor, offset: Int = 0) -> Tensor {
        precondition(x.rank >= 2, "Rotary.apply: expected [..., T, D], got \(x.shape)")
        let t = x.shape[x.rank - 2]
        return apply(x, positions: Array(offset ..< offset + t))
    }

    /// Rotates `x` whose rows along T sit at arbitrary `positions` (packed
    /// sequences, rotating caches).
    /// - Parameters:
    ///   - x: [..., T, D], rank ≥ 2.
    ///   - positions: T integers.
    /// - Returns: the shape of `x`.
    public func apply(_ x: Tensor, positions: [Int]) -> Tensor {
        precondition(x.rank >= 2 && x.shape[x.rank - 1] == headDimension,
                     "Rotary.apply: expected [..., T, \(headDimension)], got \(x.shape)")
        precondition(x.shape[x.rank - 2] == positions.count,
                     "Rotary.apply: \(positions.count) positions for T = \(x.shape[x.rank - 2]) in \(x.shape)")
        let r = rotaryDimension, half = r / 2
        let (cosines, sines) = tables(positions: positions)                        // [T, R/2] each
        let rotating = r == headDimension ? x : x.sliced(axis: -1, start: 0, end: r)  // [..., T, R]

        let rotated: Tensor
        switch convention {
        case .halfSplit:
            let first = rotating.sliced(axis: -1, start: 0, end: half)             // [..., T, R/2]
            let second = rotating.sliced(axis: -1, start: half, end: r)            // [..., T, R/2]
            rotated = Tensor.concatenate([first * cosines - second * sines,
                                          second * cosines + first * sines], axis: -1)  // [..., T, R]
        case .interleaved:
            let pairs = rotating.reshaped(Array(rotating.shape.dropLast()) + [half, 2])  // [..., T, R/2, 2]
            let even = pairs.sliced(axis: -1, start: 0, end: 1)                    // [..., T, R/2, 1]
            let odd = pairs.sliced(axis: -1, start: 1, end: 2)                     // [..., T, R/2, 1]
            let c = cosines.unsqueezed(axis: -1), s = sines.unsqueezed(axis: -1)   // [T, R/2, 1]
            rotated = Tensor.concatenate([even * c - odd * s, odd * c + even * s], axis: -1)  // [..., T, R/2, 2]
                .reshaped(rotating.shape)                                          // [..., T, R]
        }
        if r == headDimension { return rotated }
        return Tensor.concatenate([rotated, x.sliced(axis: -1, start: r, end: headDimension)], axis: -1)  // [..., T, D]
    }
}
/// `MultiHeadAttention.positionTransform` takes a ``Rotary``: it rotates the new
/// queries and keys at the KV cache's position before they are cached.
extension Rotary: PositionTransform {}
