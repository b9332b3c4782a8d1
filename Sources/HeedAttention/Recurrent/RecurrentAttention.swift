import HeedTensor

/// What a recurrent-era attention layer (``BahdanauAttention``, ``LuongAttention``)
/// returns for one decoder step, or for a block of decoder steps.
///
/// A layer takes decoder states either as one step, `[B, Dd]`, or as `Tq`
/// steps at once, `[B, Tq, Dd]` (Luong attention without input feeding, or
/// teacher-forced scoring); every output keeps that layout:
///
/// ```
/// state [B, Dd]      → context [B, De],     weights [B, T]
/// state [B, Tq, Dd]  → context [B, Tq, De], weights [B, Tq, T]
/// ```
public struct RecurrentAttentionOutput {
    /// The context vector c = Σ_s a(s) h̄_s: [B, De] or [B, Tq, De].
    /// All zeros for a row with nothing to attend to.
    public var context: Tensor
    /// The attention weights a(s): [B, T] or [B, Tq, T]. Zero at masked
    /// source positions (and outside a local window); a row with nothing to
    /// attend to is all zeros and passes zero gradient. They sum to 1 over a
    /// row except for Luong's local attention, whose Gaussian factor
    /// multiplies the normalised alignment (Luong et al., 2015, eq. 10).
    public var weights: Tensor
    /// Luong's attentional hidden state h̃ = tanh(W_c [c; h]) (eq. 5):
    /// [B, Dc] or [B, Tq, Dc] when the layer has an output weight, else nil.
    public var attentionalState: Tensor?
    /// The window centre p for local attention (eq. 9 for local-p, p = t for
    /// local-m): [B] or [B, Tq], in 0-based source positions; nil for global.
    public var alignedPosition: Tensor?

    /// Bundles a layer's outputs (shapes as documented on each property).
    public init(context: Tensor, weights: Tensor, attentionalState: Tensor? = nil, alignedPosition: Tensor? = nil) {
        self.context = context
        self.weights = weights
        self.attentionalState = attentionalState
        self.alignedPosition = alignedPosition
    }
}

/// Shared plumbing of the recurrent-era layers: input layouts, the source
/// padding pattern and seeded parameter initialisation.
enum RecurrentAttention {
    /// Decoder states as [B, Tq, Dd], whether the caller gave a single step
    /// [B, Dd], and the checked sizes.
    struct Inputs {
        /// [B, Tq, Dd]
        let states: Tensor
        /// [B, T, De]
        let encoderOutputs: Tensor
        let singleStep: Bool
        var batch: Int { states.shape[0] }
        var queryLength: Int { states.shape[1] }
        var sourceLength: Int { encoderOutputs.shape[1] }

        init(state: Tensor, encoderOutputs: Tensor, decoderSize: Int, encoderSize: Int, op: String) {
            precondition(state.rank == 2 || state.rank == 3,
                         "\(op): decoder state must be [B, Dd] or [B, Tq, Dd], got \(state.shape)")
            precondition(encoderOutputs.rank == 3, "\(op): encoder outputs must be [B, T, De], got \(encoderOutputs.shape)")
            singleStep = state.rank == 2
            states = singleStep ? state.unsqueezed(axis: 1) : state                    // [B, Tq, Dd]
            self.encoderOutputs = encoderOutputs
            precondition(states.shape[0] == encoderOutputs.shape[0],
                         "\(op): decoder state \(state.shape) and encoder outputs \(encoderOutputs.shape) disagree on the batch")
            precondition(states.shape[2] == decoderSize,
                         "\(op): decoder state \(state.shape) has size \(states.shape[2]), the layer expects \(decoderSize)")
            precondition(encoderOutputs.shape[2] == encoderSize,
                         "\(op): encoder outputs \(encoderOutputs.shape) have size \(encoderOutputs.shape[2]), the layer expects \(encoderSize)")
        }

        /// Drops the query axis again when the caller gave a single step.
        func restore(_ x: Tensor) -> Tensor { singleStep ? x.squeezed(axis: 1) : x }
    }

    /// The source positions each batch row may attend: right padding by
    /// `lengths` (b sees 0..<lengths[b]) intersected with an explicit 0/1
    /// `mask` [B, T] (1 = attend). `.full` when neither is given.
    static func sourcePattern(lengths: [Int]?, mask: Tensor?, batch: Int, sourceLength: Int, op: String) -> Pattern {
        var parts: [Pattern] = []
        if let lengths {
            precondition(lengths.count == batch, "\(op): \(lengths.count) source lengths for batch \(batch)")
            precondition(lengths.allSatisfy { 0 <= $0 && $0 <= sourceLength },
                         "\(op): source lengths \(lengths) must lie in 0...\(sourceLength)")
            parts.append(.keyPadding(lengths: lengths))
        }
        if let mask {
            precondition(mask.shape == [batch, sourceLength], "\(op): source mask must be [\(batch), \(sourceLength)], got \(mask.shape)")
            parts.append(.mask(mask.reshaped([batch, 1, 1, sourceLength])))                // [B, 1, 1, T]
        }
        switch parts.count {
        case 0: return .full
        case 1: return parts[0]
        default: return .intersection(parts)
        }
    }

    /// A parameter drawn uniformly from [−1/√fanIn, 1/√fanIn) in row-major
    /// order (the bound of PyTorch's `nn.Linear` default initialisation),
    /// requiring gradients.
    static func uniform(_ shape: [Int], fanIn: Int, generator: inout RandomGenerator) -> Tensor {
        let bound = 1 / Float(Swift.max(fanIn, 1)).squareRoot()
        return Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator, requiresGrad: true)
    }

    /// Checks that a parameter has the expected shape.
    static func expect(_ tensor: Tensor, _ shape: [Int], _ name: String, op: String) {
        precondition(tensor.shape == shape, "\(op): \(name) must be \(shape), got \(tensor.shape)")
    }
}
