import HeedTensor

extension Normalizer {
    /// The weights of ``Normalizer/sparsemax``: sparsemax over the allowed keys
    /// of every query (Martins & Astudillo, 2016, eq. 2, threshold by Alg. 1).
    ///
    /// ```
    /// z_ij = s_ij if mask_ij = 1 else −inf
    /// w_i· = argmin_{p ∈ Δ} ‖p − z_i·‖²  =  max(z_i· − τ_i, 0)        (masked keys: 0)
    /// τ_i  = (Σ_{j ∈ S_i} z_ij − 1) / |S_i|,  S_i = the support found by sorting
    /// ∂s_i· = s ⊙ (g − Σ_{S_i} g / |S_i|),   s = 1[w > 0]               (eq. 14)
    /// ```
    ///
    /// The work is done by the fused `Tensor.sparsemax(axis:)` of HeedTensor,
    /// which treats −inf entries as absent; its closed-form backward is held to
    /// the composed formula and to finite differences in the tests.
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk].
    ///   - mask: 0/1 broadcastable to `scores`, 1 = may attend; nil = all.
    /// - Returns: [.., Tq, Tk]; each row is non-negative, sums to 1, and is
    ///   exactly 0 on every key more than 1 below the row's best allowed score.
    ///   A row with nothing to attend to is all zeros with zero gradient.
    ///   The gradient is exact except where a weight is exactly 0 at the edge of
    ///   the support (a kink; the support's indicator is used there).
    static func sparsemaxWeights(_ scores: Tensor, mask: Tensor?) -> Tensor {
        excluded(scores, mask).sparsemax(axis: -1)
    }
}
