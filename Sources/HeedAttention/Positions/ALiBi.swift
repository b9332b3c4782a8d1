import Foundation
import HeedTensor

/// Attention with Linear Biases, ALiBi (Press, Smith & Lewis, 2022, §3):
/// no position embeddings; each head h adds to its scores a penalty
/// proportional to the distance between query and key.
///
/// ```
/// bias[h, i, j] = −m_h · (p_i − j)             (the paper, for causal attention)
/// bias[h, i, j] = −m_h · |p_i − j|             (symmetric: true, bidirectional)
/// p_i = queryOffset + i                         (query i's position; keys sit at 0 ..< Tk)
/// ```
///
/// **Slopes** m_h (h = 0 ..< H), as the authors' reference `get_slopes`
/// (ofirpress/attention_with_linear_biases, `fairseq/models/transformer.py`,
/// `TransformerDecoder.__init__`):
///
/// ```
/// H a power of two:  m_h = 2^(−8(h+1)/H)                     (geometric, start = ratio = 2^(−8/H))
/// otherwise:         P = 2^⌊log₂ H⌋;  the P slopes for P heads, then
///                    every other slope for 2P heads, 2^(−4(2k+1)/P), k = 0 ..< H − P
/// ```
///
/// e.g. H = 8 → 1/2, 1/4, …, 1/256; H = 12 → the 8 above, then 2^(−0.5), 2^(−1.5), 2^(−2.5), 2^(−3.5).
///
/// **Query positions.** As ``AttentionBias`` specifies, query i sits at
/// `queryOffset + i` and key j at j. With a KV cache that holds every earlier
/// token, pass `queryOffset = Tk − Tq`: the last query then lines up with the
/// last key (the bottom-right alignment of `Pattern.causal(.bottomRight)`).
/// For the causal (non-symmetric) form the choice cannot change softmax
/// weights — p_i enters as a constant per row, which softmax ignores, which is
/// why the reference adds only m_h·j — but it does change the raw scores, and
/// it matters for the symmetric form.
///
/// **Keys after the query** (j > p_i) get the positive bias m_h·(j − p_i) in
/// the causal form: ALiBi is meant to be combined with a causal pattern, which
/// masks them. For bidirectional attention use `symmetric: true` (the variant
/// discussed for encoders in the reference repository, issue 5; MosaicBERT
/// uses it).
///
/// The bias is a finite constant (no gradient); masking is the pattern's job,
/// and a row with no allowed key gets zeros from the normalizer, whatever the bias.
public struct ALiBi: AttentionBias {
    /// H, the number of query heads (one slope each).
    public let heads: Int
    /// Whether the penalty is −m·|p_i − j| (bidirectional) instead of −m·(p_i − j).
    public let symmetric: Bool
    /// m_h for h = 0 ..< H, rounded to `Float`.
    public let slopes: [Float]

    /// - Parameters:
    ///   - heads: H ≥ 1, any count (see the slopes rule above).
    ///   - symmetric: false (the paper's causal form) by default.
    public init(heads: Int, symmetric: Bool = false) {
        precondition(heads >= 1, "ALiBi: heads \(heads) must be at least 1")
        self.heads = heads
        self.symmetric = symmetric
        self.slopes = ALiBi.slopes(heads: heads).map(Float.init)
    }

    /// The reference slopes for `heads` heads, in `Double`.
    public static func slopes(heads: Int) -> [Double] {
        precondition(heads >= 1, "ALiBi.slopes: heads \(heads) must be at least 1")
        // Power of two P: start = ratio = 2^(−8/P), slope h = start · ratio^h.
        func geometric(_ count: Int) -> [Double] {
            (0 ..< count).map { Foundation.pow(2, -8 * Double($0 + 1) / Double(count)) }
        }
        var closestPowerOfTwo = 1
        while closestPowerOfTwo * 2 <= heads { closestPowerOfTwo *= 2 }
        if closestPowerOfTwo == heads { return geometric(heads) }
        // The reference: get_slopes(P) + get_slopes(2P)[0::2][:H − P].
        let doubled = geometric(2 * closestPowerOfTwo)
        let interleaved = stride(from: 0, to: doubled.count, by: 2).map { doubled[$0] }
        return geometric(closestPowerOfTwo) + interleaved.prefix(heads - closestPowerOfTwo)
    }

    /// The bias for queries at `queryOffset ..< queryOffset + Tq` and keys at `0 ..< Tk`.
    /// - Parameter heads: must equal ``heads``.
    /// - Returns: [1, H, Tq, Tk], no gradient.
    public func bias(heads: Int, queryLength: Int, keyLength: Int, queryOffset: Int) -> Tensor {
        precondition(heads == self.heads, "ALiBi: built for \(self.heads) heads, asked for \(heads)")
        precondition(queryLength >= 0 && keyLength >= 0,
                     "ALiBi: negative lengths \(queryLength), \(keyLength)")
        let (tq, tk) = (queryLength, keyLength)
        var values = [Float](repeating: 0, count: heads * tq * tk)
        for h in 0 ..< heads {
            let slope = slopes[h]
            for i in 0 ..< tq {
                let row = (h * tq + i) * tk
                for j in 0 ..< tk {
                    let distance = queryOffset + i - j
                    // f32 product of the f32 slope and the exact integer distance, as PyTorch forms it.
                    values[row + j] = -slope * Float(symmetric ? Swift.abs(distance) : distance)
                }
            }
        }
        return Tensor(values, shape: [1, heads, tq, tk])
    }

    /// Adds head `head`'s bias for one tile — queries `rows` × keys `columns` —
    /// to `out` (row-major, leading dimension `columns.count`), in closed form:
    /// the same f32 values as ``bias(heads:queryLength:keyLength:queryOffset:)``
    /// without any [Tq, Tk] allocation (one value per distinct distance).
    /// No parameters, so nothing to differentiate; `batch` is ignored.
    public func addTile(batch: Int, head: Int, heads: Int, rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int,
                        queryOffset: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(heads == self.heads, "ALiBi: built for \(self.heads) heads, asked for \(heads)")
        precondition(head >= 0 && head < heads, "ALiBi: head \(head) of \(heads)")
        checkBiasTile(rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength)
        let slope = slopes[head], symmetric = symmetric
        addToeplitzTile(rows: rows, columns: columns, queryOffset: queryOffset, into: out) { relative in
            let distance = -relative                                   // p_i − j
            return -slope * Float(symmetric ? Swift.abs(distance) : distance)
        }
    }
}
