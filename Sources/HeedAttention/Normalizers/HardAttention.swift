import HeedTensor

/// Training stochastic hard attention (``Normalizer/hardSampled(seed:)``) with
/// the REINFORCE estimator (Williams, 1992) and a baseline, as in "Show,
/// Attend and Tell" (Xu et al., 2015, §4.1).
///
/// Sampling a key is not differentiable, but the gradient of the *expected*
/// reward is an expectation that can be sampled:
///
/// ```
/// J(θ)  = E_{a ~ p_θ}[ r(a) ]
/// ∇J(θ) = E_{a ~ p_θ}[ (r(a) − b) ∇ log p_θ(a) ]        for any b independent of a
/// ```
///
/// A typical step:
///
/// ```swift
/// var baseline = MovingAverageBaseline(decay: 0.9)
/// let result = attention(query: q, key: k, value: v)            // normalizer: .hardSampled(seed: step)
/// let reward = rewardOf(result.output)                          // [B, H, Tq], no gradient needed
/// let loss = HardAttention.reinforceLoss(logProbability: result.logProbability!,
///                                        reward: reward, baseline: baseline.value)
/// loss.backward()                                               // then an optimiser step
/// baseline.update(with: reward)
/// ```
public enum HardAttention {
    /// The REINFORCE surrogate loss: minimising it follows an unbiased
    /// estimate of the gradient of the expected reward (Williams, 1992; Xu et
    /// al., 2015, §4.1).
    ///
    /// ```
    /// loss = −(1/N) Σ_n (r_n − b_n) · log p(a_n)        N = the number of elements of the broadcast
    /// ∇loss = −(1/N) Σ_n (r_n − b_n) ∇ log p(a_n)        (r and b are constants: detached)
    /// E[∇loss] = −(1/N) Σ_n ∇ E[r_n]                      (unbiased when b does not depend on a_n)
    /// ```
    ///
    /// - Parameters:
    ///   - logProbability: log p of the sampled keys, [.., Tq] — ``Normalized/logProbability``
    ///     or ``Attention/Output/logProbability``.
    ///   - reward: r, broadcastable with `logProbability` (per query [.., Tq],
    ///     per sequence [B, 1, 1], or a scalar). Detached: no gradient flows
    ///     through it, even if it was computed from the attention output.
    ///   - baseline: b, broadcastable likewise (e.g. ``MovingAverageBaseline/value``
    ///     or a learned value estimate). Detached. A baseline does not bias the
    ///     estimate; a good one lowers its variance.
    /// - Returns: a scalar. Rows with nothing to attend to have log p = 0 and add
    ///   nothing but still count in N.
    public static func reinforceLoss(logProbability: Tensor, reward: Tensor,
                                     baseline: Tensor = Tensor(scalar: 0)) -> Tensor {
        let advantage = reward.detached() - baseline.detached()               // r − b, constant
        return -(advantage * logProbability).mean()
    }

    /// ``reinforceLoss(logProbability:reward:baseline:)`` with a scalar baseline.
    public static func reinforceLoss(logProbability: Tensor, reward: Tensor, baseline: Float) -> Tensor {
        reinforceLoss(logProbability: logProbability, reward: reward, baseline: Tensor(scalar: baseline))
    }
}

/// An exponential moving average of past rewards, the baseline of "Show,
/// Attend and Tell" (Xu et al., 2015, §4.1: bₖ = 0.9·bₖ₋₁ + 0.1·rₖ).
///
/// ```
/// value ← decay · value + (1 − decay) · mean(reward)
/// ```
///
/// Use ``value`` for the current step's loss *before* calling
/// ``update(with:)`` with that step's rewards, so the baseline never depends on
/// the samples it is compared with (which keeps the estimate unbiased).
public struct MovingAverageBaseline: Sendable, Equatable {
    /// The weight of the past, in [0, 1): 0.9 in Xu et al. (2015).
    public var decay: Float
    /// The current baseline b.
    public private(set) var value: Float
    /// Updates so far.
    public private(set) var updates = 0

    /// - Parameters:
    ///   - decay: in [0, 1).
    ///   - initialValue: b before the first update.
    public init(decay: Float = 0.9, initialValue: Float = 0) {
        precondition(decay >= 0 && decay < 1, "MovingAverageBaseline: decay must be in [0, 1), got \(decay)")
        self.decay = decay
        self.value = initialValue
    }

    /// Folds in the mean of `reward` (any shape, at least one element).
    public mutating func update(with reward: Tensor) {
        precondition(reward.count > 0, "MovingAverageBaseline: empty reward")
        let mean = reward.withUnsafeScalars { $0.reduce(0.0) { $0 + Double($1) } / Double($0.count) }
        update(with: Float(mean))
    }

    /// Folds in one scalar reward.
    public mutating func update(with reward: Float) {
        value = decay * value + (1 - decay) * reward
        updates += 1
    }
}
