import Foundation
import HeedTensor

extension Normalizer {
    /// The weights of ``Normalizer/localPools(radius:semiSaturation:exponent:drive:)``:
    /// divisive normalisation in which each key is divided only by the drive of
    /// its own neighbourhood of keys — Heeger's normalisation pool, as the
    /// suppressive drive of Reynolds & Heeger (2009).
    ///
    /// ```
    /// Reynolds & Heeger (2009):  R(x) = E(x) / (S(x) + σ),   S = s ∗ E   (suppressive field s)
    ///
    /// here, for query i and key j, with E_ij = m_ij d_ijⁿ (d as for .divisive) and a box
    /// suppressive field of half-width r over key positions:
    ///   pool(j) = { k : |k − j| ≤ r }                       (clipped to 0..<Tk; holds j)
    ///   w_ij    = E_ij / (σⁿ + Σ_{k ∈ pool(j)} E_ik)
    /// ```
    ///
    /// The reading chosen. The pool is a neighbourhood of the *key* being
    /// weighted, within one query's row — the literal counterpart of a neuron
    /// normalised by its neighbours in the visual field (Carandini & Heeger,
    /// 2012, eq. 1 with the sum restricted to a pool). Keys then compete only
    /// with keys near them: a query can give high weight to several separated
    /// positions at once, each the winner of its own neighbourhood, which
    /// softmax cannot (one strong key suppresses every other). The other
    /// reading — pooling over neighbouring *queries* — would mix rows and tie
    /// a query's weights to its neighbours' scores; it was not taken because
    /// it breaks the per-query independence every other normalizer has.
    ///
    /// Consequences: a row need not sum to 1 (it can exceed 1, by up to about
    /// the number of disjoint pools, when several pools each hold a strong
    /// key); with radius ≥ Tk − 1 every pool is the whole row and the result is
    /// exactly ``Normalizer/divisive(semiSaturation:exponent:drive:)``; with
    /// radius 0 each key is normalised alone, w = E/(σⁿ + E).
    ///
    /// Computation. For the exponential drive each weight is a softmax over
    /// its pool plus the null key n·log σ, read at the pool's centre (stable
    /// for any score range):
    ///
    /// ```
    /// w_ij = softmax([n·s_i,j−r, …, n·s_ij, …, n·s_i,j+r, n·log σ])[r]   (out-of-range and masked keys: −inf)
    /// ```
    ///
    /// For the rectified drive the pooled sum is taken directly. Both build
    /// the [.., Tq, Tk, 2r + 1] neighbourhoods of the scores: the dense
    /// reference, O(Tq·Tk·r) memory.
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk]; −inf entries count as masked.
    ///   - mask: 0/1 broadcastable to `scores`, 1 = may attend; nil = all.
    ///   - radius: r ≥ 0, in key positions; values ≥ Tk − 1 mean the whole row.
    ///   - semiSaturation: σ > 0.
    ///   - exponent: n > 0 (exponential drive) or n ≥ 1 (rectified drive).
    /// - Returns: [.., Tq, Tk], non-negative. A row with nothing to attend to is
    ///   all zeros with zero gradient.
    static func localPoolWeights(_ scores: Tensor, mask: Tensor?, radius: Int, semiSaturation: Float,
                                 exponent: Float, drive: Drive) -> Tensor {
        checkDivisiveParameters(semiSaturation: semiSaturation, exponent: exponent, drive: drive, op: "localPools")
        precondition(radius >= 0, "localPools: the radius must be ≥ 0, got \(radius)")
        let keys = scores.shape[scores.rank - 1]
        let r = Swift.min(radius, Swift.max(keys - 1, 0))   // a wider pool holds nothing more
        let allowedScores = excluded(scores, mask)                                      // −inf where masked
        switch drive {
        case .exponential:
            let logits = exponent == 1 ? allowedScores : allowedScores * exponent         // [.., Tq, Tk]
            let pools = neighbourhoods(logits, radius: r, padding: -.infinity)           // [.., Tq, Tk, 2r+1]
            let nullShape = Array(pools.shape.dropLast()) + [1]
            let nullKey = Tensor.full(nullShape, exponent * Foundation.log(semiSaturation)) // [.., Tq, Tk, 1]
            let withNull = Tensor.concatenate([pools, nullKey], axis: -1)                // [.., Tq, Tk, 2r+2]
            let centre = withNull.softmax(axis: -1).sliced(axis: -1, start: r, end: r + 1) // [.., Tq, Tk, 1]
            return centre.squeezed(axis: -1)                                             // [.., Tq, Tk]
        case .rectified:
            let powered = rectifiedDrive(allowedScores, exponent: exponent)              // E  [.., Tq, Tk]
            let pooled = neighbourhoods(powered, radius: r, padding: 0).sum(axis: -1)    // [.., Tq, Tk]
            return powered / (pooled + Foundation.pow(semiSaturation, exponent))         // [.., Tq, Tk]
        }
    }

    /// The neighbourhoods along the last axis: out[.., j, d] = x[.., j − r + d]
    /// for d = 0…2r, and `padding` where j − r + d falls outside 0..<Tk.
    /// Recorded (slices and a stack), so gradients flow back to `x`.
    ///
    /// - Parameter x: [.., Tk].
    /// - Returns: [.., Tk, 2r + 1]; entry r is x itself.
    static func neighbourhoods(_ x: Tensor, radius r: Int, padding: Float) -> Tensor {
        let keys = x.shape[x.rank - 1]
        if r == 0 { return x.unsqueezed(axis: -1) }                                       // [.., Tk, 1]
        let padShape = Array(x.shape.dropLast()) + [r]
        let pad = Tensor.full(padShape, padding)                                          // [.., r]
        let padded = Tensor.concatenate([pad, x, pad], axis: -1)                          // [.., Tk + 2r]
        let shifted = (0...(2 * r)).map { padded.sliced(axis: -1, start: $0, end: $0 + keys) }  // each [.., Tk]
        return Tensor.stack(shifted, axis: -1)                                            // [.., Tk, 2r+1]
    }
}
