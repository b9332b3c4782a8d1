import HeedTensor

/// Which query–key pairs exist: the sparsity stage.
///
/// One convention everywhere: **1 (true) = may attend, 0 = masked**. A
/// pattern becomes a 0/1 mask broadcastable to [B, H, Tq, Tk] with
/// ``mask(batch:heads:queryLength:keyLength:)``; patterns compose by
/// ``intersection(_:)`` (all must allow) and ``union(_:)`` (any allows).
///
/// Query i sits at position `i + Tk − Tq` for the window-like patterns
/// (bottom-right alignment, as FlashAttention and a KV cache need: the last
/// query lines up with the last key). ``causal(_:)`` lets the caller choose.
public indirect enum Pattern {
    /// Where the last query lines up when Tq ≠ Tk.
    public enum Alignment: Sendable {
        /// Query i may see keys j ≤ i (PyTorch SDPA's `is_causal`).
        case topLeft
        /// Query i may see keys j ≤ i + Tk − Tq (FlashAttention; KV caches).
        case bottomRight
    }

    /// Every pair.
    case full
    /// No key after the query's position.
    case causal(Alignment = .topLeft)
    /// Batch element b sees keys 0..<lengths[b] (right padding).
    case keyPadding(lengths: [Int])
    /// An explicit 0/1 mask broadcastable to [B, H, Tq, Tk] (1 = attend).
    case mask(Tensor)
    /// Keys within `left` before and `right` after the query's position
    /// (Longformer / Mistral; `right: 0` is causal local attention).
    case slidingWindow(left: Int, right: Int)
    /// Every `dilation`-th key, `left` steps back and `right` steps ahead
    /// (Longformer's dilated window, Beltagy et al., 2020, §3.1).
    case dilatedWindow(left: Int, right: Int, dilation: Int)
    /// The listed positions attend everywhere and are attended by all
    /// (Longformer's global attention); union it with a window.
    case global(tokens: [Int])
    /// BigBird (Zaheer et al., 2020, §2): blocks of `blockSize`; each query
    /// block sees `windowBlocks` neighbouring blocks (odd, centred), the first
    /// `globalBlocks` blocks (which also see everything), and `randomBlocks`
    /// others drawn per query block from Philox with `seed`.
    case bigBird(blockSize: Int, windowBlocks: Int = 3, globalBlocks: Int = 1, randomBlocks: Int = 1, seed: UInt64 = 0)
    /// Sparse Transformer strided pattern (Child et al., 2019, §4.2):
    /// |i − j| < stride, or (i − j) divisible by stride. Intersect with
    /// `.causal()` for the paper's autoregressive form.
    case strided(stride: Int)
    /// Sparse Transformer fixed pattern: same block of `block` positions, or j
    /// in the last `summary` positions of its block. Intersect with `.causal()`
    /// for the autoregressive form.
    case fixed(block: Int, summary: Int)
    /// Packed variable-length sequences: query segment lengths and key
    /// segment lengths (equal lists of segments); pairs in the same segment only.
    case blockDiagonal(queryLengths: [Int], keyLengths: [Int])
    /// Allowed where every pattern allows.
    case intersection([Pattern])
    /// Allowed where any pattern allows.
    case union([Pattern])

    /// Packed self-attention: the same segment lengths for queries and keys.
    public static func blockDiagonal(lengths: [Int]) -> Pattern { .blockDiagonal(queryLengths: lengths, keyLengths: lengths) }

    /// Whether the pattern allows every pair (no mask needed).
    public var isFull: Bool {
        switch self {
        case .full: return true
        case .intersection(let parts): return parts.allSatisfy(\.isFull)
        case .union(let parts): return parts.contains(where: \.isFull)
        default: return false
        }
    }

    /// The 0/1 mask, shaped [B or 1, H or 1, Tq, Tk] (1 = attend).
    public func mask(batch: Int, heads: Int, queryLength tq: Int, keyLength tk: Int) -> Tensor {
        switch self {
        case .full:
            return Tensor.ones([1, 1, tq, tk])
        case .causal(let alignment):
            let shift = alignment == .topLeft ? 0 : tk - tq
            return Pattern.pairs(tq, tk) { i, j in j <= i + shift }
        case .keyPadding(let lengths):
            precondition(lengths.count == batch, "Pattern.keyPadding: \(lengths.count) lengths for batch \(batch)")
            let values = lengths.flatMap { length in (0..<tq).flatMap { _ in (0..<tk).map { Float($0 < length ? 1 : 0) } } }
            return Tensor(values, shape: [batch, 1, tq, tk])
        case .mask(let mask):
            precondition(mask.rank <= 4, "Pattern.mask: mask of rank \(mask.rank) > 4")
            let full = Array(repeating: 1, count: 4 - mask.rank) + mask.shape
            precondition(Shape.broadcast(full, [batch, heads, tq, tk]) == [batch, heads, tq, tk],
                         "Pattern.mask: mask \(mask.shape) does not broadcast to [\(batch), \(heads), \(tq), \(tk)]")
            return mask.detached().reshaped(full).greater(Tensor(scalar: 0))
        case .slidingWindow(let left, let right):
            let shift = tk - tq
            return Pattern.pairs(tq, tk) { i, j in j >= i + shift - left && j <= i + shift + right }
        case .dilatedWindow(let left, let right, let dilation):
            precondition(dilation >= 1, "Pattern.dilatedWindow: dilation \(dilation) < 1")
            let shift = tk - tq
            return Pattern.pairs(tq, tk) { i, j in
                let d = i + shift - j
                return d % dilation == 0 && d <= left * dilation && -d <= right * dilation
            }
        case .global(let tokens):
            let set = Set(tokens)
            return Pattern.pairs(tq, tk) { i, j in set.contains(i + tk - tq) || set.contains(j) }
        case .bigBird(let blockSize, let windowBlocks, let globalBlocks, let randomBlocks, let seed):
            let allowed = Pattern.bigBirdBlocks(queryLength: tq, keyLength: tk, blockSize: blockSize, windowBlocks: windowBlocks,
                                                globalBlocks: globalBlocks, randomBlocks: randomBlocks, seed: seed)
            return Pattern.pairs(tq, tk) { i, j in allowed[i / blockSize].contains(j / blockSize) }
        case .strided(let stride):
            precondition(stride >= 1, "Pattern.strided: stride \(stride) < 1")
            let shift = tk - tq
            return Pattern.pairs(tq, tk) { i, j in Swift.abs(i + shift - j) < stride || (i + shift - j) % stride == 0 }
        case .fixed(let block, let summary):
            precondition(block >= 1 && summary >= 0 && summary <= block, "Pattern.fixed: need block ≥ 1 and 0 ≤ summary ≤ block")
            let shift = tk - tq
            return Pattern.pairs(tq, tk) { i, j in (i + shift) / block == j / block || j % block >= block - summary }
        case .blockDiagonal(let queryLengths, let keyLengths):
            precondition(queryLengths.count == keyLengths.count, "Pattern.blockDiagonal: \(queryLengths.count) query segments, \(keyLengths.count) key segments")
            precondition(queryLengths.reduce(0, +) == tq && keyLengths.reduce(0, +) == tk,
                         "Pattern.blockDiagonal: segments cover \(queryLengths.reduce(0, +))×\(keyLengths.reduce(0, +)), inputs are \(tq)×\(tk)")
            let querySegment = queryLengths.enumerated().flatMap { Array(repeating: $0.offset, count: $0.element) }
            let keySegment = keyLengths.enumerated().flatMap { Array(repeating: $0.offset, count: $0.element) }
            return Pattern.pairs(tq, tk) { i, j in querySegment[i] == keySegment[j] }
        case .intersection(let parts):
            return parts.reduce(Tensor.ones([1, 1, tq, tk])) { $0 * $1.mask(batch: batch, heads: heads, queryLength: tq, keyLength: tk) }
        case .union(let parts):
            return parts.reduce(Tensor.zeros([1, 1, tq, tk])) {
                Tensor.maximum($0, $1.mask(batch: batch, heads: heads, queryLength: tq, keyLength: tk))
            }
        }
    }

    /// A [1, 1, Tq, Tk] mask from a predicate on (query, key).
    static func pairs(_ tq: Int, _ tk: Int, _ allowed: (Int, Int) -> Bool) -> Tensor {
        var values = [Float](repeating: 0, count: tq * tk)
        for i in 0..<tq { for j in 0..<tk where allowed(i, j) { values[i * tk + j] = 1 } }
        return Tensor(values, shape: [1, 1, tq, tk])
    }

    /// BigBird's allowed key blocks for each query block.
    static func bigBirdBlocks(queryLength tq: Int, keyLength tk: Int, blockSize: Int, windowBlocks: Int, globalBlocks: Int,
                              randomBlocks: Int, seed: UInt64) -> [Set<Int>] {
        precondition(blockSize >= 1 && windowBlocks >= 1 && windowBlocks % 2 == 1, "Pattern.bigBird: need blockSize ≥ 1 and an odd windowBlocks")
        let queryBlocks = (tq + blockSize - 1) / blockSize, keyBlocks = (tk + blockSize - 1) / blockSize
        let shift = (tk - tq) / blockSize   // bottom-right alignment in blocks
        let half = windowBlocks / 2
        var generator = RandomGenerator(seed: seed)
        return (0..<queryBlocks).map { qb in
            let position = qb + shift
            var allowed = Set<Int>()
            if position < globalBlocks { return Set(0..<keyBlocks) }                 // global rows see all
            // The window, clipped to the key blocks (empty when it starts past the last one, Tq > Tk).
            let windowStart = Swift.max(0, position - half), windowEnd = Swift.max(0, Swift.min(keyBlocks - 1, position + half))
            if windowStart <= windowEnd { for kb in windowStart...windowEnd { allowed.insert(kb) } }
            for kb in 0..<Swift.min(globalBlocks, keyBlocks) { allowed.insert(kb) }
            var candidates = (0..<keyBlocks).filter { !allowed.contains($0) }
            for _ in 0..<Swift.min(randomBlocks, candidates.count) {
                allowed.insert(candidates.remove(at: generator.nextInt(below: candidates.count)))
            }
            return allowed
        }
    }
}
