import HeedTensor

extension MultiHeadAttention {
    /// Given projection weights (e.g. from a checkpoint), in PyTorch's [Out, In]
    /// layout; no parameters are drawn.
    ///
    /// - Parameters:
    ///   - queryWeight: [H·D, Eq]; keyWeight: [Hkv·D, Ek]; valueWeight: [Hkv·Dv, Ev];
    ///     outputWeight: [E_out, H·Dv].
    ///   - heads: H; keyValueHeads: Hkv (divides H; default H). D and Dv follow
    ///     from the weight shapes.
    ///   - queryBias, keyBias, valueBias, outputBias: [H·D], [Hkv·D], [Hkv·Dv], [E_out] or nil.
    public init(queryWeight: Tensor, keyWeight: Tensor, valueWeight: Tensor, outputWeight: Tensor,
                queryBias: Tensor? = nil, keyBias: Tensor? = nil, valueBias: Tensor? = nil, outputBias: Tensor? = nil,
                heads: Int, keyValueHeads: Int? = nil, attention: Attention = Attention(),
                positionTransform: (any PositionTransform)? = nil) {
        let hkv = keyValueHeads ?? heads
        precondition(heads >= 1 && hkv >= 1 && heads % hkv == 0, "MultiHeadAttention: \(hkv) key/value heads do not divide \(heads) heads")
        precondition([queryWeight, keyWeight, valueWeight, outputWeight].allSatisfy { $0.rank == 2 },
                     "MultiHeadAttention: weights must be [Out, In]")
        let d = queryWeight.shape[0] / heads, dv = valueWeight.shape[0] / hkv
        precondition(d >= 1 && queryWeight.shape[0] == heads * d && keyWeight.shape == [hkv * d, keyWeight.shape[1]]
                     && valueWeight.shape[0] == hkv * dv && outputWeight.shape[1] == heads * dv,
                     "MultiHeadAttention: weights \(queryWeight.shape), \(keyWeight.shape), \(valueWeight.shape), \(outputWeight.shape) do not fit \(heads) heads and \(hkv) key/value heads")
        self.heads = heads
        self.keyValueHeads = hkv
        self.headDimension = d
        self.valueHeadDimension = dv
        self.queryWeight = queryWeight
        self.keyWeight = keyWeight
        self.valueWeight = valueWeight
        self.outputWeight = outputWeight
        self.queryBias = queryBias
        self.keyBias = keyBias
        self.valueBias = valueBias
        self.outputBias = outputBias
        self.attention = attention
        self.positionTransform = positionTransform
    }
}
