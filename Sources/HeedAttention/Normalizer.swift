import HeedTensor

/// The normalisation stage: raw (biased, masked) scores → attention weights.
///
/// Every normalizer takes scores [.., Tq, Tk] and a 0/1 mask broadcastable to
/// them (1 = may attend) and returns weights of the same shape that are 0
/// wherever the mask is 0. A score of −inf (from an additive bias) counts as
/// masked too. **A row with nothing to attend to returns all zeros and passes
/// zero gradient — never NaN — for every normalizer.**
///
/// | case | weights of one row | sums to | sparse | gradient to scores |
/// |------|--------------------|---------|--------|--------------------|
/// | ``softmax`` | exp(s) / Σ exp(s) | 1 | no | yes |
/// | ``sparsemax`` | max(s − τ, 0) | 1 | yes | yes (a.e.) |
/// | ``entmax15`` | max(s/2 − τ, 0)² | 1 | yes | yes |
/// | ``divisive(semiSaturation:exponent:drive:)`` | dⁿ / (σⁿ + Σ dⁿ) | < 1 | no | yes |
/// | ``localPools(radius:semiSaturation:exponent:drive:)`` | dⱼⁿ / (σⁿ + Σ_{pool(j)} dⁿ) | any | no | yes |
/// | ``hardArgmax`` | one-hot of the max | 1 | yes | none |
/// | ``hardSampled(seed:)`` | one-hot of a sample | 1 | yes | via ``Normalized/logProbability`` |
///
/// Each case's implementation lives in `Normalizers/Normalizer+<Case>.swift`.
public enum Normalizer: Sendable, Equatable {
    /// softmax over the allowed keys (Bridle, 1990; Bahdanau et al., 2015).
    ///
    /// ```
    /// w_ij = exp(s_ij) / Σ_{k allowed} exp(s_ik)
    /// ```
    case softmax

    /// sparsemax over the allowed keys: the Euclidean projection onto the
    /// simplex (Martins & Astudillo, 2016, eq. 2 and Alg. 1). Sparse weights
    /// that sum to 1. See `Normalizer+Sparsemax.swift`.
    case sparsemax

    /// 1.5-entmax over the allowed keys (Peters, Niculae & Martins, 2019, exact
    /// sort-based Alg. 2): between softmax and sparsemax, sparse weights that
    /// sum to 1. See `Normalizer+Entmax.swift`.
    case entmax15

    /// Divisive normalisation with a semi-saturation constant σ > 0
    /// (Carandini & Heeger, 2012, eq. 1; Reynolds & Heeger, 2009): each
    /// weight is its drive divided by σⁿ plus the summed drive of the row, so
    /// rows sum to less than 1 — the semi-saturation "leaks" mass, most when
    /// every score is weak. See `Normalizer+Divisive.swift` for the exact
    /// definition and the choice of drive.
    case divisive(semiSaturation: Float = 1, exponent: Float = 1, drive: Drive = .exponential)

    /// Normalisation over local pools: each key is divided by σⁿ plus the
    /// drive of the keys within `radius` positions of it, for the same query
    /// (the suppressive pool of Reynolds & Heeger, 2009). Keys compete only
    /// with their neighbours, so rows need not sum to 1. A radius ≥ Tk − 1 is
    /// exactly ``divisive(semiSaturation:exponent:drive:)``. See
    /// `Normalizer+LocalPools.swift`.
    case localPools(radius: Int, semiSaturation: Float = 1, exponent: Float = 1, drive: Drive = .exponential)

    /// Hard attention by argmax: a one-hot row at the largest allowed score
    /// (the first one on ties). Passes **no gradient** to the scores. See
    /// `Normalizer+Hard.swift`.
    case hardArgmax

    /// Stochastic hard attention (Xu et al., 2015, §4.1): one key per query
    /// sampled from the softmax over the allowed keys with Philox(`seed`);
    /// one-hot weights, and ``Normalized/logProbability`` = log p(sampled key),
    /// differentiable, for ``HardAttention/reinforceLoss(logProbability:reward:baseline:)``.
    /// Change the seed every training step. See `Normalizer+Hard.swift`.
    case hardSampled(seed: UInt64)

    /// How a score becomes the non-negative "drive" d of divisive normalisation.
    public enum Drive: Sendable, Equatable {
        /// d = exp(s): the drive of softmax, so σ → 0 recovers softmax (at
        /// exponent 1) and σ acts as an always-present null key of score log σ.
        case exponential
        /// d = max(s, 0): Heeger's half-rectification (with exponent 2, the
        /// "half-squaring" of Heeger, 1992). Negative scores give no drive.
        case rectified
    }

    /// The weights for `scores` under `mask` (nil = all allowed).
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk]; −inf entries count as masked.
    ///   - mask: 0/1, broadcastable to `scores` (e.g. [B|1, H|1, Tq, Tk]); 1 = may attend.
    /// - Returns: weights [.., Tq, Tk], and for ``hardSampled(seed:)`` the
    ///   log-probability [.., Tq] of each sampled key.
    public func callAsFunction(_ scores: Tensor, mask: Tensor?) -> Normalized {
        precondition(scores.rank >= 1, "Normalizer: scores must be [.., Tq, Tk], got \(scores.shape)")
        switch self {
        case .softmax:
            return Normalized(weights: Normalizer.excluded(scores, mask).softmax(axis: -1))
        case .sparsemax:
            return Normalized(weights: Normalizer.sparsemaxWeights(scores, mask: mask))
        case .entmax15:
            return Normalized(weights: Normalizer.entmax15Weights(scores, mask: mask))
        case let .divisive(semiSaturation, exponent, drive):
            return Normalized(weights: Normalizer.divisiveWeights(scores, mask: mask, semiSaturation: semiSaturation,
                                                                  exponent: exponent, drive: drive))
        case let .localPools(radius, semiSaturation, exponent, drive):
            return Normalized(weights: Normalizer.localPoolWeights(scores, mask: mask, radius: radius,
                                                                   semiSaturation: semiSaturation,
                                                                   exponent: exponent, drive: drive))
        case .hardArgmax:
            return Normalized(weights: Normalizer.hardArgmaxWeights(scores, mask: mask))
        case let .hardSampled(seed):
            return Normalizer.hardSampled(scores, mask: mask, seed: seed)
        }
    }

    /// The scores with every masked entry replaced by −inf (the shared
    /// convention of the normalizers: −inf = not allowed). Gradient flows to
    /// the allowed entries only.
    static func excluded(_ scores: Tensor, _ mask: Tensor?) -> Tensor {
        guard let mask else { return scores }
        return scores.maskedFill(1 - mask, -.infinity)
    }
}

/// A normalizer's result: the weights, and for stochastic (sampled hard)
/// attention the log-probability of the sampled choice per query, for a
/// REINFORCE loss.
public struct Normalized {
    /// [.., Tq, Tk]
    public var weights: Tensor
    /// [.., Tq] or nil.
    public var logProbability: Tensor?

    /// Bundles weights with an optional log-probability.
    public init(weights: Tensor, logProbability: Tensor? = nil) {
        self.weights = weights
        self.logProbability = logProbability
    }
}
