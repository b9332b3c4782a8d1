import HeedTensor

/// The normalisation stage: raw (biased, masked) scores → attention weights.
///
/// Every normalizer takes scores [.., Tq, Tk] and a 0/1 mask broadcastable to
/// them (1 = may attend) and returns weights of the same shape that are 0
/// wherever the mask is 0. **A row with nothing to attend to returns all
/// zeros and passes zero gradient — never NaN — for every normalizer.**
public enum Normalizer {
    /// softmax over the allowed keys (Bridle, 1990; Bahdanau et al., 2015).
    case softmax

    /// The weights for `scores` under `mask` (nil = all allowed).
    public func callAsFunction(_ scores: Tensor, mask: Tensor?) -> Normalized {
        switch self {
        case .softmax:
            let masked = mask.map { scores.maskedFill(1 - $0, -.infinity) } ?? scores
            return Normalized(weights: masked.softmax(axis: -1))
        }
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

    public init(weights: Tensor, logProbability: Tensor? = nil) {
        self.weights = weights
        self.logProbability = logProbability
    }
}
