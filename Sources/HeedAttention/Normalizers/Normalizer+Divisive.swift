import Foundation
import HeedTensor

extension Normalizer {
    /// The weights of ``Normalizer/divisive(semiSaturation:exponent:drive:)``:
    /// divisive normalisation of every query's row with a semi-saturation
    /// constant (Carandini & Heeger, 2012, eq. 1; the normalisation model of
    /// attention of Reynolds & Heeger, 2009).
    ///
    /// ```
    /// Carandini & Heeger (2012) eq. 1:   R_j = γ D_jⁿ / (σⁿ + Σ_k D_kⁿ)
    ///
    /// here, for query i and key j (γ = 1; the sum runs over the allowed keys):
    ///   w_ij = m_ij d_ijⁿ / (σⁿ + Σ_k m_ik d_ikⁿ)
    ///   d_ij = exp(s_ij)          drive .exponential   (n > 0)
    ///   d_ij = max(s_ij, 0)       drive .rectified     (n ≥ 1)
    ///
    /// Σ_j w_ij = D / (σⁿ + D) < 1,  D = Σ_k m_ik d_ikⁿ
    /// ```
    ///
    /// Why these drives. Attention scores are logits, so the natural drive is
    /// exp(s), the drive softmax already uses; with it the weights are exactly
    /// a softmax over the allowed keys plus one extra "null" key of score
    /// log σ (after scaling by n) whose weight is thrown away:
    ///
    /// ```
    /// w_i· = softmax([n·s_i1, …, n·s_iTk, n·log σ])[0..<Tk]
    /// ```
    ///
    /// That is both how it is computed (stable for any score range; the fused
    /// softmax handles an all-masked row, whose null key then takes all the
    /// mass) and what σ means: a fixed evidence level a key must beat. The
    /// drive is deliberately *not* shifted by the row maximum (the usual
    /// softmax trick), because a shift would make σ relative to the best key
    /// and a row of uniformly weak scores would still be fully attended. With
    /// the exponential drive, σ → 0 recovers softmax (n = 1) and n acts as an
    /// inverse temperature. The rectified drive is Heeger's half-rectified
    /// (n = 2: half-squared) linear drive, for scores that are already on an
    /// activation scale; negative scores give no drive and no gradient.
    ///
    /// The semi-saturation "leaks" mass: a row sums to D/(σⁿ + D) < 1 — near 1
    /// when some key's drive is far above σⁿ (saturation: the row behaves like
    /// softmax), near D/σⁿ when all drives are weak (the row attends to almost
    /// nothing, and the output of attention shrinks towards 0).
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk]; −inf entries count as masked.
    ///   - mask: 0/1 broadcastable to `scores`, 1 = may attend; nil = all.
    ///   - semiSaturation: σ > 0, in the units of the drive.
    ///   - exponent: n > 0 (exponential drive) or n ≥ 1 (rectified drive, so
    ///     that the gradient at s = 0 is finite).
    /// - Returns: [.., Tq, Tk], non-negative, each row summing to less than 1.
    ///   A row with nothing to attend to is all zeros (D = 0) with zero gradient.
    static func divisiveWeights(_ scores: Tensor, mask: Tensor?, semiSaturation: Float, exponent: Float,
                                drive: Drive) -> Tensor {
        checkDivisiveParameters(semiSaturation: semiSaturation, exponent: exponent, drive: drive, op: "divisive")
        let allowedScores = excluded(scores, mask)                                    // −inf where masked
        switch drive {
        case .exponential:
            // softmax over [n·s, n·log σ], the null key dropped.
            let logits = exponent == 1 ? allowedScores : allowedScores * exponent       // [.., Tq, Tk]
            let keys = scores.shape[scores.rank - 1]
            let nullShape = Array(scores.shape.dropLast()) + [1]
            let nullKey = Tensor.full(nullShape, exponent * Foundation.log(semiSaturation))  // [.., Tq, 1]
            let withNull = Tensor.concatenate([logits, nullKey], axis: -1)              // [.., Tq, Tk + 1]
            return withNull.softmax(axis: -1).sliced(axis: -1, start: 0, end: keys)    // [.., Tq, Tk]
        case .rectified:
            let powered = rectifiedDrive(allowedScores, exponent: exponent)            // m·dⁿ  [.., Tq, Tk]
            let denominator = powered.sum(axis: -1, keepDims: true) + Foundation.pow(semiSaturation, exponent)
            return powered / denominator                                               // [.., Tq, Tk]
        }
    }

    /// m·max(s, 0)ⁿ for scores whose masked entries are −inf (which give 0).
    static func rectifiedDrive(_ allowedScores: Tensor, exponent: Float) -> Tensor {
        let rectified = allowedScores.relu()
        return exponent == 1 ? rectified : rectified.pow(exponent)
    }

    /// Stops with a message for parameters outside the domain of the formula.
    static func checkDivisiveParameters(semiSaturation: Float, exponent: Float, drive: Drive, op: String) {
        precondition(semiSaturation > 0 && semiSaturation.isFinite,
                     "\(op): the semi-saturation constant must be positive and finite, got \(semiSaturation)")
        switch drive {
        case .exponential:
            precondition(exponent > 0 && exponent.isFinite, "\(op): the exponent must be positive, got \(exponent)")
        case .rectified:
            precondition(exponent >= 1 && exponent.isFinite,
                         "\(op): the exponent of the rectified drive must be ≥ 1 (finite gradient at 0), got \(exponent)")
        }
    }
}
