extension Tensor {
    /// Inverted dropout (Srivastava et al., 2014): each element is kept with
    /// probability 1 − p and scaled by 1/(1 − p), else zeroed.
    ///
    /// Element i is dropped when the i-th uniform of `generator` (Philox,
    /// row-major order) is < p, so a seed names the mask on every machine.
    /// p = 0 returns the input; p = 1 returns zeros. ∂x = g ⊙ mask/(1 − p).
    public func dropout(probability p: Float, generator: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p <= 1, "dropout: probability \(p) outside [0, 1]")
        if p == 0 { return self }
        let scale: Float = p == 1 ? 0 : 1 / (1 - p)
        let mask = Tensor.build(shape) { out in
            for i in out.indices { out[i] = generator.nextUniform() < p ? 0 : scale }
        }
        return self * mask
    }

    /// Dropout with a fresh generator seeded with `seed`.
    public func dropout(probability p: Float, seed: UInt64) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        return dropout(probability: p, generator: &generator)
    }
}
