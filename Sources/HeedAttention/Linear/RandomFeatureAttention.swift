import Foundation
import HeedTensor

/// Random feature attention, RFA (Peng et al., 2021, "Random Feature
/// Attention"): softmax attention estimated with sinusoidal random Fourier
/// features (Rahimi & Recht, 2007), with an optional learned gate that gives
/// the causal form a recency bias.
///
/// ```
/// φ(x)   = √(1/m) [sin(w_1·x), …, sin(w_m·x), cos(w_1·x), …, cos(w_m·x)]   // eq. 2, 2m entries
/// E[φ(x)·φ(y)] = exp(−‖x − y‖² / 2σ²)                                      // eq. 3
/// exp(x·y/σ²)  = exp(‖x‖²/2σ² + ‖y‖²/2σ²) · exp(−‖x − y‖²/2σ²)             // eq. 4
/// RFA(q_t)     = φ(q_t)ᵀ Σ_i φ(k_i) v_iᵀ / (φ(q_t) · Σ_j φ(k_j))              // eq. 5
/// ```
///
/// With unit-norm queries and keys (``normalizesInputs``, the default: q and k
/// are divided by max(‖x‖, 10⁻¹²)) the norm factors of eq. 4 cancel and RFA
/// estimates softmax(q̂·k̂ᵀ/σ²)V. **σ convention**: eq. 3 holds for
/// w_i ~ N(0, σ⁻²I) — the Gaussian kernel of bandwidth σ has spectral density
/// N(0, σ⁻²I) — which is what the paper's use of eq. 3 needs; its text writes
/// N(0, σ²I). Heed stores standard-normal rows w̃_i in ``projection`` and
/// uses w_i = w̃_i / σ.
///
/// **Gating** (§3.2, eq. 7), causal only, from a per-step input x_t:
///
/// ```
/// g_t = sigmoid(w_g · x_t + b_g)
/// S_t = g_t S_{t−1} + (1 − g_t) φ(k_t) v_tᵀ
/// z_t = g_t z_{t−1} + (1 − g_t) φ(k_t)
/// out_t = φ(q_t)ᵀ S_t / (φ(q_t) · z_t)
/// ```
///
/// Shapes: q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv] with Hkv
/// dividing H → [B, H, Tq, Dv]. **Edge case**: sin/cos features can be
/// negative, so the denominator φ(q)·Σφ(k) is an estimate that can approach
/// 0 when m is small or σ small; nothing guards it (``denominatorEpsilon``
/// defaults to 0).
public struct RandomFeatureAttention {
    /// The learned gate of eq. 7: g_t = sigmoid(w_g · x_t + b_g), one per head.
    public struct Gate {
        /// w_g: [H, Dx], one row per head.
        public var weight: Tensor
        /// b_g: [H].
        public var bias: Tensor

        /// A gate with given parameters (they keep their `requiresGrad`).
        public init(weight: Tensor, bias: Tensor) {
            precondition(weight.rank == 2 && bias.shape == [weight.shape[0]],
                         "RandomFeatureAttention.Gate: weight \(weight.shape) must be [H, Dx] and bias \(bias.shape) [H]")
            self.weight = weight
            self.bias = bias
        }

        /// A gate initialised like `torch.nn.Linear`: w_g ~ U(−1/√Dx, 1/√Dx)
        /// drawn from Philox by `seed`, b_g = 0 (g = ½ for x = 0); both require gradients.
        public init(inputDimension: Int, heads: Int, seed: UInt64) {
            precondition(inputDimension >= 1 && heads >= 1, "RandomFeatureAttention.Gate: empty shape")
            let bound = Float(1 / Double(inputDimension).squareRoot())
            self.weight = Tensor.randomUniform([heads, inputDimension], low: -bound, high: bound, seed: seed, requiresGrad: true)
            self.bias = Tensor.zeros([heads], requiresGrad: true)
        }

        /// The gate's logits w_g · x_t + b_g: input [B, H|1, T, Dx] → [B, H, T].
        public func logits(_ input: Tensor) -> Tensor {
            let (heads, dx) = (weight.shape[0], weight.shape[1])
            precondition(input.rank == 4 && input.shape[3] == dx && (input.shape[1] == heads || input.shape[1] == 1),
                         "RandomFeatureAttention.Gate: input \(input.shape) is not [B, \(heads) or 1, T, \(dx)]")
            let perHead = input.matmul(weight.reshaped([1, heads, dx, 1]))              // [B, H, T, 1]
            return (perHead + bias.reshaped([1, heads, 1, 1])).squeezed(axis: 3)        // [B, H, T]
        }

