import HeedTensor

extension Normalizer {
    /// The weights of ``Normalizer/hardArgmax``: one-hot rows at the largest
    /// allowed score (deterministic hard attention; Luong et al., 2015, and the
    /// test-time form of Xu et al., 2015).
    ///
    /// ```
    /// a_i  = the first j maximising s_ij over the allowed keys (ties → the lowest j)
    /// w_ij = 1[j = a_i]
    /// ```
    ///
    /// **No gradient reaches the scores**: the weights are piecewise constant
    /// in them (the derivative is 0 almost everywhere and undefined at ties), so
    /// the result does not require gradients. In ``Attention`` the output still
    /// passes gradients to the values of the chosen keys. To train the scores,
    /// use ``Normalizer/hardSampled(seed:)`` with REINFORCE, or a soft normalizer.
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk]; −inf entries count as masked.
    ///   - mask: 0/1 broadcastable to `scores`, 1 = may attend; nil = all.
    /// - Returns: [.., Tq, Tk], one 1 per row. A row with nothing to attend to
    ///   is all zeros; a row holding a NaN score is all NaN.
    static func hardArgmaxWeights(_ scores: Tensor, mask: Tensor?) -> Tensor {
        let allowed = Tensor.withoutGrad { excluded(scores, mask) }
        let keys = scores.shape[scores.rank - 1]
        var weights = [Float](repeating: 0, count: scores.count)
        allowed.withUnsafeScalars { values in
            for row in 0..<(keys == 0 ? 0 : scores.count / keys) {
                let start = row * keys
                var best = -Float.infinity, choice = -1
                for j in 0..<keys {
                    let value = values[start + j]
                    if value.isNaN { choice = -2; break }
                    if value > best { best = value; choice = j }   // strict: the first maximum wins
                }
                if choice == -2 {
                    for j in 0..<keys { weights[start + j] = .nan }
                } else if choice >= 0 {
                    weights[start + choice] = 1
                }
            }
        }
        return Tensor(weights, shape: scores.shape)
    }

    /// ``Normalizer/hardSampled(seed:)``: one key per query drawn from the
    /// softmax over the allowed keys (stochastic "hard" attention, Xu et al.,
    /// 2015, §4.1), with the log-probability of the draw.
    ///
    /// ```
    /// p_i·  = softmax over the allowed keys of s_i·
    /// a_i   ~ Categorical(p_i·)          by inverse CDF: the first j with u_i < Σ_{k≤j} p_ik
    /// w_ij  = 1[j = a_i]                  (no gradient)
    /// log p(a_i) = s_ia_i − log Σ_{k allowed} exp(s_ik)                 (differentiable)
    /// ∂ log p(a_i) / ∂s_ij = 1[j = a_i] − p_ij
    /// ```
    ///
    /// Randomness: u_i is the i-th uniform of ``RandomGenerator`` seeded with
    /// `seed`, rows taken in row-major order over [.., Tq] — one draw per row,
    /// masked rows included, so the draw of a row does not depend on the masks
    /// of the others. The same seed gives the same samples: change it every
    /// training step (e.g. `.hardSampled(seed: step)`).
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk]; −inf entries count as masked.
    ///   - mask: 0/1 broadcastable to `scores`, 1 = may attend; nil = all.
    /// - Returns: weights [.., Tq, Tk] (one-hot rows) and `logProbability`
    ///   [.., Tq]. A row with nothing to attend to has zero weights and
    ///   log-probability 0 with zero gradient (it contributes nothing to a
    ///   REINFORCE loss). Masked keys are never drawn.
    static func hardSampled(_ scores: Tensor, mask: Tensor?, seed: UInt64) -> Normalized {
        let keys = scores.shape[scores.rank - 1]
        let rowShape = Array(scores.shape.dropLast())                                     // [.., Tq]
        let rows = keys == 0 ? 0 : scores.count / keys
        let allowed = excluded(scores, mask)                                             // −inf where masked
        let probabilities = Tensor.withoutGrad { allowed.softmax(axis: -1) }             // [.., Tq, Tk]

        // 1. One inverse-CDF draw per row.
        var generator = RandomGenerator(seed: seed)
        var weights = [Float](repeating: 0, count: scores.count)
        var choices = [Int](repeating: 0, count: rows)
        var drawn = [Float](repeating: 0, count: rows)
        probabilities.withUnsafeScalars { p in
            for row in 0..<rows {
                let u = Double(generator.nextUniform())
                let start = row * keys
                var total = 0.0, hasNaN = false, last = -1
                for j in 0..<keys {
                    if p[start + j].isNaN { hasNaN = true }
                    if p[start + j] > 0 { total += Double(p[start + j]); last = j }
                }
                if hasNaN {
                    for j in 0..<keys { weights[start + j] = .nan }
                    drawn[row] = 1
                    continue
                }
                guard last >= 0 else { continue }   // nothing to attend to
                // The first key whose cumulative probability passes u·Σp (Σp = 1 up to rounding).
                let target = u * total
                var cumulative = 0.0, choice = last
                for j in 0..<keys where p[start + j] > 0 {
                    cumulative += Double(p[start + j])
                    if target < cumulative { choice = j; break }
                }
                weights[start + choice] = 1
                choices[row] = choice
                drawn[row] = 1
            }
        }

        // 2. log p(a_i), differentiable through logSoftmax; 0 on rows without a draw.
        let indices = IndexTensor(choices, shape: rowShape + [1])
        let picked = allowed.logSoftmax(axis: -1).gather(axis: -1, indices: indices).squeezed(axis: -1)  // [.., Tq]
        let logProbability = Tensor.where(Tensor(drawn, shape: rowShape), picked, Tensor(scalar: 0))     // [.., Tq]
        return Normalized(weights: Tensor(weights, shape: scores.shape), logProbability: logProbability)
    }
}
