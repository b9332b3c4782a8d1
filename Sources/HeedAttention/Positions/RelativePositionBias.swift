import Foundation
import HeedTensor

/// T5's learned relative position bias (Raffel et al., 2020, §2.1): each head
/// learns one scalar per *bucket* of relative distance, added to its scores.
///
/// ```
/// r = j − p_i                                        key position minus query position
/// bias[0, h, i, j] = table[bucket(r), h]
/// ∂table[b, h] = Σ over (i, j) with bucket(j − p_i) = b of g[·, h, i, j]
/// ```
///
/// `bucket` is T5's `_relative_position_bucket` (Mesh TensorFlow; Hugging Face
/// `T5Attention._relative_position_bucket`), with N = `numBuckets` and
/// M = `maxDistance`:
///
/// ```
/// bidirectional:  N′ = ⌊N/2⌋;  offset = N′ if r > 0 else 0;  n = |r|
/// causal:         N′ = N;      offset = 0;                   n = max(−r, 0)   (keys ahead share bucket 0)
/// E = ⌊N′/2⌋                                                 exact buckets
/// bucket = offset + n                                                       if n < E
///        = offset + min(N′ − 1, E + ⌊log(n/E) / log(M/E) · (N′ − E)⌋)      otherwise
/// ```
///
/// so distances below E get a bucket each, larger ones share log-spaced
/// buckets, and everything beyond M falls in the last bucket. The logarithm
/// branch is evaluated in f32 exactly as the reference (`float()` division,
/// f32 log, division by log(M/E) rounded to f32, truncation toward zero), so
/// distances on a bucket boundary land where T5 puts them.
///
/// **Query positions**: query i sits at `queryOffset + i`, keys at `0 ..< Tk`
/// (``AttentionBias``); with a KV cache pass `queryOffset = Tk − Tq`.
///
/// The bias is finite; a row the pattern masks entirely gets zeros (and zero
/// gradients, for the table too) from the normalizer.
public struct RelativePositionBias: AttentionBias {
    /// H, the number of query heads.
    public let heads: Int
    /// N, the number of buckets (32 in T5).
    public let numBuckets: Int
    /// M, the distance from which every distance shares the last bucket (128 in T5).
    public let maxDistance: Int
    /// Whether keys before and after the query get separate buckets (T5's
    /// encoder) or only the past is distinguished (T5's decoder self-attention).
    public let bidirectional: Bool
    /// [N, H], `requiresGrad`: the learned scalar per bucket and head.
    public let table: Tensor
    /// `bucket(−n)` for n in 0 ... M: the bucket of a distance n into the past
    /// (no offset); every n ≥ M shares `distanceBuckets[M]` (the last bucket).
    let distanceBuckets: [Int]

    /// - Parameters:
    ///   - heads: H ≥ 1.
    ///   - numBuckets: N; at least 4 when bidirectional and 2 when causal, so
    ///     that there is at least one exact bucket.
    ///   - maxDistance: M, larger than the number of exact buckets E.
    ///   - bidirectional: true for encoders, false for causal decoders.
    ///   - table: an existing [N, H] table (e.g. from a checkpoint), used as
    ///     is; when nil, a fresh N(0, 0.02²) table from Philox with `seed`,
    ///     with `requiresGrad` set.
    ///   - seed: the generator seed for a fresh table.
    public init(heads: Int, numBuckets: Int = 32, maxDistance: Int = 128, bidirectional: Bool,
                table: Tensor? = nil, seed: UInt64 = 0) {
        precondition(heads >= 1, "RelativePositionBias: heads \(heads) must be at least 1")
        let exact = (bidirectional ? numBuckets / 2 : numBuckets) / 2
        precondition(exact >= 1,
                     "RelativePositionBias: \(numBuckets) buckets leave no exact bucket (need ≥ \(bidirectional ? 4 : 2))")
        precondition(maxDistance > exact,
                     "RelativePositionBias: maxDistance \(maxDistance) must exceed the \(exact) exact buckets")
        self.heads = heads
        self.numBuckets = numBuckets
        self.maxDistance = maxDistance
        self.bidirectional = bidirectional
        self.distanceBuckets = (0 ... maxDistance).map {
            RelativePositionBias.bucket(relativePosition: -$0, bidirectional: bidirectional,
                                        numBuckets: numBuckets, maxDistance: maxDistance)
        }
        if let table {
            precondition(table.shape == [numBuckets, heads],
                         "RelativePositionBias: table shape \(table.shape) should be [\(numBuckets), \(heads)]")
            self.table = table
        } else {
            self.table = Tensor.randomNormal([numBuckets, heads], std: 0.02, seed: seed, requiresGrad: true)
        }
    }

    /// T5's bucket of one relative position r = key position − query position.
    /// - Returns: a bucket in `0 ..< numBuckets`.
    public static func bucket(relativePosition r: Int, bidirectional: Bool, numBuckets: Int, maxDistance: Int) -> Int {
        var buckets = numBuckets, result = 0, n: Int
        if bidirectional {
            buckets /= 2
            if r > 0 { result += buckets }
            n = Swift.abs(r)
        } else {
            n = Swift.max(-r, 0)
        }
        let exact = buckets / 2
        if n < exact { return result + n }
        // The reference's f32 arithmetic, step by step.
        let ratio = Float(n) / Float(exact)
        let scale = Float(Foundation.log(Double(maxDistance) / Double(exact)))
        let large = Float(exact) + (Foundation.log(ratio) / scale * Float(buckets - exact)).rounded(.towardZero)
        return result + Int(Swift.min(large, Float(buckets - 1)))
    }

