import Foundation
import HeedTensor

/// Linformer attention (Wang et al., 2020, "Linformer: Self-Attention with
/// Linear Complexity"): keys and values are projected along the length axis
/// from n to k positions by learned matrices E and F, then ordinary softmax
/// attention runs against the k projected positions — O(n·k) instead of O(n²):
///
/// ```
/// head = softmax( Q (E K)ᵀ / √D ) · (F V)          // eq. 7, E, F ∈ ℝ^{k×n}
/// ```
///
/// E and F are either shared by all heads ([k, n], the paper's headwise
/// sharing) or one per key/value head ([Hkv, k, n]); with
/// ``init(sequenceLength:projectedLength:sharesKeyValueProjection:seed:)``'s
/// `sharesKeyValueProjection` E = F is one tensor (key-value sharing, §4).
/// With k = n and E = F = I the result is exactly full softmax attention.
///
/// The softmax stage is the dense engine ``attention`` (scaled dot by
/// default; temperature, dropout and grouped-query heads work as there). Its
/// pattern must stay ``Pattern/full``: after the projection a key position no
/// longer is a sequence position, so masks do not apply.
///
/// Shapes: q [B, H, Tq, D], k [B, Hkv, n, D], v [B, Hkv, n, Dv] with Hkv
/// dividing H → [B, H, Tq, Dv]. n is fixed by the projections (the paper
/// pads shorter sequences to n); every query attends to all k projected
/// positions, so no row is empty.
public struct Linformer {
    /// E: [k, n] or [Hkv, k, n].
    public var keyProjection: Tensor
    /// F: same shape as E (the same tensor when shared).
    public var valueProjection: Tensor
    /// The softmax attention run on the projected keys and values.
    public var attention: Attention

    /// n, the sequence length the projections expect.
    public var sequenceLength: Int { keyProjection.shape[keyProjection.rank - 1] }
    /// k, the projected length.
    public var projectedLength: Int { keyProjection.shape[keyProjection.rank - 2] }

    /// A Linformer with given projections E and F (pass the same tensor twice
    /// for E = F). They keep their `requiresGrad`.
    public init(keyProjection: Tensor, valueProjection: Tensor, attention: Attention = Attention()) {
        precondition(keyProjection.rank == 2 || keyProjection.rank == 3,
                     "Linformer: projections must be [k, n] or [Hkv, k, n], got \(keyProjection.shape)")
        precondition(valueProjection.shape == keyProjection.shape,
                     "Linformer: key projection \(keyProjection.shape) and value projection \(valueProjection.shape) differ")
        precondition(attention.pattern.isFull, "Linformer: the pattern must be full (projected positions are not sequence positions)")
        self.keyProjection = keyProjection
        self.valueProjection = valueProjection
        self.attention = attention
    }

    /// A Linformer with projections drawn from Philox by `seed`, initialised as
    /// the authors' code does (Xavier-uniform with gain 1/√2):
    /// E, F ~ U(−a, a), a = √(3 / (n + k)); E first, then F (unless shared).
    /// The projections require gradients.
    ///
    /// - Parameters:
    ///   - sequenceLength: n.
    ///   - projectedLength: k.
    ///   - heads: nil for one E, F shared by all heads; else Hkv projections.
    ///   - sharesKeyValueProjection: E = F (one tensor).
    public init(sequenceLength n: Int, projectedLength k: Int, heads: Int? = nil, sharesKeyValueProjection: Bool = false,
                seed: UInt64, attention: Attention = Attention()) {
        precondition(n >= 1 && k >= 1, "Linformer: sequence length \(n) and projected length \(k) must be ≥ 1")
        let shape = heads.map { [$0, k, n] } ?? [k, n]
        let bound = Float((3 / Double(n + k)).squareRoot())
        var generator = RandomGenerator(seed: seed)
        let e = Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator, requiresGrad: true)
        let f = sharesKeyValueProjection ? e : Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator, requiresGrad: true)
        self.init(keyProjection: e, valueProjection: f, attention: attention)
    }

    /// Whether E and F are one tensor.
    public var sharesKeyValueProjection: Bool { keyProjection === valueProjection }

    /// Projects x [B, Hkv, n, D] along its length: P x → [B, Hkv, k, D].
    func project(_ x: Tensor, with projection: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[2] == sequenceLength,
                     "Linformer: input \(x.shape) has not the n = \(sequenceLength) positions the projections expect")
        if projection.rank == 2 { return projection.matmul(x) }                      // [B, Hkv, k, D]
        precondition(projection.shape[0] == x.shape[1],
                     "Linformer: \(projection.shape[0]) head projections for \(x.shape[1]) key/value heads")
        return projection.unsqueezed(axis: 0).matmul(x)                                // [B, Hkv, k, D]
    }

    /// Linformer attention (eq. 7).
    ///
    /// - Parameters:
    ///   - query: [B, H, Tq, D].
    ///   - key: [B, Hkv, n, D].
    ///   - value: [B, Hkv, n, Dv].
    /// - Returns: [B, H, Tq, Dv].
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor) -> Tensor {
        let projectedKey = project(key, with: keyProjection)                          // [B, Hkv, k, D]
        let projectedValue = project(value, with: valueProjection)                    // [B, Hkv, k, Dv]
        return attention(query: query, key: projectedKey, value: projectedValue).output   // [B, H, Tq, Dv]
    }
}
