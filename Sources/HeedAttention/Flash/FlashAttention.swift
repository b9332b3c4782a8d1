import CHeedKernels
import HeedTensor

/// The fused tiled ("flash") attention engine for the CPU: exact softmax
/// attention that never materialises the [Tq, Tk] scores.
///
/// FlashAttention-2 (Dao, 2023, arXiv:2307.08691). **Forward** (Algorithm 1):
/// for each query tile, walk the key tiles the ``Pattern`` does not mask
/// entirely, keeping per row a running maximum m and sum ℓ:
///
/// ```
/// S = scale · Q_i K_jᵀ                          [Bq, Bk]   (scale = 1/√D / τ by default)
/// S = c · tanh(S / c)                                      (softcap c, if set)
/// S = S + bias_ij;  S = −inf where the pattern masks
/// m′ = max(m, rowmax S);  P = exp(S − m′)
/// ℓ  = e^(m − m′) ℓ + rowsum P
/// O  = e^(m − m′) O + (P ∘ keep) V_j            (keep: dropout multipliers, AttentionDropout)
/// at the end: O = O / ℓ,  LSE = m + log ℓ       [B, H, Tq]
/// ```
///
/// **Backward** (Algorithm 2) recomputes each tile from the saved LSE:
/// P = exp(S − LSE), Δ = rowsum(dO ∘ O), dV += (P ∘ keep)ᵀ dO,
/// dP = (dO Vᵀ) ∘ keep, dS = P ∘ (dP − Δ) (this is ∂L/∂bias), and through
/// the softcap (1 − tanh²) and the scale: dQ += dS K, dK += dSᵀ Q.
///
/// Memory: O(B·H·Tq) for LSE plus O(Tk·D) packed keys (and values in the
/// backward) per key/value head in flight and O(Bq·Bk) per thread; the
/// backward adds one dQ accumulator per thread for the heads in flight.
///
/// Shapes: `query` [B, H, Tq, D], `key` [B, Hkv, Tk, D], `value`
/// [B, Hkv, Tk, Dv], Hkv dividing H (grouped-query attention: query head h
/// reads key/value head h / (H/Hkv), never a copy). Work is split over
/// (batch, head, query tile) in the forward and over (key/value head, key
/// tile) in the backward, across all cores.
///
/// Edge cases: a row whose keys are all masked (by the pattern, or by −inf
/// biases) returns zeros, LSE = −inf, and passes zero gradient — never NaN.
/// Tk = 0 gives zeros.
public enum FlashAttention {
    /// Everything but the inputs: the score scale, softcap, pattern, biases and dropout.
    public struct Configuration {
        /// Multiplies q·k (nil: 1/√D). Fold a temperature τ in as scale/τ.
        public var scale: Float?
        /// c > 0: scores become c·tanh(s/c) before the biases (Gemma 2); nil: none.
        public var softcap: Float?
        /// Which pairs exist; tiles it masks entirely are never computed.
        public var pattern: Pattern
        /// Additive biases, added tile by tile after the softcap.
        public var biases: [any AttentionBias]
        /// Dropout probability on the weights (``AttentionDropout``'s mask).
        public var dropout: Float
        /// The dropout seed.
        public var dropoutSeed: UInt64
        /// Position of the first query relative to the first key, for the
        /// biases; nil means Tk − Tq (bottom-right).
        public var queryOffset: Int?

        /// Plain scaled dot-product softmax attention unless told otherwise.
        public init(scale: Float? = nil, softcap: Float? = nil, pattern: Pattern = .full, biases: [any AttentionBias] = [],
                    dropout: Float = 0, dropoutSeed: UInt64 = 0, queryOffset: Int? = nil) {
            self.scale = scale
            self.softcap = softcap
            self.pattern = pattern
            self.biases = biases
            self.dropout = dropout
            self.dropoutSeed = dropoutSeed
            self.queryOffset = queryOffset
        }
    }

    /// The output of one call and the statistics it saved.
    public struct Result {
        /// [B, H, Tq, Dv], differentiable with respect to q, k, v and learned biases.
        public var output: Tensor
        /// [B, H, Tq]: log Σ_j exp(S_ij) over the allowed keys (−inf for an
        /// empty row); no gradient. Feed it to ``weights(query:key:logSumExp:configuration:rows:heads:)``.
        public var logSumExp: Tensor
    }

