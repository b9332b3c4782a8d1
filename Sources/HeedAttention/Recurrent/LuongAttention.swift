import HeedTensor

/// Luong attention: global (every source position) or local (a window around
/// a monotonic or predicted position), with the dot, general or concat score
/// and, optionally, the attentional hidden state.
///
/// Luong, Pham & Manning, *Effective Approaches to Attention-based Neural
/// Machine Translation* (EMNLP 2015). With h_t the current target state and
/// h̄_s the source states (s = 0..<S, 0-based here):
///
/// ```
/// score(h_t, h̄_s) = h_tᵀ h̄_s                       dot       (eq. 8)
///                 = h_tᵀ W_a h̄_s                   general
///                 = v_aᵀ tanh(W_a [h_t; h̄_s])      concat
/// a_t(s) = exp(score(h_t, h̄_s)) / Σ_s' exp(score(h_t, h̄_s'))      global (eq. 7)
/// c_t    = Σ_s a_t(s) h̄_s
/// h̃_t   = tanh(W_c [c_t; h_t])                    attentional state (eq. 5), optional
/// ```
///
/// Local attention (§3.2) restricts the softmax to the window
/// [p_t − D, p_t + D] and multiplies by a Gaussian centred at p_t (eq. 10),
/// σ = D/2; the window centre is p_t = t for local-m and the predicted
/// p_t = S · sigmoid(v_pᵀ tanh(W_p h_t)) for local-p (eq. 9). See
/// ``Window`` and `LuongAttention+Local.swift`.
///
/// Composition: the scores are catalogue ``Score`` values — dot is
/// ``Score/dot``, general is ``Score/bilinear(weight:)``, and concat is
/// ``Score/additive(queryWeight:keyWeight:vector:)`` over the two row blocks
/// of the one matrix W_a (W_a [h; h̄] = W_a,h h + W_a,h̄ h̄, so gradients reach
/// the single concatenated matrix); global attention runs the ``Attention``
/// engine with a source padding ``Pattern`` and the softmax ``Normalizer``.
///
/// Shapes: `state` h_t [B, Dd] (or [B, Tq, Dd]: Tq target steps at once,
/// as Luong's model without input feeding allows), `encoderOutputs` h̄
/// [B, T, De]; see ``RecurrentAttentionOutput``. Projections (concat W_a,
/// W_p, W_c) are stored for right-multiplication, i.e. the transposes of the
/// paper's matrices; general's W_a is the bilinear form h_tᵀ W_a h̄_s as written.
///
/// Edge cases: masked source positions get weight 0; a row with nothing to
/// attend to (length 0, an all-zero mask row, or a local-m window entirely
/// past the source) gets a zero context and zero weights, passes zero
/// gradient, and its attentional state is tanh(W_c [0; h_t]).
public struct LuongAttention {
    /// The alignment score (eq. 8), holding its parameters.
    public enum Scoring {
        /// h_tᵀ h̄_s; needs Dd = De.
        case dot
        /// h_tᵀ W_a h̄_s with `weight` W_a [Dd, De].
        case general(weight: Tensor)
        /// v_aᵀ tanh(W_a [h_t; h̄_s]) with `weight` W_a stored [Dd + De, A]
        /// (rows 0..<Dd read h_t, rows Dd..<Dd+De read h̄_s) and `vector` v_a [A].
        case concat(weight: Tensor, vector: Tensor)

        /// Which score, without parameters (for the seeded initialiser).
        public enum Kind: Sendable {
            /// h_tᵀ h̄_s.
            case dot
            /// h_tᵀ W_a h̄_s.
            case general
            /// v_aᵀ tanh(W_a [h_t; h̄_s]).
            case concat
        }

        /// The score's trainable parameters.
        public var parameters: [Tensor] {
            switch self {
            case .dot: return []
            case .general(let weight): return [weight]
            case .concat(let weight, let vector): return [weight, vector]
            }
        }
    }

    /// Which source positions a target step looks at (§3.1–3.2).
    public enum Window {
        /// Global attention: every (unmasked) source position.
        case global
        /// Local-m: window [p_t − D, p_t + D] around p_t = t, the target
        /// step's 0-based index (plus the call's `stepOffset`).
        case monotonic(halfWidth: Int)
        /// Local-p: window around p_t = S · sigmoid(v_pᵀ tanh(W_p h_t))
        /// (eq. 9) with `weight` W_p stored [Dd, P] and `vector` v_p [P].
        case predictive(halfWidth: Int, weight: Tensor, vector: Tensor)

