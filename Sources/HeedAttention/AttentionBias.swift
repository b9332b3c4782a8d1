import HeedTensor

/// Non-content amplification: an additive bias on the scores that depends on
/// positions or is given outright (ALiBi, T5 relative buckets, a float mask).
public protocol AttentionBias {
    /// The bias, broadcastable to [B, H, Tq, Tk], for queries at positions
    /// `queryOffset ..< queryOffset + Tq` and keys at `0 ..< Tk`.
    func bias(heads: Int, queryLength: Int, keyLength: Int, queryOffset: Int) -> Tensor
}

/// A given additive bias (e.g. a float mask with −inf), broadcastable to [B, H, Tq, Tk].
public struct AdditiveBias: AttentionBias {
    /// The bias, broadcastable to [B, H, Tq, Tk].
    public let values: Tensor
    /// Wraps a bias tensor.
    public init(_ values: Tensor) { self.values = values }
    /// The stored bias, whatever the positions.
    public func bias(heads: Int, queryLength: Int, keyLength: Int, queryOffset: Int) -> Tensor { values }
}
