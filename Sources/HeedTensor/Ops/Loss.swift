extension Tensor {
    /// How per-element losses are combined.
    public enum LossReduction: Sendable {
        /// Mean over the elements that count (not ignored).
        case mean
        /// Sum over all elements.
        case sum
        /// One loss per element, 0 where ignored.
        case none
    }

    /// Cross-entropy of logits against class indices, as
    /// `torch.nn.functional.cross_entropy` with the class axis **last**:
    ///
    /// ```
    /// logp = logSoftmax(logits)                                   // [..., C]
    /// lossᵢ = (1 − ε)·(−logp[i, yᵢ]) + ε·(−Σ_c logp[i, c] / C)    // label smoothing ε
    /// ```
    ///
    /// Elements whose target equals `ignoreIndex` contribute 0 and are left out
    /// of the mean. When every element is ignored the mean is 0 (PyTorch gives
    /// NaN here; Heed never returns NaN for a well-formed input).
    ///
    /// - Parameters:
    ///   - targets: class indices with the shape of `logits` without its last axis.
    ///   - labelSmoothing: ε ∈ [0, 1].
    public func crossEntropy(targets: IndexTensor, labelSmoothing: Float = 0, ignoreIndex: Int = -100,
                             reduction: LossReduction = .mean) -> Tensor {
        precondition(rank >= 1, "crossEntropy: logits need a class axis")
        let classes = shape[rank - 1]
        precondition(targets.shape == Array(shape.dropLast()),
                     "crossEntropy: targets \(targets.shape) do not match logits \(shape) without the class axis")
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy: label smoothing \(labelSmoothing) outside [0, 1]")
        // One-hot of the targets (zero rows where ignored) and a 0/1 weight per element.
        var counted = 0
        let picked = Tensor.build(shape) { out in
            out.update(repeating: 0)
            for (i, target) in targets.values.enumerated() where target != ignoreIndex {
                precondition(target >= 0 && target < classes,
                             "crossEntropy: target \(target) out of range 0..<\(classes) at element \(i)")
                out[i * classes + target] = 1
                counted += 1
            }
        }
        let valid = Tensor(targets.values.map { $0 == ignoreIndex ? 0 : 1 }, shape: targets.shape)
        let logp = logSoftmax(axis: -1)
        let nll = -(logp * picked).sum(axis: -1)                               // [...]
        var losses = nll
        if labelSmoothing > 0 {
            let smooth = -logp.sum(axis: -1) * (1 / Float(classes)) * valid
            losses = nll * (1 - labelSmoothing) + smooth * labelSmoothing
        }
        switch reduction {
        case .none: return losses
        case .sum: return losses.sum()
        case .mean: return losses.sum() * (1 / Float(Swift.max(counted, 1)))
        }
    }
}
