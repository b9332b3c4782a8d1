import HeedTensor

/// Luong's local attention (Luong, Pham & Manning, 2015, §3.2).
///
/// For each target step t with window centre p_t and half-width D:
///
/// ```
/// p_t    = t                                        local-m (monotonic)
///        = S · sigmoid(v_pᵀ tanh(W_p h_t))          local-p, eq. 9 (S = source length of the row)
/// window = { s : |s − round(p_t)| ≤ D } ∩ unmasked  2D + 1 positions, clipped to the source
/// align  = softmax of score(h_t, h̄_s) over the window          eq. 7 restricted to the window
/// a_t(s) = align(h_t, h̄_s) · exp(−(s − p_t)² / (2σ²)),  σ = D/2   eq. 10
/// c_t    = Σ_s a_t(s) h̄_s
/// ```
///
/// Conventions and the paper's details kept on purpose:
/// - Source positions are 0-based, so p_t ∈ (0, S) for local-p and p_t = t
///   counts target steps from 0 for local-m.
/// - The paper's window [p_t − D, p_t + D] holds 2D + 1 positions (a_t ∈
///   ℝ^{2D+1}), so it is centred on the nearest integer, round(p_t) =
///   ⌊p_t + ½⌋; the Gaussian uses the real p_t.
/// - The Gaussian multiplies the *normalised* alignment, so a row's weights
///   sum to less than 1 (eq. 10 as written).
/// - Gradients reach p_t — and through it W_p, v_p and h_t — via the
///   Gaussian; which positions form the window is piecewise constant in p_t
///   and passes no gradient, as in the paper.
/// - S is the number of source positions the row may attend (its length
///   under padding), so p_t stays inside the real sentence.
///
/// This reference materialises scores over all T source positions and masks
/// to the window (O(T) per step rather than O(D)); the outputs are the same.
extension LuongAttention {
    /// Runs local attention; returns context [B, Tq, De], weights [B, Tq, T]
    /// and the window centres p_t [B, Tq].
    func local(_ inputs: RecurrentAttention.Inputs, pattern: Pattern, stepOffset: Int)
        -> (context: Tensor, weights: Tensor, position: Tensor) {
        let (b, tq, t) = (inputs.batch, inputs.queryLength, inputs.sourceLength)

        // 1. Which source positions each row may attend at all, and S per row.
        let sourceMask = pattern.mask(batch: b, heads: 1, queryLength: tq, keyLength: t)
            .squeezed(axis: 1).expand(to: [b, tq, t])                                        // [B, Tq, T]

        // 2. The window centre p_t.
        let halfWidth: Int, position: Tensor
        switch window {
        case .global:
            preconditionFailure("LuongAttention.local called for a global window")
        case .monotonic(let d):
            halfWidth = d
            let steps = (0..<tq).map { Float(stepOffset + $0) }
            position = Tensor(Array((0..<b).map { _ in steps }.joined()), shape: [b, tq])      // [B, Tq]
        case .predictive(let d, let weight, let vector):
            halfWidth = d
            let sourceLength = sourceMask.sum(axis: -1)                                        // [B, Tq]
            // eq. 9: p_t = S · sigmoid(v_pᵀ tanh(W_p h_t)).
            position = sourceLength * inputs.states.matmul(weight).tanh().matmul(vector).sigmoid()  // [B, Tq]
        }

        // 3. The window [round(p_t) − D, round(p_t) + D] as a 0/1 mask (no gradient).
        let windowMask = LuongAttention.windowMask(centres: position.scalars, rows: b * tq, sourceLength: t,
                                                   halfWidth: halfWidth).reshaped([b, tq, t])  // [B, Tq, T]

        // 4. align: the softmax of the scores over the window (eq. 7 restricted).
        let scores = score(query: inputs.states, key: inputs.encoderOutputs)                   // [B, Tq, T]
        let align = Normalizer.softmax(scores, mask: windowMask * sourceMask).weights          // [B, Tq, T]

        // 5. eq. 10: a_t(s) = align · exp(−(s − p_t)² / (2σ²)), σ = D/2.
        let sigma = Float(halfWidth) / 2
        let distance = Tensor.arange(t) - position.unsqueezed(axis: -1)                        // [B, Tq, T]
        let gaussian = (distance.square() * (-1 / (2 * sigma * sigma))).exp()                  // [B, Tq, T]
        let weights = align * gaussian                                                         // [B, Tq, T]

        // 6. The context: c_t = Σ_s a_t(s) h̄_s.
        let context = weights.matmul(inputs.encoderOutputs)                                    // [B, Tq, De]
        return (context, weights, position)
    }

    /// A [rows, T] 0/1 mask with ones at |s − ⌊c + ½⌋| ≤ D for each row's centre c.
    static func windowMask(centres: [Float], rows: Int, sourceLength t: Int, halfWidth: Int) -> Tensor {
        precondition(centres.count == rows)
        var values = [Float](repeating: 0, count: rows * t)
        for row in 0..<rows {
            let centre = centres[row]
            precondition(centre.isFinite, "LuongAttention: window centre \(centre) is not finite")
            let nearest = Int((centre + 0.5).rounded(.down))
            let first = Swift.max(0, nearest - halfWidth), last = Swift.min(t - 1, nearest + halfWidth)
            if first <= last { for s in first...last { values[row * t + s] = 1 } }
        }
        return Tensor(values, shape: [rows, t])
    }
}
