import CHeedKernels
import HeedTensor

/// The dropout mask of attention weights, shared by every engine.
///
/// Element (b, h, i, j) — batch element b, query head h, query i, key j — is
/// a pure function of the seed and its coordinates, drawn from Philox4x32-10
/// (the generator of ``Philox/block(counter:key:)``):
///
/// ```
/// (w₀, w₁, w₂, w₃) = Philox4x32-10(counter: (⌊j/4⌋, i, h, b), key: (seed low 32 bits, seed high 32 bits))
/// u = (w_{j mod 4} >> 8) · 2⁻²⁴                  uniform in [0, 1), as RandomGenerator.nextUniform
/// multiplier = 0 if u < p, else 1/(1 − p)         (inverted dropout, Srivastava et al., 2014)
/// ```
///
/// So the dense engine (which multiplies the whole [B, H, Tq, Tk] weights by
/// ``mask(seed:probability:batch:heads:queryLength:keyLength:)``) and the
/// flash engine (which draws the same multipliers one tile at a time, in the
/// forward and again in the backward) drop exactly the same weights for the
/// same seed, whatever the tile sizes or thread order. p = 0 keeps everything
/// (multiplier 1); p = 1 drops everything (multiplier 0). Indices must stay
/// below 2³² (i, h, b) and 2³⁴ (j).
public enum AttentionDropout {
    /// The multipliers of one tile: queries `rows` × keys `columns` of batch
    /// element `batch`, head `head`, row-major [rows.count, columns.count].
    public static func mask(seed: UInt64, probability: Float, batch: Int, head: Int,
                            rows: Range<Int>, columns: Range<Int>) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows.count * columns.count) { buffer, count in
            fill(seed: seed, probability: probability, batch: batch, head: head, rows: rows, columns: columns,
                 into: buffer.baseAddress!, stride: columns.count)
            count = rows.count * columns.count
        }
    }

    /// Every multiplier: [B, H, Tq, Tk], no gradient.
    public static func mask(seed: UInt64, probability: Float, batch: Int, heads: Int,
                            queryLength: Int, keyLength: Int) -> Tensor {
        Tensor(shape: [batch, heads, queryLength, keyLength], unsafeUninitializedFill: { buffer in
            guard let base = buffer.baseAddress else { return }
            for b in 0 ..< batch {
                for h in 0 ..< heads {
                    fill(seed: seed, probability: probability, batch: b, head: h, rows: 0 ..< queryLength,
                         columns: 0 ..< keyLength, into: base + (b * heads + h) * queryLength * keyLength, stride: keyLength)
                }
            }
        })
    }

    /// Writes the multipliers of a tile into `out` (row stride `stride`).
    static func fill(seed: UInt64, probability: Float, batch: Int, head: Int, rows: Range<Int>, columns: Range<Int>,
                     into out: UnsafeMutablePointer<Float>, stride: Int) {
        precondition(probability >= 0 && probability <= 1, "AttentionDropout: probability \(probability) outside [0, 1]")
        heed_dropout_keep_tile(seed, probability, Int64(batch), Int64(head), Int64(rows.lowerBound), Int64(columns.lowerBound),
                               Int64(rows.count), Int64(columns.count), out, Int64(stride))
    }
}
