// Sparsemax (Martins & Astudillo, 2016): the Euclidean projection of a score
// vector onto the probability simplex. Forward by the sort-based threshold of
// their Algorithm 1; backward by the closed-form Jacobian of their eq. 14.
// Entries equal to −inf are left out of the projection (they are "masked"),
// which is what makes the op usable for attention with a pattern.
//
// The row driver below, `sortedRowMap`, is shared with entmax-1.5 (Entmax.swift):
// both ops sort the allowed entries of a row, find a threshold from the sorted
// values, and write an output from the threshold.

extension Tensor {
    /// Sparsemax along `axis` (Martins & Astudillo, 2016, eq. 2): the point of
    /// the probability simplex closest to the scores, computed by the exact
    /// sort-based threshold of their Algorithm 1.
    ///
    /// ```
    /// sparsemax(z) = argmin_{p ∈ Δ} ‖p − z‖²  =  max(z − τ(z), 0)
    ///
    /// z₍₁₎ ≥ z₍₂₎ ≥ … ≥ z₍ₘ₎            the m allowed (non −inf) entries, sorted
    /// k(z) = max { k : 1 + k·z₍ₖ₎ > Σ_{j≤k} z₍ⱼ₎ }          (Alg. 1, support size)
    /// τ(z) = (Σ_{j≤k(z)} z₍ⱼ₎ − 1) / k(z)
    ///
    /// backward (eq. 14): J = diag(s) − s sᵀ / |S|,  s = 1[p > 0],  S = support
    ///   ∂z = s ⊙ (g − (Σ_{j∈S} g_j) / |S|)
    /// ```
    ///
    /// Unlike softmax the result is sparse: every entry more than 1 below the
    /// largest one is exactly 0, and so is its gradient. The projection is
    /// invariant to adding a constant to the slice; the computation subtracts
    /// the slice's maximum and runs in Double.
    ///
    /// - Parameter axis: the axis normalised over (negative counts from the end).
    /// - Returns: the shape of `self`; each slice along `axis` is non-negative
    ///   and sums to 1.
    /// - Edge cases: entries equal to −inf are excluded from the support (weight 0,
    ///   gradient 0). A slice whose entries are all −inf (nothing to attend to)
    ///   returns all zeros and passes zero gradient, never NaN. A slice holding
    ///   NaN or +inf returns NaN.
    public func sparsemax(axis: Int = -1) -> Tensor {
        Tensor.onLastAxis(self, axis: axis, op: "sparsemax") { input in
            let out = Tensor.sortedRowMap(input, op: "sparsemax", threshold: Tensor.sparsemaxThreshold) { z, tau in
                Swift.max(z - tau, 0)
            }
            return Tensor.record(out, "sparsemax", [input]) { gradient in
                // Eq. 14 walked backwards: only the support carries gradient, centred on it.
                let support = out.greater(Tensor(scalar: 0))                                   // s
                let supportSize = support.sum(axis: -1, keepDims: true)                       // |S|
                let centre = (gradient * support).sum(axis: -1, keepDims: true)
                    / Tensor.maximum(supportSize, Tensor(scalar: 1))                          // Σ_S g / |S| (0 for an empty row)
                return [support * (gradient - centre)]
            }
        }
    }

    /// Algorithm 1 of Martins & Astudillo (2016) on `sorted` (descending,
    /// already shifted by its maximum): the threshold τ.
    static func sparsemaxThreshold(_ sorted: UnsafeMutableBufferPointer<Double>) -> Double {
        var cumulative = 0.0, supportSize = 1, supportSum = sorted[0]
        for k in 1...sorted.count {
            cumulative += sorted[k - 1]
            // The condition holds exactly for k = 1…k(z); keep the last k where it does.
            if 1 + Double(k) * sorted[k - 1] > cumulative {
                supportSize = k
                supportSum = cumulative
            }
        }
        return (supportSum - 1) / Double(supportSize)
    }

    /// Applies `op` along the last axis, moving `axis` there and back when needed
    /// (the moves are recorded, so gradients flow through them).
    static func onLastAxis(_ x: Tensor, axis: Int, op: String, _ body: (Tensor) -> Tensor) -> Tensor {
        let a = Shape.axis(axis, rank: x.rank, op: op)
        if a == x.rank - 1 { return body(x) }
        return body(x.transposed(a, -1)).transposed(a, -1)
    }

    /// For every row of the last axis: the allowed entries (those ≠ −inf) are
    /// shifted by their maximum, sorted in descending order (in Double) and
    /// handed to `threshold`; then every allowed entry `z` (shifted) becomes
    /// `output(z, τ)` and every −inf entry becomes 0. A row with no allowed
    /// entry becomes zeros; a row holding NaN or +inf becomes NaN. Not recorded.
    static func sortedRowMap(_ x: Tensor, op: String,
                             threshold: (UnsafeMutableBufferPointer<Double>) -> Double,
                             output: (Double, Double) -> Double) -> Tensor {
        precondition(x.rank >= 1, "\(op): needs rank ≥ 1, got shape \(x.shape)")
        let columns = x.shape[x.rank - 1]
        let rows = columns == 0 ? 0 : x.count / columns
        let source = x.storage.base
        return build(x.shape) { buffer in
            let destination = buffer.baseAddress!
            Parallel.forEachChunk(rows, minimumChunk: Swift.max(1, (1 << 12) / Swift.max(columns, 1))) { range in
                let scratch = UnsafeMutableBufferPointer<Double>.allocate(capacity: Swift.max(columns, 1))
                defer { scratch.deallocate() }
                for row in range {
                    let input = source + row * columns, result = destination + row * columns
                    // 1. The allowed entries and their maximum.
                    var allowed = 0, maximum = -Double.infinity, invalid = false
                    for j in 0..<columns {
                        let value = input[j]
                        if value == -.infinity { continue }
                        if value.isNaN || value == .infinity { invalid = true; break }
                        scratch[allowed] = Double(value)
                        maximum = Swift.max(maximum, Double(value))
                        allowed += 1
                    }
                    if invalid {
                        for j in 0..<columns { result[j] = .nan }
                        continue
                    }
                    if allowed == 0 {   // nothing to attend to: zeros, never NaN
                        for j in 0..<columns { result[j] = 0 }
                        continue
                    }
                    // 2. Shift, sort descending, threshold.
                    var sorted = UnsafeMutableBufferPointer(rebasing: scratch[0..<allowed])
                    for i in 0..<allowed { sorted[i] -= maximum }
                    sorted.sort(by: >)
                    let tau = threshold(sorted)
                    // 3. The output from the threshold.
                    for j in 0..<columns {
                        let value = input[j]
                        result[j] = value == -.infinity ? 0 : Float(output(Double(value) - maximum, tau))
                    }
                }
            }
        }
    }
}