        /// Which window, without parameters (for the seeded initialiser).
        public enum Kind: Sendable {
            /// Every source position.
            case global
            /// Local-m with half-width D ≥ 1.
            case monotonic(halfWidth: Int)
            /// Local-p with half-width D ≥ 1.
            case predictive(halfWidth: Int)
        }

        /// The window's trainable parameters.
        public var parameters: [Tensor] {
            if case .predictive(_, let weight, let vector) = self { return [weight, vector] }
            return []
        }
    }

    /// The alignment score and its parameters.
    public var scoring: Scoring
    /// Global, local-m or local-p.
    public var window: Window
    /// W_c stored [De + Dd, Dc] (rows 0..<De read c_t, rows De..<De+Dd read
    /// h_t): when present, the output carries h̃_t = tanh(W_c [c_t; h_t]).
    public var outputWeight: Tensor?
    /// Dd, the decoder (target) state size.
    public let decoderSize: Int
    /// De, the encoder (source) state size.
    public let encoderSize: Int

    /// The trainable parameters: the score's, the window's, then W_c.
    public var parameters: [Tensor] { scoring.parameters + window.parameters + (outputWeight.map { [$0] } ?? []) }

    /// A layer with explicit parameters (used as given; set `requiresGrad`
    /// on them to train or to read their gradients).
    ///
    /// - Parameters:
    ///   - decoderSize: Dd, the size of h_t.
    ///   - encoderSize: De, the size of h̄_s (must equal Dd for `.dot`).
    ///   - scoring: the score with its parameters (shapes on ``Scoring``).
    ///   - window: global, local-m or local-p (D ≥ 1; local-p's shapes on ``Window``).
    ///   - outputWeight: W_c [De + Dd, Dc] for the attentional state, or nil.
    public init(decoderSize: Int, encoderSize: Int, scoring: Scoring, window: Window = .global, outputWeight: Tensor? = nil) {
        let op = "LuongAttention"
        switch scoring {
        case .dot:
            precondition(decoderSize == encoderSize, "\(op): the dot score needs Dd = De, got \(decoderSize) and \(encoderSize)")
        case .general(let weight):
            RecurrentAttention.expect(weight, [decoderSize, encoderSize], "general W_a", op: op)
        case .concat(let weight, let vector):
            precondition(vector.rank == 1, "\(op): concat v_a must be [A], got \(vector.shape)")
            RecurrentAttention.expect(weight, [decoderSize + encoderSize, vector.shape[0]], "concat W_a", op: op)
        }
        switch window {
        case .global: break
        case .monotonic(let halfWidth):
            precondition(halfWidth >= 1, "\(op): local half-width D must be at least 1, got \(halfWidth)")
        case .predictive(let halfWidth, let weight, let vector):
            precondition(halfWidth >= 1, "\(op): local half-width D must be at least 1, got \(halfWidth)")
            precondition(vector.rank == 1, "\(op): local-p v_p must be [P], got \(vector.shape)")
            RecurrentAttention.expect(weight, [decoderSize, vector.shape[0]], "local-p W_p", op: op)
        }
        if let outputWeight {
            precondition(outputWeight.rank == 2 && outputWeight.shape[0] == encoderSize + decoderSize,
                         "\(op): W_c must be [De + Dd, Dc] = [\(encoderSize + decoderSize), Dc], got \(outputWeight.shape)")
        }
        self.decoderSize = decoderSize
        self.encoderSize = encoderSize
        self.scoring = scoring
        self.window = window
        self.outputWeight = outputWeight
    }

