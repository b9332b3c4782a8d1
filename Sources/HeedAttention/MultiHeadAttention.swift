import HeedTensor

/// Something that rotates or shifts queries and keys by position before
/// scoring (rotary embeddings). `offset` is the position of the first row.
public protocol PositionTransform {
    /// x [B, H, T, D] at positions offset ..< offset + T → same shape.
    func apply(_ x: Tensor, offset: Int) -> Tensor
}

/// Multi-head attention (Vaswani et al., 2017, §3.2.2) with grouped-query and
/// multi-query heads (Ainslie et al., 2023; Shazeer, 2019):
///
/// ```
/// Q = x_q W_qᵀ + b_q     → [B, H,   Tq, D]
/// K = x_k W_kᵀ + b_k     → [B, Hkv, Tk, D]
/// V = x_v W_vᵀ + b_v     → [B, Hkv, Tk, Dv]
/// O = Attention(Q, K, V) → [B, Tq, H·Dv]
/// y = O W_oᵀ + b_o       → [B, Tq, E_out]
/// ```
///
/// Weights use PyTorch's [Out, In] layout, so `nn.MultiheadAttention`'s
/// `q_proj_weight`/`in_proj_weight` slices and `out_proj` load as they are.
/// Hkv divides H; each group of H/Hkv query heads shares one K/V head and the
/// shared head is never copied. The mechanism itself (score, pattern, biases,
/// normalizer, dropout) is the ``attention`` value.
public struct MultiHeadAttention {
    /// H: query heads.
    public let heads: Int
    /// Hkv: key/value heads (divides H; 1 is multi-query).
    public let keyValueHeads: Int
    /// D: per-head query/key size.
    public let headDimension: Int
    /// Dv: per-head value size.
    public let valueHeadDimension: Int

    /// [H·D, Eq]
    public var queryWeight: Tensor
    /// [Hkv·D, Ek]
    public var keyWeight: Tensor
    /// [Hkv·Dv, Ev]
    public var valueWeight: Tensor
    /// [E_out, H·Dv]
    public var outputWeight: Tensor
    /// Projection biases ([H·D], [Hkv·D], [Hkv·Dv], [E_out]); nil without bias.
    public var queryBias: Tensor?
    public var keyBias: Tensor?
    public var valueBias: Tensor?
    public var outputBias: Tensor?

    /// The attention mechanism the heads run.
    public var attention: Attention
    /// Rotary embeddings (or another transform) applied to Q and K by position.
    public var positionTransform: (any PositionTransform)?

    /// Every parameter, for optimizers.
    public var parameters: [Tensor] {
        [queryWeight, keyWeight, valueWeight, outputWeight] + [queryBias, keyBias, valueBias, outputBias].compactMap { $0 }
    }

