import HeedTensor

/// One attention mechanism, composed from its stages (DESIGN.md):
///
/// ```
/// s   = Score(q, k) / τ                               // amplification  [B, H, Tq, Tk]
/// s   = c · tanh(s / c)                               // softcap c (optional)
/// s   = s + Σ biases
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
///
/// Two engines compute it (see ``Engine``): the dense reference engine, which
/// materialises the scores, and the flash engine (``FlashAttention``), which
/// never does; ``engine`` chooses, `.automatic` by default.
public struct Attention {
    /// How scores are computed (default: q·k/√D).
    public var score: Score = .scaledDot()
    /// τ: scores are divided by it (default 1).
    public var temperature: Float = 1
    /// c > 0: scores become c·tanh(s/c) after the temperature and before the
    /// biases (logit soft-capping, Gemma 2); nil: none.
    public var softcap: Float?
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
    /// Seed of the dropout mask (``AttentionDropout``; change it every training step).
    public var dropoutSeed: UInt64 = 0

    /// Composes a mechanism; every stage defaults to plain scaled dot-product softmax attention.
    public init(score: Score = .scaledDot(), temperature: Float = 1, softcap: Float? = nil, biases: [any AttentionBias] = [],
                positionTransform: (any PositionTransform)? = nil,
                pattern: Pattern = .full, normalizer: Normalizer = .softmax, dropout: Float = 0, dropoutSeed: UInt64 = 0,
                engine: Engine = .automatic) {
        self.score = score
        self.positionTransform = positionTransform
        self.temperature = temperature
        self.softcap = softcap
        self.biases = biases
        self.pattern = pattern
        self.normalizer = normalizer
        self.dropout = dropout
        self.dropoutSeed = dropoutSeed
        self.engine = engine
    }

    /// How an ``Attention`` is executed. Every engine computes the same
    /// function; the dense engine is the reference the others are tested against.
    public enum Engine: Sendable, Equatable {
        /// The flash engine when it supports the configuration and the problem
        /// is not tiny (Tq·Tk ≥ ``Attention/flashThreshold``), else dense.
        case automatic
        /// Materialises the [B, H, Tq, Tk] scores; supports every part of the catalogue.
        case dense
        /// ``FlashAttention``: tiled online softmax, O(Tq + Tk) memory, tiles the
        /// pattern masks entirely are skipped. Supports the softmax normalizer
        /// with `.scaledDot` or `.dot` scores, any temperature, softcap,
        /// pattern, bias and dropout. Forcing it on anything else stops with a
        /// precondition failure naming the unsupported stage.
        case flash
    }

    /// The smallest Tq·Tk for which `.automatic` picks the flash engine
    /// (measured: `HeedBenchmarks flash-crossover`, BENCHMARKS.md).
    public static let flashThreshold = 8192

    /// The result of one attention call.
    public struct Output {
        /// [B, H, Tq, Dv]
        public var output: Tensor
        /// [B, H, Tq, Tk] (after the normalizer, before dropout).
        ///
        /// The dense engine returns the weights it computed, differentiable.
        /// The flash engine computes them **on first access** from the
        /// log-sum-exp it saved (exact, no gradient recorded) — only then is
        /// anything of size Tq×Tk allocated. Use ``weights(rows:heads:)`` for
        /// a few rows or heads, or force `.dense` to differentiate the weights.
        public var weights: Tensor {
            get { weightsSource.value }
            set { weightsSource = LazyTensor(newValue) }
        }
        /// [B, H, Tq] for sampled hard attention, else nil.
        public var logProbability: Tensor?
        /// [B, H, Tq]: the per-row log-sum-exp the flash engine saved
        /// (−inf for a row with nothing allowed); nil from the dense engine.
        public var logSumExp: Tensor?
        /// The engine that ran: `.dense` or `.flash`.
        public var engine: Engine
        var weightsSource: LazyTensor
        /// The weights of some rows and heads (nil: all).
        let partialWeights: (Range<Int>?, [Int]?) -> Tensor

        /// The weights of query rows `rows` of heads `heads` (nil: all):
        /// [B, heads.count, rows.count, Tk]. The flash engine recomputes only
        /// those from its saved log-sum-exp; the dense engine slices its weights.
        public func weights(rows: Range<Int>? = nil, heads: [Int]? = nil) -> Tensor { partialWeights(rows, heads) }
    }

