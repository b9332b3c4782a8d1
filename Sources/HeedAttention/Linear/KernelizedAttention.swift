import HeedTensor

/// The engine shared by every feature-map ("kernelized") attention — Performer
/// FAVOR+, random feature attention, elu+1 linear attention: softmax's
/// similarity exp(q·k) is replaced by a product of features φ(q)·φ(k), so the
/// product reassociates and no Tq×Tk matrix is ever formed (Katharopoulos et
/// al., 2020, "Transformers are RNNs", eq. 4–6):
///
/// ```
/// out_i = φ(q_i)ᵀ (Σ_j φ(k_j) v_jᵀ) / (φ(q_i) · Σ_j φ(k_j) + ε)
///       = [φ(Q) (φ(K)ᵀ V)]_i / ([φ(Q) (φ(K)ᵀ 1)]_i + ε)
/// ```
///
/// The numerator and the denominator are computed together by appending a
/// column of ones to V: `φ(K)ᵀ [V | 1]` is the [F, Dv+1] summary.
///
/// Shapes: `queryFeatures` φ(Q) [B, H, Tq, F], `keyFeatures` φ(K)
/// [B, Hkv, Tk, F], `value` [B, Hkv, Tk, Dv] with Hkv dividing H (grouped
/// queries share their key/value head without copies, as in ``Attention``);
/// the result is [B, H, Tq, Dv]. F is the feature count of the map.
///
/// Edge cases: every query sees at least one key (Tk ≥ 1), so with positive
/// features (Performer, elu+1) the denominator is positive. Feature maps that
/// can be negative (RFA's sin/cos) can make it vanish: the result is then as
/// large as the approximation is poor, not guarded.
public enum KernelizedAttention {
    /// How a kernelized attention is executed; both compute the same function.
    public enum Implementation: Sendable, Equatable {
        /// Fused kernels (CHeedKernels) with hand-written backwards: O(T) time and memory.
        case fused
        /// Composed of Tensor ops, differentiated by the tape: the reference the fused path is tested against.
        case reference
    }

    /// A per-step decay of the causal state — the gated recurrence of random
    /// feature attention (Peng et al., 2021, eq. 7) in its general form:
    ///
    /// ```
    /// S_t = exp(logDecay_t) · S_{t−1} + inputScale_t · φ(k_t) [v_t | 1]ᵀ
    /// ```
    ///
    /// RFA's gate g_t gives `logDecay = log g_t` and `inputScale = 1 − g_t`.
    public struct Decay {
        /// log of the factor that scales the state carried into step t, ≤ 0: [B, H, Tk].
        public var logDecay: Tensor
        /// The weight of step t's own key/value: [B, H, Tk].
        public var inputScale: Tensor

        /// A decay from log-factors (≤ 0) and input scales, each [B, H, Tk].
        public init(logDecay: Tensor, inputScale: Tensor) {
            self.logDecay = logDecay
            self.inputScale = inputScale
        }
    }

    /// Bidirectional (non-causal) attention with features: φ(Q)(φ(K)ᵀV) / (φ(Q)(φ(K)ᵀ1) + ε).
    ///
    /// - Parameters:
    ///   - queryFeatures: φ(Q) [B, H, Tq, F].
    ///   - keyFeatures: φ(K) [B, Hkv, Tk, F], Tk ≥ 1.
    ///   - value: [B, Hkv, Tk, Dv].
    ///   - denominatorEpsilon: ε added to the denominator (0: none).
    ///   - implementation: ``Implementation/fused`` runs one C kernel per
    ///     key/value head (`heed_linear_bidirectional_forward`: the [F, Dv+1]
    ///     summary, then the queries chunk by chunk, no [T, Dv+1]
    ///     intermediate) with a hand-written backward; `.reference` composes
    ///     Tensor ops (two batched products and the division).
    /// - Returns: [B, H, Tq, Dv].
    public static func bidirectional(queryFeatures: Tensor, keyFeatures: Tensor, value: Tensor,
                                     denominatorEpsilon: Float = 0, implementation: Implementation = .fused) -> Tensor {
        if implementation == .fused {
            return fused(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value, causal: false, chunkSize: 64,
                         denominatorEpsilon: denominatorEpsilon, decay: nil)
        }
        let layout = Layout(queryFeatures, keyFeatures, value, "KernelizedAttention.bidirectional")
        let summary = Tensor.matmul(layout.keys, layout.values, transposeA: true)   // [B, Hkv, 1, F, Dv+1]
        let result = layout.queries.matmul(summary)                                 // [B, Hkv, G, Tq, Dv+1]
        return layout.normalized(result, epsilon: denominatorEpsilon)
    }