    /// The bucket of every (query, key) pair.
    /// - Returns: [Tq, Tk] bucket ids in `0 ..< numBuckets`.
    public func buckets(queryLength: Int, keyLength: Int, queryOffset: Int) -> IndexTensor {
        precondition(queryLength >= 0 && keyLength >= 0,
                     "RelativePositionBias: negative lengths \(queryLength), \(keyLength)")
        // One bucket per distinct relative position, then spread over the pairs.
        let lowest = -(queryOffset + queryLength - 1), highest = keyLength - 1 - queryOffset
        let perDistance = lowest <= highest
            ? (lowest ... highest).map { RelativePositionBias.bucket(relativePosition: $0, bidirectional: bidirectional,
                                                                       numBuckets: numBuckets, maxDistance: maxDistance) }
            : []
        var ids = [Int](repeating: 0, count: queryLength * keyLength)
        for i in 0 ..< queryLength {
            for j in 0 ..< keyLength { ids[i * keyLength + j] = perDistance[j - (queryOffset + i) - lowest] }
        }
        return IndexTensor(ids, shape: [queryLength, keyLength])
    }

    /// The bias for queries at `queryOffset ..< queryOffset + Tq` and keys at `0 ..< Tk`.
    /// - Parameter heads: must equal ``heads``.
    /// - Returns: [1, H, Tq, Tk], differentiable with respect to ``table``.
    public func bias(heads: Int, queryLength: Int, keyLength: Int, queryOffset: Int) -> Tensor {
        precondition(heads == self.heads, "RelativePositionBias: built for \(self.heads) heads, asked for \(heads)")
        let ids = buckets(queryLength: queryLength, keyLength: keyLength, queryOffset: queryOffset)
        return table.embedding(ids)                 // [Tq, Tk, H]
            .permuted([2, 0, 1])                    // [H, Tq, Tk]
            .unsqueezed(axis: 0)                    // [1, H, Tq, Tk]
    }

    // MARK: Tiles (for the flash engine)

    /// The bucket of relative position r = key − query, from the per-distance
    /// table: equal to ``bucket(relativePosition:bidirectional:numBuckets:maxDistance:)``
    /// (the log branch is monotone in n, so every n ≥ M lands where n = M does,
    /// the last bucket).
    func tableBucket(relativePosition r: Int) -> Int {
        if bidirectional {
            let n = Swift.abs(r)
            return (r > 0 ? numBuckets / 2 : 0) + distanceBuckets[Swift.min(n, maxDistance)]
        }
        return distanceBuckets[Swift.min(Swift.max(-r, 0), maxDistance)]
    }

    /// Adds head `head`'s bias for one tile — queries `rows` × keys `columns`
    /// (positions `queryOffset + rows`) — to `out` (row-major, leading
    /// dimension `columns.count`): `table[bucket(j − p_i), head]`, read once
    /// per distinct relative position, with no [Tq, Tk] allocation. `batch` is ignored.
    ///
    /// **Forward only.** ``table`` usually requires gradients, and this records
    /// none: an engine that uses it must route the table's gradient itself —
    /// accumulate ∂L/∂bias tile by tile with
    /// ``accumulateTableGradient(fromTileGradient:head:rows:columns:queryOffset:into:)``
    /// and return the [N, H] sum as the table's gradient (e.g. from the
    /// backward of a `Tensor.custom` op that lists ``table`` among its inputs).
    public func addTile(batch: Int, head: Int, heads: Int, rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int,
                        queryOffset: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(heads == self.heads, "RelativePositionBias: built for \(self.heads) heads, asked for \(heads)")
        precondition(head >= 0 && head < heads, "RelativePositionBias: head \(head) of \(heads)")
        checkBiasTile(rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength)
        table.withUnsafeScalars { values in                                       // [N, H]
            addToeplitzTile(rows: rows, columns: columns, queryOffset: queryOffset, into: out) { relative in
                values[tableBucket(relativePosition: relative) * heads + head]
            }
        }
    }

    /// Scatters one tile of ∂L/∂bias into a gradient of the table: the
    /// backward of ``addTile(batch:head:heads:rows:columns:queryLength:keyLength:queryOffset:into:)``.
    ///
    /// ```
    /// tableGradient[bucket(j − p_i), head] += tileGradient[r, c]     i = rows[r], j = columns[c], p_i = queryOffset + i
    /// ```
    ///
    /// Sums each diagonal of the tile first (one relative position each), then
    /// adds it to its bucket. Summed over every tile, batch element and head
    /// of an attention call, the buffer is ∂L/∂``table``.
    ///
    /// - Parameters:
    ///   - tileGradient: ∂L/∂bias for the tile, row-major, leading dimension `columns.count`.
    ///   - head: the head the tile belongs to.
    ///   - tableGradient: an [N, H] row-major buffer (``table``'s layout), added to.
    ///     Not synchronised: give each thread its own buffer and sum them.
    public func accumulateTableGradient(fromTileGradient tileGradient: UnsafePointer<Float>, head: Int,
                                        rows: Range<Int>, columns: Range<Int>, queryOffset: Int,
                                        into tableGradient: UnsafeMutablePointer<Float>) {
        precondition(head >= 0 && head < heads, "RelativePositionBias: head \(head) of \(heads)")
        sumToeplitzTile(tileGradient, rows: rows, columns: columns, queryOffset: queryOffset) { relative, sum in
            tableGradient[tableBucket(relativePosition: relative) * heads + head] += sum
        }
    }
}
