import HeedTensor

/// Linear attention with elu+1 features (Katharopoulos et al., 2020,
/// "Transformers are RNNs: Fast Autoregressive Transformers with Linear
/// Attention"): the similarity exp(q·k) is replaced by φ(q)·φ(k) with a
/// positive feature map, so attention costs O(T) and, causally, is an RNN.
///
/// ```
/// φ(x)  = elu(x) + 1 = x + 1 (x > 0),  eˣ (x ≤ 0)                    // eq. 7
/// out_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / (φ(q_i)ᵀ Σ_j φ(k_j) + ε)           // eq. 6 (bidirectional)
/// S_i   = S_{i−1} + φ(k_i) v_iᵀ,  z_i = z_{i−1} + φ(k_i)               // eq. 9–10, RNN form (causal)
/// out_i = φ(q_i)ᵀ S_i / (φ(q_i)ᵀ z_i + ε)
/// ```
///
/// ε = 10⁻⁶ by default (the authors' `fast-transformers` code adds it to the
/// denominator). There is no 1/√D scaling: the paper's φ is applied to q and
/// k as they are.
///
/// The causal form runs as chunked prefix sums (``KernelizedAttention/causal(queryFeatures:keyFeatures:value:chunkSize:denominatorEpsilon:decay:)``):
/// memory O(T·D·Dv / chunkSize); chunkSize = 1 is the RNN of eq. 9–10. The
/// fused implementation (the default) hands q and k to the kernels, which
/// apply φ to each chunk as they read it: no φ(Q), φ(K) tensors exist, in the
/// forward or the backward (7–9 % faster at L = 1024–16384 than mapping
/// first, BENCHMARKS.md).
///
/// Shapes: q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv] with Hkv
/// dividing H → [B, H, Tq, Dv]. φ > 0 and every query sees ≥ 1 key, so no
/// denominator vanishes.
public struct LinearAttention {
    /// ε added to the denominator.
    public var denominatorEpsilon: Float
    /// Fused kernels (default) or the composed reference path.
    public var implementation: KernelizedAttention.Implementation = .fused

    /// Linear attention whose denominator gets ε added (guards an all-zero feature row).
    public init(denominatorEpsilon: Float = 1e-6) {
        self.denominatorEpsilon = denominatorEpsilon
    }

    /// φ(x) = elu(x) + 1, elementwise: [.., D] → [.., D]. Fused (one pass, one
    /// recorded op) or, for `.reference`, composed as relu(x) + exp(min(x, 0))
    /// so that neither branch overflows.
    public static func features(_ x: Tensor, implementation: KernelizedAttention.Implementation = .fused) -> Tensor {
        switch implementation {
        case .fused: return FusedFeatureMaps.eluPlusOne(x)
        case .reference: return x.relu() + Tensor.minimum(x, Tensor(scalar: 0)).exp()
        }
    }

    /// Linear attention, bidirectional or causal (query i sees keys
    /// j ≤ i + Tk − Tq, bottom-right alignment).
    ///
    /// - Parameters:
    ///   - query: [B, H, Tq, D].
    ///   - key: [B, Hkv, Tk, D], Tk ≥ 1 (Tk ≥ Tq when causal).
    ///   - value: [B, Hkv, Tk, Dv].
    ///   - causal: whether to mask the future.
    ///   - chunkSize: positions per chunk of the causal scan.
    /// - Returns: [B, H, Tq, Dv].
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, causal: Bool = false, chunkSize: Int = 64) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && query.shape[3] == key.shape[3],
                     "LinearAttention: query \(query.shape) and key \(key.shape) must be [B, H, T, D] with the same D")
        if implementation == .fused {
            // The kernels apply φ chunk by chunk as they read q and k: no φ(Q), φ(K) tensors.
            return KernelizedAttention.fused(queryFeatures: query, keyFeatures: key, value: value, causal: causal,
                                             chunkSize: causal ? chunkSize : 64, denominatorEpsilon: denominatorEpsilon, decay: nil,
                                             featureMap: .eluPlusOne)
        }
        let queryFeatures = LinearAttention.features(query, implementation: implementation)   // [B, H, Tq, D]
        let keyFeatures = LinearAttention.features(key, implementation: implementation)       // [B, Hkv, Tk, D]
        return causal
            ? KernelizedAttention.causal(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value,
                                         chunkSize: chunkSize, denominatorEpsilon: denominatorEpsilon, implementation: implementation)
            : KernelizedAttention.bidirectional(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value,
                                                denominatorEpsilon: denominatorEpsilon, implementation: implementation)
    }
}