    /// Runs the engine. Records one `flashAttention` op on the tape whose
    /// backward runs the flash backward kernel (saving only O and LSE).
    public static func attention(query: Tensor, key: Tensor, value: Tensor,
                                 configuration: Configuration = Configuration()) -> Result {
        let problem = FlashProblem(query: query, key: key, valueShape: value.shape, configuration: configuration)
        let tiles = FlashTiles(problem: problem, configuration: configuration)
        var output: Tensor!
        let logSumExp = Tensor(shape: [problem.batch, problem.heads, problem.queryLength], unsafeUninitializedFill: { lse in
            output = Tensor(shape: [problem.batch, problem.heads, problem.queryLength, problem.valueDepth],
                            unsafeUninitializedFill: { out in
                withPointers([query, key, value]) { inputs in
                    forward(problem, tiles, query: inputs[0], key: inputs[1], value: inputs[2], output: out.baseAddress,
                            logSumExp: lse.baseAddress)
                }
            })
        })
        let biasInputs = tiles.differentiableBiases
        let saved = (output: output.detached(), logSumExp: logSumExp)
        let recorded = Tensor.custom("flashAttention", inputs: [query, key, value] + biasInputs.compactMap { $0 },
                                     output: output) { gradient in
            backwardGradients(problem, tiles, query: query, key: key, value: value, output: saved.output,
                              logSumExp: saved.logSumExp, dOutput: gradient)
        }
        return Result(output: recorded, logSumExp: logSumExp)
    }

    /// The exact normalised weights exp(S − LSE) of the rows and heads asked
    /// for — equal to the dense engine's weights (after the normalizer, before
    /// dropout) — from the LSE the forward saved, so the softmax statistics
    /// are not recomputed and nothing larger than the answer is allocated.
    ///
    /// - Parameters:
    ///   - query: [B, H, Tq, D] and `key` [B, Hkv, Tk, D], as given to ``attention(query:key:value:configuration:)``.
    ///   - logSumExp: [B, H, Tq] from that call's ``Result``.
    ///   - configuration: the same configuration.
    ///   - rows: query rows (nil: all).
    ///   - heads: query heads, in the order wanted (nil: all).
    /// - Returns: [B, heads.count, rows.count, Tk], no gradient; zeros where
    ///   the pattern masks and in empty rows.
    public static func weights(query: Tensor, key: Tensor, logSumExp: Tensor, configuration: Configuration = Configuration(),
                               rows: Range<Int>? = nil, heads: [Int]? = nil) -> Tensor {
        let problem = FlashProblem(query: query, key: key, valueShape: [key.shape[0], key.shape[1], key.shape[2], 0],
                                   configuration: configuration)
        precondition(logSumExp.shape == [problem.batch, problem.heads, problem.queryLength],
                     "FlashAttention.weights: logSumExp \(logSumExp.shape) should be [\(problem.batch), \(problem.heads), \(problem.queryLength)]")
        let rows = rows ?? 0 ..< problem.queryLength
        let heads = heads ?? Array(0 ..< problem.heads)
        precondition(rows.lowerBound >= 0 && rows.upperBound <= problem.queryLength,
                     "FlashAttention.weights: rows \(rows) outside 0..<\(problem.queryLength)")
        precondition(heads.allSatisfy { (0 ..< problem.heads).contains($0) },
                     "FlashAttention.weights: heads \(heads) outside 0..<\(problem.heads)")
        let tiles = FlashTiles(problem: problem, configuration: configuration)
        return exactWeights(problem, tiles, query: query, key: key, logSumExp: logSumExp, rows: rows, heads: heads)
    }
}

/// The sizes and scalar settings of one call, checked.
struct FlashProblem {
    let batch, heads, keyHeads, queryLength, keyLength, depth, valueDepth: Int
    /// Multiplies q·k.
    let scale: Float
    /// c, or 0 for no softcap.
    let softcap: Float
    let dropout: Float
    let dropoutSeed: UInt64
    /// Position of query 0 relative to key 0 (for the biases).
    let queryOffset: Int

    /// Bq and Bk (heed_flash.h).
    static let queryTile = Int(HEED_FLASH_QUERY_TILE), keyTile = Int(HEED_FLASH_KEY_TILE)
    /// Width of the packed panels and slabs (heed_flash.h).
    static let panel = Int(HEED_FLASH_PANEL)
    /// The most keys of one forward step over whole key tiles, and the most
    /// query rows of one backward step over whole query tiles (heed_flash.h).
    static let keyRun = Int(HEED_FLASH_KEY_RUN), queryRun = Int(HEED_FLASH_QUERY_RUN)

