import HeedTensor

/// Bahdanau (additive) attention: a decoder state scores every encoder output
/// through a one-hidden-layer network, and the context is the weighted sum of
/// the encoder outputs.
///
/// Bahdanau, Cho & Bengio, *Neural Machine Translation by Jointly Learning to
/// Align and Translate* (ICLR 2015): the context (eq. 5), the weights
/// (eq. 6) and the alignment model of appendix A.1.2:
///
/// ```
/// e_j = v_aᵀ tanh(W_a s + U_a h_j)            alignment model (A.1.2)
/// α_j = exp(e_j) / Σ_k exp(e_k)               eq. 6, over unmasked j only
/// c   = Σ_j α_j h_j                           eq. 5
/// ```
///
/// The paper feeds s = s_{i−1}, the decoder state *before* emitting word i;
/// which state is passed is the caller's choice. Parameters are stored for
/// right-multiplication (`s · stateWeight`), i.e. the transposes of the
/// paper's W_a, U_a and of a PyTorch `nn.Linear` weight; the paper has no
/// biases and neither has this layer.
///
/// The layer is the catalogue's ``Attention`` engine with an
/// ``Score/additive(queryWeight:keyWeight:vector:)`` score, a source padding
/// ``Pattern`` and the softmax ``Normalizer``: a decoder state is a query
/// with Tq = 1, and the encoder outputs are both keys and values.
///
/// Shapes: `state` [B, Dd] (or [B, Tq, Dd] for several states at once),
/// `encoderOutputs` [B, T, De]; the result is a ``RecurrentAttentionOutput``
/// with `context` [B, De] and `weights` [B, T] (or [B, Tq, De], [B, Tq, T]).
///
/// Edge cases: masked source positions get weight 0; a batch row with no
/// source position to attend to (length 0, or an all-zero mask row) returns
/// a zero context and zero weights and passes zero gradient — never NaN.
public struct BahdanauAttention {
    /// W_a, stored [Dd, A]: projects the decoder state.
    public var stateWeight: Tensor
    /// U_a, stored [De, A]: projects each encoder output.
    public var encoderWeight: Tensor
    /// v_a [A]: reduces tanh(W_a s + U_a h_j) to a score.
    public var vector: Tensor

    /// Dd, the decoder state size.
    public var decoderSize: Int { stateWeight.shape[0] }
    /// De, the encoder output size.
    public var encoderSize: Int { encoderWeight.shape[0] }
    /// A, the alignment network's hidden size (n in the paper).
    public var attentionSize: Int { vector.shape[0] }

    /// The trainable parameters, in the order W_a, U_a, v_a.
    public var parameters: [Tensor] { [stateWeight, encoderWeight, vector] }

    /// A layer with seeded parameters that require gradients.
    ///
    /// One Philox generator seeded with `seed` draws, in row-major order,
    /// W_a [Dd, A] ~ U(±1/√Dd), then U_a [De, A] ~ U(±1/√De), then
    /// v_a [A] ~ U(±1/√A) — the bound of PyTorch's `nn.Linear` default
    /// initialisation, with fan-in the size each matrix reads.
    public init(decoderSize: Int, encoderSize: Int, attentionSize: Int, seed: UInt64 = 0) {
        precondition(decoderSize > 0 && encoderSize > 0 && attentionSize > 0,
                     "BahdanauAttention: sizes must be positive, got Dd \(decoderSize), De \(encoderSize), A \(attentionSize)")
        var generator = RandomGenerator(seed: seed)
        stateWeight = RecurrentAttention.uniform([decoderSize, attentionSize], fanIn: decoderSize, generator: &generator)
        encoderWeight = RecurrentAttention.uniform([encoderSize, attentionSize], fanIn: encoderSize, generator: &generator)
        vector = RecurrentAttention.uniform([attentionSize], fanIn: attentionSize, generator: &generator)
    }

    /// A layer with explicit parameters (used as given; set `requiresGrad`
    /// on them to train or to read their gradients).
    ///
    /// - Parameters:
    ///   - stateWeight: W_a as [Dd, A].
    ///   - encoderWeight: U_a as [De, A].
    ///   - vector: v_a as [A].
    public init(stateWeight: Tensor, encoderWeight: Tensor, vector: Tensor) {
        precondition(stateWeight.rank == 2 && encoderWeight.rank == 2 && vector.rank == 1,
                     "BahdanauAttention: need W_a [Dd, A], U_a [De, A], v_a [A], got \(stateWeight.shape), \(encoderWeight.shape), \(vector.shape)")
        precondition(stateWeight.shape[1] == vector.shape[0] && encoderWeight.shape[1] == vector.shape[0],
                     "BahdanauAttention: W_a \(stateWeight.shape), U_a \(encoderWeight.shape) and v_a \(vector.shape) disagree on A")
        self.stateWeight = stateWeight
        self.encoderWeight = encoderWeight
        self.vector = vector
    }

    /// Attends from decoder `state` over `encoderOutputs`.
    ///
    /// - Parameters:
    ///   - state: s, [B, Dd] (one step) or [B, Tq, Dd] (several).
    ///   - encoderOutputs: h, [B, T, De] (the paper's annotations h_j).
    ///   - sourceLengths: optional right padding: row b attends 0..<sourceLengths[b] (0 allowed).
    ///   - sourceMask: optional 0/1 [B, T], 1 = attend; intersected with `sourceLengths`.
    /// - Returns: context [B, De] and weights [B, T] (or with a Tq axis).
    public func callAsFunction(state: Tensor, encoderOutputs: Tensor, sourceLengths: [Int]? = nil,
                               sourceMask: Tensor? = nil) -> RecurrentAttentionOutput {
        let op = "BahdanauAttention"
        let inputs = RecurrentAttention.Inputs(state: state, encoderOutputs: encoderOutputs, decoderSize: decoderSize,
                                               encoderSize: encoderSize, op: op)
        let (b, tq, t) = (inputs.batch, inputs.queryLength, inputs.sourceLength)
        let attention = Attention(score: .additive(queryWeight: stateWeight, keyWeight: encoderWeight, vector: vector),
                                  pattern: RecurrentAttention.sourcePattern(lengths: sourceLengths, mask: sourceMask, batch: b,
                                                                            sourceLength: t, op: op))
        let source = encoderOutputs.unsqueezed(axis: 1)                                       // [B, 1, T, De]
        let result = attention(query: inputs.states.unsqueezed(axis: 1), key: source, value: source)
        let context = result.output.squeezed(axis: 1)                                         // [B, Tq, De]
        let weights = result.weights.squeezed(axis: 1)                                        // [B, Tq, T]
        precondition(weights.shape == [b, tq, t])
        return RecurrentAttentionOutput(context: inputs.restore(context), weights: inputs.restore(weights))
    }
}
