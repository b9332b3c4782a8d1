import HeedTensor

extension Normalizer {
    /// The weights of ``Normalizer/entmax15``: 1.5-entmax over the allowed
    /// keys of every query (Peters, Niculae & Martins, 2019, "Sparse
    /// Sequence-to-Sequence Models", exact sort-based Alg. 2).
    ///
    /// ```
    /// z_ij = s_ij if mask_ij = 1 else −inf
    /// w_i· = argmax_{p ∈ Δ} pᵀz_i· + H^T_{1.5}(p)  =  max(z_i·/2 − τ_i, 0)²,   Σ_j w_ij = 1
    /// ∂s_i· = u ⊙ g − u (uᵀg) / Σ u,   u = √w                     (α-entmax Jacobian, α = 1.5)
    /// ```
    ///
    /// The work is done by the fused `Tensor.entmax15(axis:)` of HeedTensor,
    /// which treats −inf entries as absent; its closed-form backward is held to
    /// the composed formula and to finite differences in the tests.
    ///
    /// - Parameters:
    ///   - scores: [.., Tq, Tk].
    ///   - mask: 0/1 broadcastable to `scores`, 1 = may attend; nil = all.
    /// - Returns: [.., Tq, Tk]; each row is non-negative, sums to 1, and is
    ///   exactly 0 on every key more than 2 below the row's best allowed score
    ///   (less sparse than sparsemax, smoother: the map is C¹). A row with
    ///   nothing to attend to is all zeros with zero gradient.
    static func entmax15Weights(_ scores: Tensor, mask: Tensor?) -> Tensor {
        excluded(scores, mask).entmax15(axis: -1)
    }
}