        /// The decay of the causal state: log g_t and 1 − g_t, each [B, H, T].
        ///
        /// ```
        /// log g = log sigmoid(ℓ) = min(ℓ, 0) − log(1 + e^{−|ℓ|})     (no overflow for any ℓ)
        /// 1 − g = sigmoid(−ℓ)
        /// ```
        public func decay(_ input: Tensor) -> KernelizedAttention.Decay {
            let l = logits(input)                                                          // [B, H, T]
            let logGate = Tensor.minimum(l, Tensor(scalar: 0)) - (1 + (-l.abs()).exp()).log()
            return KernelizedAttention.Decay(logDecay: logGate, inputScale: (-l).sigmoid())
        }
    }

    /// m: the number of random frequencies (φ has 2m entries).
    public let features: Int
    /// D, the head dimension of queries and keys.
    public let headDimension: Int
    /// Whether the frequencies are drawn in orthogonal blocks (as Performer's ORFs) or i.i.d.
    public let orthogonal: Bool
    /// The seed of the current draw (nil when the projection was given).
    public private(set) var seed: UInt64?
    /// w̃: [m, D], standard-normal rows; the frequencies are w̃ / σ.
    public private(set) var projection: Tensor
    /// σ: the kernel bandwidth; RFA estimates softmax with temperature σ² on unit vectors.
    public var sigma: Float
    /// Whether q and k are scaled to unit norm first (the paper's setting).
    public var normalizesInputs: Bool
    /// The gate of the causal form (nil: ungated).
    public var gate: Gate?
    /// ε added to the denominator (0: none).
    public var denominatorEpsilon: Float = 0
    /// Fused kernels (default) or the composed reference path.
    public var implementation: KernelizedAttention.Implementation = .fused

    /// RFA with standard-normal frequencies [features, headDimension] drawn from Philox by `seed`.
    public init(features: Int, headDimension: Int, sigma: Float = 1, orthogonal: Bool = false, seed: UInt64,
                normalizesInputs: Bool = true, gate: Gate? = nil) {
        precondition(features >= 1 && headDimension >= 1, "RandomFeatureAttention: features and headDimension must be ≥ 1")
        self.features = features
        self.headDimension = headDimension
        self.orthogonal = orthogonal
        self.seed = seed
        self.projection = RandomFeatureAttention.draw(features: features, headDimension: headDimension, orthogonal: orthogonal, seed: seed)
        self.sigma = sigma
        self.normalizesInputs = normalizesInputs
        self.gate = gate
    }

    /// RFA with given standard-normal rows w̃ [m, D] (for fixtures).
    public init(projection: Tensor, sigma: Float = 1, normalizesInputs: Bool = true, gate: Gate? = nil) {
        precondition(projection.rank == 2 && projection.shape[0] >= 1 && projection.shape[1] >= 1,
                     "RandomFeatureAttention: projection must be [m, D], got \(projection.shape)")
        self.features = projection.shape[0]
        self.headDimension = projection.shape[1]
        self.orthogonal = false
        self.seed = nil
        self.projection = projection.detached()
        self.sigma = sigma
        self.normalizesInputs = normalizesInputs
        self.gate = gate
    }

    /// Draws new frequencies from `seed` (same m, D and kind), as RFA does during training.
    public mutating func redraw(seed: UInt64) {
        self.seed = seed
        projection = RandomFeatureAttention.draw(features: features, headDimension: headDimension, orthogonal: orthogonal, seed: seed)
    }

    static func draw(features: Int, headDimension: Int, orthogonal: Bool, seed: UInt64) -> Tensor {
        orthogonal ? RandomProjection.orthogonalGaussian(rows: features, columns: headDimension, seed: seed)
                   : RandomProjection.gaussian(rows: features, columns: headDimension, seed: seed)
    }

