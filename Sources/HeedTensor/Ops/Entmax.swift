// 1.5-entmax (Peters, Niculae & Martins, 2019, "Sparse Sequence-to-Sequence
// Models"): the α = 1.5 member of the α-entmax family between softmax (α = 1)
// and sparsemax (α = 2). Forward by their exact sort-based Algorithm 2; backward
// by the closed-form α-entmax Jacobian at α = 1.5. Entries equal to −inf are
// left out, as for sparsemax (Sparsemax.swift, which also holds the row driver).

extension Tensor {
    /// 1.5-entmax along `axis` (Peters, Niculae & Martins, 2019), by the exact
    /// sort-based algorithm (their Algorithm 2).
    ///
    /// ```
    /// entmax₁.₅(z) = argmax_{p ∈ Δ} pᵀz + H^T_{1.5}(p)   =  [z/2 − τ]₊²,   Σ p = 1
    ///
    /// v = z/2 (shifted by its maximum), allowed (non −inf) entries sorted: v₍₁₎ ≥ … ≥ v₍ₘ₎
    /// for k = 1…m:  μₖ = (1/k) Σ_{j≤k} v₍ⱼ₎
    ///               ssₖ = Σ_{j≤k} (v₍ⱼ₎ − μₖ)²
    ///               τₖ = μₖ − √((1 − ssₖ)/k)          (defined while ssₖ ≤ 1)
    /// τ = τₖ for the largest k with τₖ ≤ v₍ₖ₎           (Alg. 2: v₍ₖ₊₁₎ ≤ τ ≤ v₍ₖ₎)
    ///
    /// backward (α-entmax Jacobian at α = 1.5):
    ///   J = diag(s) − s sᵀ / Σ s,   s = √p  (= p^{2−α}; 0 off the support)
    ///   ∂z = s ⊙ g − s · (Σ s ⊙ g) / (Σ s)
    /// ```
    ///
    /// τₖ solves Σ_{j≤k} (v₍ⱼ₎ − τ)² = 1, the normalisation on a support of size k.
    /// Entries more than 2 below the largest one are exactly 0. The computation
    /// subtracts the slice's maximum and runs in Double.
    ///
    /// - Parameter axis: the axis normalised over (negative counts from the end).
    /// - Returns: the shape of `self`; each slice along `axis` is non-negative
    ///   and sums to 1.
    /// - Edge cases: entries equal to −inf are excluded (weight 0, gradient 0). A
    ///   slice whose entries are all −inf (nothing to attend to) returns all zeros
    ///   and passes zero gradient, never NaN. A slice holding NaN or +inf returns NaN.
    public func entmax15(axis: Int = -1) -> Tensor {
        Tensor.onLastAxis(self, axis: axis, op: "entmax15") { input in
            // Work on v = z/2: the row driver shifts by the maximum, so halve inside.
            let out = Tensor.sortedRowMap(input, op: "entmax15", threshold: Tensor.entmax15Threshold) { z, tau in
                let excess = Swift.max(z / 2 - tau, 0)
                return excess * excess
            }
            return Tensor.record(out, "entmax15", [input]) { gradient in
                // Differentiates p = [z/2 − τ]² with Σp = 1: dp = s ⊙ dz − 2 s dτ, 2dτ = sᵀdz / Σs.
                let s = out.sqrt()                                                             // √p
                let total = s.sum(axis: -1, keepDims: true)                                    // Σ s
                let safeTotal = Tensor.where(total.equal(Tensor(scalar: 0)), Tensor(scalar: 1), total)
                let centre = (gradient * s).sum(axis: -1, keepDims: true) / safeTotal          // sᵀg / Σs
                return [s * (gradient - centre)]
            }
        }
    }

    /// Algorithm 2 of Peters, Niculae & Martins (2019) on `sorted` — the shifted
    /// scores z − max(z), descending — returning τ in the units of v = z/2.
    static func entmax15Threshold(_ sorted: UnsafeMutableBufferPointer<Double>) -> Double {
        var sum = 0.0, sumOfSquares = 0.0
        var tau = sorted[0] / 2 - 1   // k = 1: one entry, (v₍₁₎ − τ)² = 1
        for k in 1...sorted.count {
            let v = sorted[k - 1] / 2
            sum += v
            sumOfSquares += v * v
            let n = Double(k)
            let mean = sum / n
            // Σ (vⱼ − μ)², by the shifted-data formula (the values lie in [v₍ₖ₎, 0]).
            let spread = Swift.max(sumOfSquares - sum * mean, 0)
            let slack = (1 - spread) / n
            // spread never decreases with k: once the square root is undefined it stays so.
            if slack < 0 { break }
            let candidate = mean - slack.squareRoot()
            if candidate <= v { tau = candidate }
        }
        return tau
    }
}
