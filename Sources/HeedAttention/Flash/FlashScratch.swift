import HeedTensor

/// One worker's tile buffers, allocated together once per call and sized to
/// the call: [rows, keys] tiles with rows ≤ Bq and keys ≤ Bk (the score tiles
/// as wide as a step over a run of whole tiles: see `scores`), and only those
/// the call uses (a mask tile only for a pattern, dropout multipliers only
/// with dropout, the gradient tiles only in the backward).
final class FlashScratch {
    /// Scores S, then P (every call): [rows, keys] tiles, in the forward up to
    /// `FlashProblem.keyRun` keys wide, in the backward up to `queryRun` rows
    /// (as are dScores and softcap).
    let scores: UnsafeMutablePointer<Float>
    /// dP, then dS (backward).
    let dScores: UnsafeMutablePointer<Float>
    /// tanh of the softcapped scores (backward with a softcap).
    let softcap: UnsafeMutablePointer<Float>
    /// The pattern's 0/1 tile, the biases' sum, the dropout multipliers.
    let mask, bias, keep: UnsafeMutablePointer<Float>
    /// ∂L/∂bias of the tile (backward with a learned bias).
    let biasGradient: UnsafeMutablePointer<Float>
    /// [rows] each: running max, running sum, rescale factors (forward).
    let rowMax, rowSum, rowScale: UnsafeMutablePointer<Float>
    /// [rows, D]: the query tile times scale·log₂e (forward; see heed_flash_forward_begin), else nil.
    let scaledQuery: UnsafeMutablePointer<Float>?
    /// Per differentiable bias, the worker's ∂L/∂bias accumulator (laid out like the bias), or nil.
    private(set) var biasGradients: [UnsafeMutablePointer<Float>?] = []
    /// The one block behind every buffer above, pooled (``ScratchMemory``) and
    /// 64-byte aligned: a cache line, so that every row of a tile whose width
    /// is a multiple of 16 starts one and no vector load or store of the
    /// kernels straddles two lines.
    private let memory: ScratchMemory

    /// Buffers for `problem` and `tiles` in the forward (and exact weights) or the backward.
    /// A buffer the call never uses shares the scores' storage; every buffer
    /// starts at zero, so a kernel that reads scores it skipped sees stale
    /// finite values, never uninitialised memory.
    init(_ problem: FlashProblem, _ tiles: FlashTiles, backward: Bool) {
        let rows = Swift.min(FlashProblem.queryTile, Swift.max(problem.queryLength, 1))
        let keys = Swift.min(FlashProblem.keyTile, Swift.max(problem.keyLength, 1))
        let tile = rows * keys
        // Steps over whole tiles take up to keyRun keys (forward) or queryRun rows (backward) at once:
        // S, P and dP, dS and the softcap's tanh tiles are that large.
        let run = backward ? Swift.min(FlashProblem.queryRun, Swift.max(problem.queryLength, 1)) * keys
                           : rows * Swift.min(FlashProblem.keyRun, Swift.max(problem.keyLength, 1))
        let learnedBias = tiles.differentiableBiases.contains { $0 != nil }
        let wanted = [true, backward, backward && problem.softcap > 0, !tiles.isFull, tiles.hasBias, problem.dropout > 0,
                      backward && learnedBias]
        let sizes = [run, run, run, tile, tile, tile, tile]
        let scaledQueryCount = backward ? 0 : rows * problem.depth
        let count = zip(wanted, sizes).reduce(0) { $0 + ($1.0 ? $1.1 : 0) } + 3 * rows + scaledQueryCount
        memory = ScratchMemory(count: count)
        let block = memory.base
        block.initialize(repeating: 0, count: count)
        var next = 0
        var buffers: [UnsafeMutablePointer<Float>] = []
        for (want, size) in zip(wanted, sizes) {
            buffers.append(want ? block + next : block)
            if want { next += size }
        }
        (scores, dScores, softcap, mask, bias, keep, biasGradient) =
            (buffers[0], buffers[1], buffers[2], buffers[3], buffers[4], buffers[5], buffers[6])
        (rowMax, rowSum, rowScale) = (block + next, block + next + rows, block + next + 2 * rows)
        scaledQuery = backward ? nil : block + next + 3 * rows
    }

    /// Fills this worker's mask, bias and dropout tiles for queries `rows` ×
    /// keys `columns` of (batch `b`, head `h`) as far as the call needs them —
    /// the mask only where the tile is partly `coverage`d — and returns them,
    /// nil where unused (the `mask`, `bias` and `keep` of the step's arguments).
    func fillTile(_ problem: FlashProblem, _ tiles: FlashTiles, batch b: Int, head h: Int, rows: Range<Int>,
                  columns: Range<Int>, coverage: TileCoverage)
        -> (mask: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, keep: UnsafePointer<Float>?) {
        var filled: (mask: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, keep: UnsafePointer<Float>?) = (nil, nil, nil)
        if coverage == .some {
            tiles.fillMask(batch: b, head: h, rows: rows, columns: columns, into: mask)
            filled.mask = UnsafePointer(mask)
        }
        if tiles.hasBias {
            tiles.fillBias(batch: b, head: h, rows: rows, columns: columns, into: bias)
            filled.bias = UnsafePointer(bias)
        }
        if problem.dropout > 0 {
            AttentionDropout.fill(seed: problem.dropoutSeed, probability: problem.dropout, batch: b, head: h, rows: rows,
                                  columns: columns, into: keep, stride: columns.count)
            filled.keep = UnsafePointer(keep)
        }
        return filled
    }

    /// Zeroed accumulators for the biases with `counts` elements (nil: no gradient wanted).
    func prepareBiasGradients(_ counts: [Int?]) {
        biasGradients = counts.map { count in
            count.map { count in
                let pointer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
                pointer.initialize(repeating: 0, count: count)
                return pointer
            }
        }
    }

    deinit {
        for pointer in biasGradients { pointer?.deallocate() }
    }
}