    /// Runs the mechanism on the engine ``engine`` selects (see ``Engine``).
    /// `queryOffset` is the position of the first query relative to the first
    /// key; nil means Tk − Tq (bottom-right: the last query lines up with the
    /// last key, as the window patterns and a KV cache assume).
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, queryOffset: Int? = nil) -> Output {
        precondition(query.rank == 4 && key.rank == 4 && value.rank == 4,
                     "Attention: q, k, v must be [B, H, T, D], got \(query.shape), \(key.shape), \(value.shape)")
        let (h, tq) = (query.shape[1], query.shape[2])
        let (hkv, tk) = (key.shape[1], key.shape[2])
        precondition(hkv >= 1 && h % hkv == 0, "Attention: \(hkv) key/value heads do not divide \(h) query heads")
        precondition(value.shape[1] == hkv && value.shape[2] == tk && key.shape[0] == value.shape[0],
                     "Attention: key \(key.shape) and value \(value.shape) disagree")
        let queryOffset = queryOffset ?? tk - tq
        var query = query, key = key
        if let positionTransform {
            query = positionTransform.apply(query, offset: queryOffset)
            key = positionTransform.apply(key, offset: 0)
        }
        switch resolvedEngine(queryLength: tq, keyLength: tk) {
        case .flash: return flash(query: query, key: key, value: value, queryOffset: queryOffset)
        default: return dense(query: query, key: key, value: value, queryOffset: queryOffset)
        }
    }

    /// Why the flash engine cannot run this configuration, or nil when it can.
    public var flashUnsupportedReason: String? {
        if normalizer != .softmax { return "the \(normalizer) normalizer (flash needs .softmax)" }
        switch score {
        case .scaledDot, .dot: return nil
        default: return "the \(score) score (flash needs .scaledDot or .dot)"
        }
    }

    /// The engine that runs a problem of Tq × Tk.
    func resolvedEngine(queryLength tq: Int, keyLength tk: Int) -> Engine {
        switch engine {
        case .dense:
            return .dense
        case .flash:
            if let reason = flashUnsupportedReason {
                preconditionFailure("Attention.Engine.flash cannot run \(reason); use .automatic or .dense")
            }
            return .flash
        case .automatic:
            return flashUnsupportedReason == nil && tq * tk >= Attention.flashThreshold ? .flash : .dense
        }
    }

    /// The dense reference engine: materialises the [B, H, Tq, Tk] scores.
    private func dense(query: Tensor, key: Tensor, value: Tensor, queryOffset: Int) -> Output {
        let (b, h, tq) = (query.shape[0], query.shape[1], query.shape[2])
        let (hkv, tk) = (key.shape[1], key.shape[2])
        let group = h / hkv

        // 1. Amplification, per key/value group without repeating K/V.
        let q5 = query.reshaped([b, hkv, group, tq, query.shape[3]])                 // [B, Hkv, G, Tq, D]
        let k5 = key.unsqueezed(axis: 2)                                             // [B, Hkv, 1, Tk, D]
        var scores = score(query: q5, key: k5).reshaped([b, h, tq, tk])              // [B, H, Tq, Tk]
        if temperature != 1 { scores = scores * (1 / temperature) }
        if let softcap {
            precondition(softcap > 0 && softcap.isFinite, "Attention: softcap \(softcap) must be positive and finite")
            scores = (scores * (1 / softcap)).tanh() * softcap
        }
        for bias in biases {
            scores = scores + bias.bias(heads: h, queryLength: tq, keyLength: tk, queryOffset: queryOffset)
        }

        // 2. Sparsity pattern and 3. normalisation.
        let mask = pattern.isFull ? nil : pattern.mask(batch: b, heads: h, queryLength: tq, keyLength: tk)
        let normalized = normalizer(scores, mask: mask)

        // 4. Weighted sum of values (dropout: the mask every engine draws, AttentionDropout).
        var weights = normalized.weights
        if dropout > 0 {
            weights = weights * AttentionDropout.mask(seed: dropoutSeed, probability: dropout, batch: b, heads: h,
                                                      queryLength: tq, keyLength: tk)
        }
        let w5 = weights.reshaped([b, hkv, group, tq, tk])                           // [B, Hkv, G, Tq, Tk]
        let out = w5.matmul(value.unsqueezed(axis: 2)).reshaped([b, h, tq, value.shape[3]])  // [B, H, Tq, Dv]
        let full = normalized.weights
        return Output(output: out, logProbability: normalized.logProbability, logSumExp: nil, engine: .dense,
                      weightsSource: LazyTensor(full), partialWeights: { rows, heads in
                          Attention.slice(full, rows: rows, heads: heads)
                      })
    }

    /// The flash engine (``FlashAttention``) with this mechanism's settings.
    private func flash(query: Tensor, key: Tensor, value: Tensor, queryOffset: Int) -> Output {
        let scoreScale: Float
        switch score {
        case .scaledDot(let scale): scoreScale = scale ?? 1 / Float(query.shape[3]).squareRoot()
        default: scoreScale = 1
        }
        let configuration = FlashAttention.Configuration(scale: scoreScale / temperature, softcap: softcap, pattern: pattern,
                                                         biases: biases, dropout: dropout, dropoutSeed: dropoutSeed,
                                                         queryOffset: queryOffset)
        let result = FlashAttention.attention(query: query, key: key, value: value, configuration: configuration)
        let (q, k, logSumExp) = (query.detached(), key.detached(), result.logSumExp)
        let partial: (Range<Int>?, [Int]?) -> Tensor = { rows, heads in
            FlashAttention.weights(query: q, key: k, logSumExp: logSumExp, configuration: configuration, rows: rows, heads: heads)
        }
        return Output(output: result.output, logProbability: nil, logSumExp: logSumExp, engine: .flash,
                      weightsSource: LazyTensor { partial(nil, nil) }, partialWeights: partial)
    }

    /// weights[:, heads, rows, :] of a dense [B, H, Tq, Tk] tensor.
    static func slice(_ weights: Tensor, rows: Range<Int>?, heads: [Int]?) -> Tensor {
        var result = weights
        if let heads { result = result.indexSelect(axis: 1, indices: IndexTensor(heads, shape: [heads.count])) }
        if let rows { result = result.sliced(axis: 2, range: rows) }
        return result
    }
}

/// A tensor computed on first use, then kept (the flash engine's weights).
final class LazyTensor {
    private var cached: Tensor?
    private let compute: () -> Tensor

    /// Already computed.
    init(_ tensor: Tensor) {
        cached = tensor
        compute = { tensor }
    }

    /// Computed by `compute` when first read.
    init(compute: @escaping () -> Tensor) { self.compute = compute }

    var value: Tensor {
        if let cached { return cached }
        let computed = compute()
        cached = computed
        return computed
    }
}