    /// A layer with seeded parameters that require gradients.
    ///
    /// One Philox generator seeded with `seed` draws, in row-major order and
    /// each uniform in ±1/√(fan-in) (PyTorch's `nn.Linear` default bound):
    /// the score's parameters (general W_a [Dd, De], fan-in De; or concat
    /// W_a [Dd + De, A], fan-in Dd + De, then v_a [A], fan-in A), then local-p's
    /// W_p [Dd, P] (fan-in Dd) and v_p [P] (fan-in P), then W_c [De + Dd, Dc]
    /// (fan-in De + Dd) when `outputSize` is given.
    ///
    /// - Parameters:
    ///   - attentionSize: A for concat and P for local-p (default Dd).
    ///   - outputSize: Dc, the attentional state size; nil = no W_c.
    public init(decoderSize: Int, encoderSize: Int, score: Scoring.Kind = .general, window: Window.Kind = .global,
                attentionSize: Int? = nil, outputSize: Int? = nil, seed: UInt64 = 0) {
        precondition(decoderSize > 0 && encoderSize > 0, "LuongAttention: sizes must be positive, got Dd \(decoderSize), De \(encoderSize)")
        let hidden = attentionSize ?? decoderSize
        var generator = RandomGenerator(seed: seed)
        let scoring: Scoring
        switch score {
        case .dot: scoring = .dot
        case .general:
            scoring = .general(weight: RecurrentAttention.uniform([decoderSize, encoderSize], fanIn: encoderSize, generator: &generator))
        case .concat:
            let weight = RecurrentAttention.uniform([decoderSize + encoderSize, hidden], fanIn: decoderSize + encoderSize, generator: &generator)
            scoring = .concat(weight: weight, vector: RecurrentAttention.uniform([hidden], fanIn: hidden, generator: &generator))
        }
        let resolved: Window
        switch window {
        case .global: resolved = .global
        case .monotonic(let halfWidth): resolved = .monotonic(halfWidth: halfWidth)
        case .predictive(let halfWidth):
            let weight = RecurrentAttention.uniform([decoderSize, hidden], fanIn: decoderSize, generator: &generator)
            resolved = .predictive(halfWidth: halfWidth, weight: weight,
                                   vector: RecurrentAttention.uniform([hidden], fanIn: hidden, generator: &generator))
        }
        let outputWeight = outputSize.map {
            RecurrentAttention.uniform([encoderSize + decoderSize, $0], fanIn: encoderSize + decoderSize, generator: &generator)
        }
        self.init(decoderSize: decoderSize, encoderSize: encoderSize, scoring: scoring, window: resolved, outputWeight: outputWeight)
    }

    /// The catalogue score that computes eq. 8 for this layer.
    var score: Score {
        switch scoring {
        case .dot:
            return .dot
        case .general(let weight):
            return .bilinear(weight: weight)
        case .concat(let weight, let vector):
            // W_a [h; h̄] = W_a[0..<Dd] h + W_a[Dd..<Dd+De] h̄: the additive score over the two row blocks.
            return .additive(queryWeight: weight.sliced(axis: 0, range: 0..<decoderSize),
                             keyWeight: weight.sliced(axis: 0, range: decoderSize..<(decoderSize + encoderSize)),
                             vector: vector)
        }
    }

    /// Attends from target state(s) `state` over `encoderOutputs`.
    ///
    /// - Parameters:
    ///   - state: h_t, [B, Dd] (one step) or [B, Tq, Dd] (Tq steps).
    ///   - encoderOutputs: h̄, [B, T, De].
    ///   - sourceLengths: optional right padding: row b attends 0..<sourceLengths[b] (0 allowed).
    ///   - sourceMask: optional 0/1 [B, T], 1 = attend; intersected with `sourceLengths`.
    ///   - stepOffset: the 0-based target index of the first state, for
    ///     local-m (p_t = stepOffset + i for the i-th state); ignored otherwise.
    /// - Returns: context, weights, h̃_t when the layer has W_c, and p_t for local windows.
    public func callAsFunction(state: Tensor, encoderOutputs: Tensor, sourceLengths: [Int]? = nil,
                               sourceMask: Tensor? = nil, stepOffset: Int = 0) -> RecurrentAttentionOutput {
        let op = "LuongAttention"
        let inputs = RecurrentAttention.Inputs(state: state, encoderOutputs: encoderOutputs, decoderSize: decoderSize,
                                               encoderSize: encoderSize, op: op)
        let pattern = RecurrentAttention.sourcePattern(lengths: sourceLengths, mask: sourceMask, batch: inputs.batch,
                                                       sourceLength: inputs.sourceLength, op: op)
        let context: Tensor, weights: Tensor, position: Tensor?
        switch window {
        case .global:
            let source = encoderOutputs.unsqueezed(axis: 1)                                   // [B, 1, T, De]
            let result = Attention(score: score, pattern: pattern)(query: inputs.states.unsqueezed(axis: 1), key: source, value: source)
            context = result.output.squeezed(axis: 1)                                         // [B, Tq, De]
            weights = result.weights.squeezed(axis: 1)                                        // [B, Tq, T]
            position = nil
        case .monotonic, .predictive:
            (context, weights, position) = local(inputs, pattern: pattern, stepOffset: stepOffset)
        }
        var attentionalState: Tensor?
        if let outputWeight {
            // eq. 5: h̃_t = tanh(W_c [c_t; h_t]).
            attentionalState = Tensor.concatenate([context, inputs.states], axis: -1).matmul(outputWeight).tanh()  // [B, Tq, Dc]
        }
        return RecurrentAttentionOutput(context: inputs.restore(context), weights: inputs.restore(weights),
                                        attentionalState: attentionalState.map(inputs.restore),
                                        alignedPosition: position.map(inputs.restore))
    }
}
