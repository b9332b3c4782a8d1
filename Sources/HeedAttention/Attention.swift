import HeedTensor

/// One attention mechanism, composed from its stages (DESIGN.md):
///
/// ```
/// s   = Score(q, k) / τ + Σ biases                  // amplification  [B, H, Tq, Tk]
/// m   = Pattern.mask                                  // sparsity       [B|1, H|1, Tq, Tk]
/// w   = Normalizer(s, m)                              // weights        [B, H, Tq, Tk]
/// out = dropout(w) · v                                // weighted sum   [B, H, Tq, Dv]
/// ```
///
/// Shapes: `query` [B, H, Tq, D], `key` [B, Hkv, Tk, D], `value` [B, Hkv, Tk, Dv]
/// with Hkv dividing H (grouped-query attention; Hkv = 1 is multi-query). The
/// query heads of one group share their key/value head **without copying it**:
/// queries are viewed as [B, Hkv, H/Hkv, Tq, D] and the product broadcasts.
/// Rotary embeddings act on q and k before scoring.
public struct Attention {
    /// How scores are computed (default: q·k/√D).
    public var score: Score = .scaledDot()
    /// τ: scores are divided by it (default 1).
    public var temperature: Float = 1
    /// Additive biases (ALiBi, relative positions, float masks).
    public var biases: [any AttentionBias] = []
    /// Rotary embeddings (or another transform) applied to q at its positions
    /// and k at 0 ..< Tk before scoring. (``MultiHeadAttention`` rotates before
    /// caching instead and leaves this nil.)
    public var positionTransform: (any PositionTransform)?
    /// Which pairs exist.
    public var pattern: Pattern = .full
    /// How scores become weights.
    public var normalizer: Normalizer = .softmax
    /// How the mechanism is executed (see ``Engine``).
    public var engine: Engine = .automatic
    /// Dropout probability on the weights (training), with its generator seed.
    public var dropout: Float = 0
    /// Seed of the dropout mask (Philox; change it every training step).
    public var dropoutSeed: UInt64 = 0

    /// Composes a mechanism; every stage defaults to plain scaled dot-product softmax attention.
    public init(score: Score = .scaledDot(), temperature: Float = 1, biases: [any AttentionBias] = [],
                positionTransform: (any PositionTransform)? = nil,
                pattern: Pattern = .full, normalizer: Normalizer = .softmax, dropout: Float = 0, dropoutSeed: UInt64 = 0) {
        self.score = score
        self.positionTransform = positionTransform
        self.temperature = temperature
        self.biases = biases
        self.pattern = pattern
        self.normalizer = normalizer
        self.dropout = dropout
        self.dropoutSeed = dropoutSeed
    }

    /// How an ``Attention`` is executed. Every engine computes the same
    /// function; the dense engine is the reference the others are tested against.
    public enum Engine: Sendable, Equatable {
        /// The dense engine for small problems, the fastest applicable engine otherwise.
        case automatic
        /// Materialises the [B, H, Tq, Tk] scores; supports every part of the catalogue.
        case dense
    }

    /// The result of one attention call.
    public struct Output {
        /// [B, H, Tq, Dv]
        public var output: Tensor
        /// [B, H, Tq, Tk] (after the normalizer, before dropout).
        public var weights: Tensor
        /// [B, H, Tq] for sampled hard attention, else nil.
        public var logProbability: Tensor?
    }

    /// Runs the dense reference engine: materialises the [B, H, Tq, Tk] scores.
    /// `queryOffset` is the position of the first query relative to the first
    /// key; nil means Tk − Tq (bottom-right: the last query lines up with the
    /// last key, as the window patterns and a KV cache assume).
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, queryOffset: Int? = nil) -> Output {
        precondition(query.rank == 4 && key.rank == 4 && value.rank == 4,
                     "Attention: q, k, v must be [B, H, T, D], got \(query.shape), \(key.shape), \(value.shape)")
        let (b, h, tq) = (query.shape[0], query.shape[1], query.shape[2])
        let (hkv, tk) = (key.shape[1], key.shape[2])
        precondition(hkv >= 1 && h % hkv == 0, "Attention: \(hkv) key/value heads do not divide \(h) query heads")
        precondition(value.shape[1] == hkv && value.shape[2] == tk && key.shape[0] == value.shape[0],
                     "Attention: key \(key.shape) and value \(value.shape) disagree")
        let group = h / hkv
        let queryOffset = queryOffset ?? tk - tq
        var query = query, key = key
        if let positionTransform {
            query = positionTransform.apply(query, offset: queryOffset)
            key = positionTransform.apply(key, offset: 0)
        }

        // 1. Amplification, per key/value group without repeating K/V.
        let q5 = query.reshaped([b, hkv, group, tq, query.shape[3]])                 // [B, Hkv, G, Tq, D]
        let k5 = key.unsqueezed(axis: 2)                                             // [B, Hkv, 1, Tk, D]
        var scores = score(query: q5, key: k5).reshaped([b, h, tq, tk])              // [B, H, Tq, Tk]
        if temperature != 1 { scores = scores * (1 / temperature) }
        for bias in biases {
            scores = scores + bias.bias(heads: h, queryLength: tq, keyLength: tk, queryOffset: queryOffset)
        }

        // 2. Sparsity pattern and 3. normalisation.
        let mask = pattern.isFull ? nil : pattern.mask(batch: b, heads: h, queryLength: tq, keyLength: tk)
        let normalized = normalizer(scores, mask: mask)

        // 4. Weighted sum of values.
        var weights = normalized.weights
        if dropout > 0 { weights = weights.dropout(probability: dropout, seed: dropoutSeed) }
        let w5 = weights.reshaped([b, hkv, group, tq, tk])                           // [B, Hkv, G, Tq, Tk]
        let out = w5.matmul(value.unsqueezed(axis: 2)).reshaped([b, h, tq, value.shape[3]])  // [B, H, Tq, Dv]
        return Output(output: out, weights: normalized.weights, logProbability: normalized.logProbability)
    }
}
