import HeedTensor

/// The basic layers that Transformer models are assembled from. Weights use
/// PyTorch's layouts so checkpoints load without transposes.

/// y = x Wᵀ + b (`nn.Linear`): weight [Out, In], bias [Out].
public struct Linear {
    /// [Out, In]
    public var weight: Tensor
    /// [Out] or nil.
    public var bias: Tensor?

    /// Fresh parameters as `nn.Linear` draws them: weight and bias uniform in
    /// ±1/√In (Philox, `seed`), requiring gradients.
    public init(inputSize: Int, outputSize: Int, bias: Bool = true, seed: UInt64 = 0) {
        var generator = RandomGenerator(seed: seed)
        let bound = 1 / Float(inputSize).squareRoot()
        weight = Tensor.randomUniform([outputSize, inputSize], low: -bound, high: bound, generator: &generator, requiresGrad: true)
        self.bias = bias ? Tensor.randomUniform([outputSize], low: -bound, high: bound, generator: &generator, requiresGrad: true) : nil
    }

    /// Given parameters (e.g. from a checkpoint).
    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2 && (bias.map { $0.shape == [weight.shape[0]] } ?? true),
                     "Linear: weight must be [Out, In] and bias [Out]; got \(weight.shape), \(bias?.shape ?? [])")
        self.weight = weight
        self.bias = bias
    }

    /// x [.., In] → [.., Out].
    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight: weight, bias: bias) }

    /// Weight and bias, for optimizers.
    public var parameters: [Tensor] { [weight] + (bias.map { [$0] } ?? []) }
}

/// A lookup table (`nn.Embedding`): table [V, D]; ids of any shape → ids.shape + [D].
public struct Embedding {
    /// [V, D]
    public var table: Tensor

    /// Fresh table N(0, 1) as `nn.Embedding` draws it (Philox, `seed`).
    public init(count: Int, dimension: Int, seed: UInt64 = 0) {
        table = Tensor.randomNormal([count, dimension], seed: seed, requiresGrad: true)
    }

    /// A given table [V, D].
    public init(table: Tensor) {
        precondition(table.rank == 2, "Embedding: table must be [V, D], got \(table.shape)")
        self.table = table
    }

    /// ids → ids.shape + [D].
    public func callAsFunction(_ ids: IndexTensor) -> Tensor { table.embedding(ids) }
}

/// Layer normalisation over the last axis (`nn.LayerNorm(D)`): weight and bias [D].
public struct LayerNorm {
    /// γ [D]
    public var weight: Tensor
    /// β [D] or nil.
    public var bias: Tensor?
    /// ε inside the square root.
    public var epsilon: Float

    /// weight = 1, bias = 0, as `nn.LayerNorm` starts.
    public init(dimension: Int, epsilon: Float = 1e-5, bias: Bool = true) {
        weight = Tensor.ones([dimension], requiresGrad: true)
        self.bias = bias ? Tensor.zeros([dimension], requiresGrad: true) : nil
        self.epsilon = epsilon
    }

    /// Given parameters.
    public init(weight: Tensor, bias: Tensor?, epsilon: Float) {
        self.weight = weight
        self.bias = bias
        self.epsilon = epsilon
    }

    /// x [.., D] → [.., D].
    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, epsilon: epsilon) }
}

/// RMS normalisation over the last axis (Llama's `RMSNorm`): weight [D].
public struct RMSNorm {
    /// γ [D]
    public var weight: Tensor
    /// ε inside the square root.
    public var epsilon: Float

    /// weight = 1.
    public init(dimension: Int, epsilon: Float = 1e-6) {
        weight = Tensor.ones([dimension], requiresGrad: true)
        self.epsilon = epsilon
    }

    /// Given parameters.
    public init(weight: Tensor, epsilon: Float) {
        self.weight = weight
        self.epsilon = epsilon
    }

    /// x [.., D] → [.., D].
    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, epsilon: epsilon) }
}