    /// The length of each step over a run of `count` keys (or query rows) in
    /// whole tiles: the fewest steps of at most `limit`, of equal length
    /// rounded up to whole panels (1024 keys: two steps of 512, not
    /// 480 + 480 + 64), the last shorter. Steps start on panel boundaries, as
    /// the packed keys need.
    static func runLength(_ count: Int, limit: Int) -> Int {
        let steps = (count + limit - 1) / limit
        let length = (count + steps - 1) / steps
        return (length + panel - 1) / panel * panel
    }

    /// Walks `count` tiles — a query tile's key tiles (forward) or a key
    /// tile's query tiles (backward) — skipping those the pattern masks
    /// entirely. With `merges` (no bias, no dropout), each run of tiles the
    /// pattern leaves whole goes to `whole` in steps of at most `limit`
    /// (``runLength(_:limit:)``); every other tile goes to `tile` with its
    /// coverage.
    static func forEachStep(tiles count: Int, range: (Int) -> Range<Int>, coverage: (Range<Int>) -> TileCoverage,
                            merges: Bool, limit: Int, whole: (Range<Int>) -> Void,
                            tile: (Range<Int>, TileCoverage) -> Void) {
        var index = 0
        var known: TileCoverage?                      // the coverage of tile `index`, when a run already asked
        while index < count {
            let first = range(index)
            let covered = known ?? coverage(first)
            (known, index) = (nil, index + 1)
            if covered == .none { continue }                                       // tile skipping
            guard covered == .all, merges else {
                tile(first, covered)
                continue
            }
            var end = first.upperBound
            while index < count {
                let next = range(index), nextCoverage = coverage(next)
                guard nextCoverage == .all else {
                    known = nextCoverage
                    break
                }
                (end, index) = (next.upperBound, index + 1)
            }
            let length = runLength(end - first.lowerBound, limit: limit)
            for start in stride(from: first.lowerBound, to: end, by: length) { whole(start ..< Swift.min(end, start + length)) }
        }
    }

    /// H / Hkv: query heads per key/value head.
    var group: Int { heads / keyHeads }
    var queryTiles: Int { (queryLength + FlashProblem.queryTile - 1) / FlashProblem.queryTile }
    var keyTiles: Int { (keyLength + FlashProblem.keyTile - 1) / FlashProblem.keyTile }

    /// Query rows of tile `index`.
    func rows(ofTile index: Int) -> Range<Int> {
        index * FlashProblem.queryTile ..< Swift.min(queryLength, (index + 1) * FlashProblem.queryTile)
    }

    /// Keys of tile `index`.
    func columns(ofTile index: Int) -> Range<Int> {
        index * FlashProblem.keyTile ..< Swift.min(keyLength, (index + 1) * FlashProblem.keyTile)
    }

    init(query: Tensor, key: Tensor, valueShape: [Int], configuration: FlashAttention.Configuration) {
        precondition(query.rank == 4 && key.rank == 4 && valueShape.count == 4,
                     "FlashAttention: q, k, v must be [B, H, T, D], got \(query.shape), \(key.shape), \(valueShape)")
        (batch, heads, queryLength, depth) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        (keyHeads, keyLength) = (key.shape[1], key.shape[2])
        valueDepth = valueShape[3]
        precondition(key.shape[0] == batch && valueShape[0] == batch && key.shape[3] == depth,
                     "FlashAttention: query \(query.shape) and key \(key.shape) disagree")
        precondition(keyHeads >= 1 && heads % keyHeads == 0,
                     "FlashAttention: \(keyHeads) key/value heads do not divide \(heads) query heads")
        precondition(valueShape[1] == keyHeads && valueShape[2] == keyLength,
                     "FlashAttention: key \(key.shape) and value \(valueShape) disagree")
        scale = configuration.scale ?? 1 / Float(depth).squareRoot()
        precondition(scale.isFinite, "FlashAttention: scale \(scale) is not finite")
        if let softcap = configuration.softcap {
            precondition(softcap > 0 && softcap.isFinite, "FlashAttention: softcap \(softcap) must be positive and finite")
        }
        softcap = configuration.softcap ?? 0
        precondition(configuration.dropout >= 0 && configuration.dropout <= 1,
                     "FlashAttention: dropout \(configuration.dropout) outside [0, 1]")
        dropout = configuration.dropout
        dropoutSeed = configuration.dropoutSeed
        queryOffset = configuration.queryOffset ?? keyLength - queryLength
    }
}

extension FlashTiles {
    init(problem: FlashProblem, configuration: FlashAttention.Configuration) {
        self.init(pattern: configuration.pattern, biases: configuration.biases, batch: problem.batch, heads: problem.heads,
                  queryLength: problem.queryLength, keyLength: problem.keyLength, queryOffset: problem.queryOffset)
    }
}
