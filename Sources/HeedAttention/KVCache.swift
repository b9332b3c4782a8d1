import HeedTensor

/// Keys and values of past positions, for incremental decoding.
///
/// Each call of ``append(keys:values:)`` adds the new positions' keys and
/// values [B, Hkv, Tnew, D] and returns everything the new queries may attend
/// to. Appending is `concatenate`, so gradients flow through the cache into
/// the earlier steps' projections (training with a cache works).
///
/// **Sliding window.** With `window: W`, the cache keeps only the last W − 1
/// positions after each step (a rotating cache as in Mistral): enough for
/// queries that attend to themselves and the W − 1 positions before them, i.e.
/// ``Pattern/slidingWindow(left:right:)`` with `left: W − 1, right: 0`. The
/// outputs then equal those of recomputing the whole sequence with that
/// pattern. (The buffer is trimmed by a copy, amortised over the step, rather
/// than indexed circularly.)
public struct KVCache {
    /// Maximum positions attended by one query (nil = unbounded).
    public let window: Int?
    /// Cached keys [B, Hkv, T, D] (nil before the first step).
    public private(set) var keys: Tensor?
    /// Cached values [B, Hkv, T, Dv].
    public private(set) var values: Tensor?
    /// Positions seen so far: the position of the next query.
    public private(set) var position = 0
    /// Absolute position of the first cached key.
    public private(set) var start = 0

    /// An empty cache; `window` W keeps W − 1 past positions (nil: all).
    public init(window: Int? = nil) {
        precondition(window.map { $0 >= 1 } ?? true, "KVCache: window must be ≥ 1")
        self.window = window
    }

    /// Adds the new keys and values; returns all keys and values the new
    /// queries attend to, and the absolute position of the first of them.
    public mutating func append(keys newKeys: Tensor, values newValues: Tensor) -> (keys: Tensor, values: Tensor, start: Int) {
        precondition(newKeys.rank == 4 && newValues.rank == 4 && newKeys.shape[2] == newValues.shape[2],
                     "KVCache.append: keys \(newKeys.shape) and values \(newValues.shape) must be [B, Hkv, T, D] with equal T")
        let allKeys = keys.map { Tensor.concatenate([$0, newKeys], axis: 2) } ?? newKeys       // [B, Hkv, Tk, D]
        let allValues = values.map { Tensor.concatenate([$0, newValues], axis: 2) } ?? newValues
        let firstPosition = start
        position += newKeys.shape[2]
        if let window {
            let keep = Swift.min(window - 1, allKeys.shape[2])
            let total = allKeys.shape[2]
            keys = allKeys.sliced(axis: 2, start: total - keep, end: total)
            values = allValues.sliced(axis: 2, start: total - keep, end: total)
            start = position - keep
        } else {
            keys = allKeys
            values = allValues
        }
        return (allKeys, allValues, firstPosition)
    }
}