    /// φ(x) [B, H, T, 2m] of x [B, H, T, D] (eq. 2, after unit-normalising x when asked).
    ///
    /// Fused (one recorded op, ``implementation`` `.fused`) or composed of Tensor ops (`.reference`).
    public func features(of x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == headDimension,
                     "RandomFeatureAttention.features: input \(x.shape) is not [B, H, T, \(headDimension)]")
        switch implementation {
        case .fused: return FusedFeatureMaps.randomFourier(x, projection: projection, sigma: sigma, normalizesInputs: normalizesInputs)
        case .reference: return referenceFeatures(of: x)
        }
    }

    /// The features composed of Tensor ops: the reference of the fused map.
    func referenceFeatures(of x: Tensor) -> Tensor {
        var unit = x
        if normalizesInputs {
            let norm = x.square().sum(axis: 3, keepDims: true).sqrt()                 // [B, H, T, 1]
            unit = x / Tensor.maximum(norm, Tensor(scalar: 1e-12))                    // [B, H, T, D]
        }
        let angles = Tensor.matmul(unit, projection, transposeB: true) * (1 / sigma)   // [B, H, T, m]
        let scale = Float(1 / Double(features).squareRoot())
        return Tensor.concatenate([angles.sin(), angles.cos()], axis: 3) * scale       // [B, H, T, 2m]
    }

    /// RFA, bidirectional (eq. 5) or causal (query i sees keys j ≤ i + Tk − Tq),
    /// gated when ``gate`` is set (causal only).
    ///
    /// The fused implementation (the default) hands q and k to the kernels,
    /// which compute φ for each chunk of 64 rows as they read it: no
    /// [B, H, T, 2m] feature tensors, forward or backward (at L = 32768 those
    /// were 256 MiB each, and RFA ran at 112–124 GFLOP/s against 142–144 now;
    /// BENCHMARKS.md).
    ///
    /// - Parameters:
    ///   - query: [B, H, Tq, D].
    ///   - key: [B, Hkv, Tk, D], Tk ≥ 1 (Tk ≥ Tq when causal).
    ///   - value: [B, Hkv, Tk, Dv].
    ///   - causal: whether to mask the future.
    ///   - gateInput: x_t for the gate, [B, H|1, Tk, Dx]; required when gated.
    ///   - chunkSize: positions per chunk of the causal scan.
    /// - Returns: [B, H, Tq, Dv].
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, causal: Bool = false,
                               gateInput: Tensor? = nil, chunkSize: Int = 64) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && query.shape[3] == headDimension && key.shape[3] == headDimension,
                     "RandomFeatureAttention: query \(query.shape) and key \(key.shape) must be [B, H, T, \(headDimension)]")
        precondition(causal || gate == nil, "RandomFeatureAttention: the gate (eq. 7) is defined for the causal form only")
        var decay: KernelizedAttention.Decay?
        if causal, let gate {
            guard let gateInput else { preconditionFailure("RandomFeatureAttention: a gated RFA needs gateInput [B, H|1, Tk, Dx]") }
            precondition(gateInput.shape[2] == key.shape[2], "RandomFeatureAttention: gateInput \(gateInput.shape) has not Tk = \(key.shape[2]) steps")
            decay = gate.decay(gateInput)
        }
        if implementation == .fused {
            // The kernels map q and k chunk by chunk: no [B, H, T, 2m] feature tensors.
            let map = KernelizedAttention.RandomFourierMap(projection: projection, sigma: sigma, normalizesInputs: normalizesInputs)
            return KernelizedAttention.fused(queryFeatures: query, keyFeatures: key, value: value, causal: causal,
                                             chunkSize: causal ? chunkSize : 64, denominatorEpsilon: denominatorEpsilon, decay: decay,
                                             featureMap: .randomFourier(map))
        }
        let queryFeatures = features(of: query)                                        // [B, H, Tq, 2m]
        let keyFeatures = features(of: key)                                            // [B, Hkv, Tk, 2m]
        guard causal else {
            return KernelizedAttention.bidirectional(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value,
                                                     denominatorEpsilon: denominatorEpsilon, implementation: implementation)
        }
        return KernelizedAttention.causal(queryFeatures: queryFeatures, keyFeatures: keyFeatures, value: value,
                                          chunkSize: chunkSize, denominatorEpsilon: denominatorEpsilon, decay: decay,
                                          implementation: implementation)
    }
}