    /// Causal attention with features by prefix sums over chunks: query i sees
    /// keys j ≤ i + Tk − Tq (bottom-right alignment, as a KV cache needs; with
    /// Tq = Tk that is j ≤ i).
    ///
    /// ```
    /// S_i   = Σ_{j ≤ i} φ(k_j) [v_j | 1]ᵀ                  // the running state [F, Dv+1]
    /// out_i = φ(q_i)ᵀ S_i[:, :Dv] / (φ(q_i)ᵀ S_i[:, Dv] + ε)
    /// ```
    ///
    /// (Katharopoulos et al., 2020, eq. 8–10; the prefix sums of Choromanski et
    /// al., 2021.) The sequence is cut into chunks of `chunkSize`; inside a
    /// chunk the [C, C] lower-triangular block of φ(Q_c)φ(K_c)ᵀ is formed,
    /// across chunks only the state S carries over:
    ///
    /// ```
    /// out_c = φ(Q_c) S_{c−1} + tril(φ(Q_c) φ(K_c)ᵀ) [V_c | 1]
    /// S_c   = S_{c−1} + φ(K_c)ᵀ [V_c | 1]
    /// ```
    ///
    /// so no [F, Dv+1] state per position is ever kept (the O(T·F·Dv) of a
    /// cumulative sum). chunkSize = 1 is the RNN form; larger chunks trade the
    /// O(C) extra work per position of the [C, C] blocks for fewer, larger
    /// products. With a ``Decay`` the state decays per step: with
    /// a_t = Σ_{l ≤ t in chunk} logDecay_l,
    ///
    /// ```
    /// out_t = e^{a_t} φ(q_t)ᵀ S_{c−1} + Σ_{j ≤ t in chunk} e^{a_t − a_j} inputScale_j (φ(q_t)·φ(k_j)) [v_j | 1]
    /// S_c   = e^{a_last} S_{c−1} + Σ_j e^{a_last − a_j} inputScale_j φ(k_j) [v_j | 1]ᵀ
    /// ```
    ///
    /// where every exponent is ≤ 0, so nothing overflows.
    ///
    /// **Implementations.** ``Implementation/fused`` runs this scan in one C
    /// kernel per key/value head (`heed_linear_scan_forward` in CHeedKernels)
    /// with a hand-written backward: time O(T·F·(C + Dv)), and memory O(T·(F +
    /// Dv)) for inputs and outputs plus O(√(T/C)·F·Dv) per head of saved states
    /// (the backward recomputes the states between checkpoints). The reference
    /// composes Tensor ops chunk by chunk: same function, but its tape holds a
    /// state per chunk and its backward scatters every chunk's gradient into a
    /// full-length tensor, O(T²/C).
    ///
    /// - Parameters:
    ///   - queryFeatures: φ(Q) [B, H, Tq, F].
    ///   - keyFeatures: φ(K) [B, Hkv, Tk, F], Tk ≥ Tq ≥ 1.
    ///   - value: [B, Hkv, Tk, Dv].
    ///   - chunkSize: positions per chunk, ≥ 1.
    ///   - denominatorEpsilon: ε added to the denominator.
    ///   - decay: optional per-step decay, tensors [B, H, Tk].
    ///   - implementation: the fused kernel (default) or the composed reference.
    /// - Returns: [B, H, Tq, Dv].
    public static func causal(queryFeatures: Tensor, keyFeatures: Tensor, value: Tensor, chunkSize: Int = 64,
                              denominatorEpsilon: Float = 0, decay: Decay? = nil, implementation: Implementation = .fused) -> Tensor {
        switch implementation {
        case .fused:
            return fused(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value, causal: true, chunkSize: chunkSize,
                         denominatorEpsilon: denominatorEpsilon, decay: decay)
        case .reference:
            return referenceCausal(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value, chunkSize: chunkSize,
                                   denominatorEpsilon: denominatorEpsilon, decay: decay)
        }
    }
}