    /// Fresh parameters: projections uniform in ±√(6/(fan_in + fan_out))
    /// (Glorot, as `nn.MultiheadAttention` initialises `in_proj`), the output
    /// projection uniform in ±1/√fan_in (as `nn.Linear`), biases zero. All drawn
    /// from Philox with `seed`, and all `requiresGrad`.
    ///
    /// - Parameters:
    ///   - embedDimension: E, the query input size and (default) output size.
    ///   - keyDimension, valueDimension: Ek and Ev, the key/value input sizes (default E).
    ///   - headDimension: D (default E/H); valueHeadDimension: Dv (default D).
    public init(embedDimension: Int, heads: Int, keyValueHeads: Int? = nil, keyDimension: Int? = nil,
                valueDimension: Int? = nil, headDimension: Int? = nil, valueHeadDimension: Int? = nil,
                outputDimension: Int? = nil, bias: Bool = true, attention: Attention = Attention(), seed: UInt64 = 0) {
        let hkv = keyValueHeads ?? heads
        precondition(heads >= 1 && hkv >= 1 && heads % hkv == 0, "MultiHeadAttention: \(hkv) key/value heads do not divide \(heads) heads")
        let d = headDimension ?? embedDimension / heads
        precondition(d >= 1 && (headDimension != nil || embedDimension % heads == 0),
                     "MultiHeadAttention: embedDimension \(embedDimension) not divisible by \(heads) heads")
        let dv = valueHeadDimension ?? d
        let (ek, ev, eo) = (keyDimension ?? embedDimension, valueDimension ?? embedDimension, outputDimension ?? embedDimension)
        var generator = RandomGenerator(seed: seed)
        func uniform(_ shape: [Int], _ bound: Float) -> Tensor {
            Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator, requiresGrad: true)
        }
        func glorot(_ out: Int, _ input: Int) -> Tensor { uniform([out, input], (6 / Float(out + input)).squareRoot()) }
        self.heads = heads
        self.keyValueHeads = hkv
        self.headDimension = d
        self.valueHeadDimension = dv
        queryWeight = glorot(heads * d, embedDimension)
        keyWeight = glorot(hkv * d, ek)
        valueWeight = glorot(hkv * dv, ev)
        outputWeight = uniform([eo, heads * dv], 1 / Float(heads * dv).squareRoot())
        if bias {
            queryBias = Tensor.zeros([heads * d], requiresGrad: true)
            keyBias = Tensor.zeros([hkv * d], requiresGrad: true)
            valueBias = Tensor.zeros([hkv * dv], requiresGrad: true)
            outputBias = Tensor.zeros([eo], requiresGrad: true)
        }
        self.attention = attention
    }

    /// The result of one call.
    public struct Output {
        /// [B, Tq, E_out]
        public var output: Tensor
        /// Per-head weights [B, H, Tq, Tk]; computed on first access when the
        /// flash engine ran (see ``Attention/Output/weights``).
        public var weights: Tensor {
            get { heads.weights }
            set { heads.weights = newValue }
        }
        /// The attention call of the heads: its engine, log-sum-exp and
        /// ``Attention/Output/weights(rows:heads:)``.
        public var heads: Attention.Output
    }

    /// Self- or cross-attention without a cache. `key` and `value` default to `query`.
    public func callAsFunction(_ query: Tensor, key: Tensor? = nil, value: Tensor? = nil) -> Output {
        var none: KVCache? = nil
        return run(query, key ?? query, value ?? key ?? query, cache: &none)
    }

    /// One decoding step with a KV cache: the new positions' inputs
    /// [B, Tnew, E]; keys/values of earlier steps come from `cache`. Use a
    /// bottom-right causal pattern (`.causal(.bottomRight)`), and with a
    /// windowed cache `.slidingWindow(left: W − 1, right: 0)`, so that the
    /// results equal recomputing the whole sequence.
    public func callAsFunction(_ query: Tensor, key: Tensor? = nil, value: Tensor? = nil, cache: inout KVCache) -> Output {
        var optional: KVCache? = cache
        let result = run(query, key ?? query, value ?? key ?? query, cache: &optional)
        cache = optional!
        return result
    }

    private func run(_ query: Tensor, _ key: Tensor, _ value: Tensor, cache: inout KVCache?) -> Output {
        precondition(query.rank == 3 && key.rank == 3 && value.rank == 3 && key.shape[1] == value.shape[1],
                     "MultiHeadAttention: inputs must be [B, T, E] with keys and values of equal length; got \(query.shape), \(key.shape), \(value.shape)")
        let (b, tq, tk) = (query.shape[0], query.shape[1], key.shape[1])
        let position = cache?.position ?? 0
        var q = splitHeads(query.linear(weight: queryWeight, bias: queryBias), b, tq, heads, headDimension)        // [B, H, Tq, D]
        var k = splitHeads(key.linear(weight: keyWeight, bias: keyBias), b, tk, keyValueHeads, headDimension)       // [B, Hkv, Tk, D]
        let v = splitHeads(value.linear(weight: valueWeight, bias: valueBias), b, tk, keyValueHeads, valueHeadDimension)
        if let positionTransform {
            q = positionTransform.apply(q, offset: position)
            k = positionTransform.apply(k, offset: position)
        }
        var allKeys = k, allValues = v, keyStart = 0
        if cache != nil { (allKeys, allValues, keyStart) = cache!.append(keys: k, values: v) }
        let result = attention(query: q, key: allKeys, value: allValues, queryOffset: position - keyStart)
        let merged = result.output.transposed(1, 2).reshaped([b, tq, heads * valueHeadDimension])  // [B, Tq, H·Dv]
        return Output(output: merged.linear(weight: outputWeight, bias: outputBias), heads: result)
    }

    /// [B, T, n·d] → [B, n, T, d]
    private func splitHeads(_ x: Tensor, _ b: Int, _ t: Int, _ n: Int, _ d: Int) -> Tensor {
        x.reshaped([b, t, n, d]).transposed(1, 2)
    }
}
