import HeedTensor

/// Non-content amplification: an additive bias on the scores that depends on
/// positions or is given outright (ALiBi, T5 relative buckets, a float mask).
public protocol AttentionBias {
    /// The bias, broadcastable to [B, H, Tq, Tk], for queries at positions
    /// `queryOffset ..< queryOffset + Tq` and keys at `0 ..< Tk`.
    func bias(heads: Int, queryLength: Int, keyLength: Int, queryOffset: Int) -> Tensor

    /// Adds the bias of one tile — queries `rows` × keys `columns` of batch
    /// element `batch`, head `head` of `heads` — to `out` (row-major, leading
    /// dimension `columns.count`), for the flash engine.
    ///
    /// ```
    /// out[r, c] += bias(heads, Tq, Tk, queryOffset)[batch, head, rows[r], columns[c]]   (broadcast)
    /// ```
    ///
    /// Forward only: values, no gradient is recorded (see
    /// `RelativePositionBias.accumulateTableGradient(fromTileGradient:head:rows:columns:queryOffset:into:)`
    /// for a learned table). The default implementation (in `AttentionBias+Tiles.swift`)
    /// slices ``bias(heads:queryLength:keyLength:queryOffset:)``, which it calls
    /// on every call; ALiBi and T5 compute their tiles in closed form.
    func addTile(batch: Int, head: Int, heads: Int, rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int,
                 queryOffset: Int, into out: UnsafeMutablePointer<Float>)
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
