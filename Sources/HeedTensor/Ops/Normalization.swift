// Layer and RMS normalisation, written as compositions of primitive ops so
// their gradients come from the primitives (STYLE.md: keep the primitive set
// small).

extension Tensor {
    /// Layer normalisation over the last `normalizedAxes` axes (Ba et al., 2016):
    ///
    /// ```
    /// y = (x − mean(x)) / √(var(x) + ε) · weight + bias      (biased variance)
    /// ```
    ///
    /// `weight` and `bias` have the shape of those trailing axes (or are nil),
    /// as in `torch.nn.functional.layer_norm`.
    public func layerNorm(normalizedAxes: Int = 1, weight: Tensor? = nil, bias: Tensor? = nil,
                          epsilon: Float = 1e-5) -> Tensor {
        precondition(normalizedAxes >= 1 && normalizedAxes <= rank,
                     "layerNorm: cannot normalise \(normalizedAxes) axes of shape \(shape)")
        let axes = Array((rank - normalizedAxes)..<rank)
        let centered = self - mean(axes: axes, keepDims: true)
        let variance = centered.square().mean(axes: axes, keepDims: true)
        var y = centered * (variance + epsilon).rsqrt()
        if let weight { y = y * weight }
        if let bias { y = y + bias }
        return y
    }

    /// Root-mean-square normalisation over the last axis (Zhang & Sennrich, 2019):
    ///
    /// ```
    /// y = x / √(mean(x²) + ε) · weight
    /// ```
    ///
    /// as in Llama and `torch.nn.functional.rms_norm`.
    public func rmsNorm(weight: Tensor? = nil, epsilon: Float = 1e-6) -> Tensor {
        precondition(rank >= 1, "rmsNorm: needs rank ≥ 1, got a scalar")
        let y = self * (square().mean(axis: -1, keepDims: true) + epsilon).rsqrt()
        return weight.map { y * $0 } ?? y
    }
}
