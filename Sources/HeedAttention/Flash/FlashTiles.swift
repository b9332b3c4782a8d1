import HeedTensor

/// How much of a tile the pattern allows.
enum FlashCoverage {
    /// Every pair masked: the tile is skipped.
    case none
    /// Every pair allowed: no mask.
    case all
    /// Some allowed: the tile's 0/1 mask is applied inside the kernel.
    case some
}

/// The pattern and the additive biases of one attention call, seen one tile
/// at a time — all the flash kernels need beyond Q, K and V.
///
/// A tile is queries `rows` × keys `columns` of one batch element and query
/// head; mask and bias tiles are row-major with leading dimension
/// `columns.count`.
struct FlashTiles {
    let batch: Int
    let heads: Int
    let queryLength: Int
    let keyLength: Int
    let pattern: Pattern
    /// The pattern's 0/1 mask broadcast view, for patterns without a closed-form tile.
    private let denseMask: BroadcastGrid?
    /// The biases, each a broadcast view of its materialised values.
    let biases: [BroadcastGrid]

    init(pattern: Pattern, biases: [any AttentionBias], batch: Int, heads: Int, queryLength: Int, keyLength: Int,
         queryOffset: Int) {
        self.batch = batch
        self.heads = heads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.pattern = pattern
        switch pattern {
        case _ where pattern.isFull, .causal:
            denseMask = nil
        default:
            let mask = pattern.mask(batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength)
            denseMask = BroadcastGrid(mask, batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength,
                                      name: "Pattern mask")
        }
        self.biases = biases.map {
            BroadcastGrid($0.bias(heads: heads, queryLength: queryLength, keyLength: keyLength, queryOffset: queryOffset),
                          batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength, name: "bias")
        }
    }

    /// Whether any bias adds to the scores.
    var hasBias: Bool { !biases.isEmpty }

    /// The bias tensors whose gradient the backward computes (in `biases` order; nil for the others).
    var differentiableBiases: [Tensor?] { biases.map { $0.values.requiresGrad ? $0.values : nil } }

    /// Which part of the tile the pattern allows.
    func coverage(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>) -> FlashCoverage {
        if rows.isEmpty || columns.isEmpty { return .none }
        if pattern.isFull { return .all }
        if case .causal(let alignment) = pattern {
            // Allowed: j ≤ i + shift.
            let shift = alignment == .topLeft ? 0 : keyLength - queryLength
            if columns.upperBound - 1 <= rows.lowerBound + shift { return .all }
            if columns.lowerBound > rows.upperBound - 1 + shift { return .none }
            return .some
        }
        guard let denseMask else { return .all }
        var allowed = 0
        denseMask.forEach(batch: b, head: h, rows: rows, columns: columns) { value, _ in if value != 0 { allowed += 1 } }
        return allowed == 0 ? .none : (allowed == rows.count * columns.count ? .all : .some)
    }

    /// Writes the tile's 0/1 mask into `out`.
    func fillMask(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        if case .causal(let alignment) = pattern {
            let shift = alignment == .topLeft ? 0 : keyLength - queryLength
            for (r, i) in rows.enumerated() {
                for (c, j) in columns.enumerated() { out[r * columns.count + c] = j <= i + shift ? 1 : 0 }
            }
            return
        }
        guard let denseMask else {
            out.update(repeating: 1, count: rows.count * columns.count)
            return
        }
        denseMask.forEach(batch: b, head: h, rows: rows, columns: columns) { value, index in out[index] = value != 0 ? 1 : 0 }
    }

    /// Writes the sum of the biases over the tile into `out` (overwriting it).
    func fillBias(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: rows.count * columns.count)
        for bias in biases {
            bias.forEach(batch: b, head: h, rows: rows, columns: columns) { value, index in out[index] += value }
        }
    }
}

/// A tensor broadcastable to [B, H, Tq, Tk], addressed without expanding it.
struct BroadcastGrid {
    let values: Tensor
    /// Element strides along B, H, Tq, Tk (0 on a broadcast axis).
    let strides: (Int, Int, Int, Int)

    init(_ tensor: Tensor, batch: Int, heads: Int, queryLength: Int, keyLength: Int, name: String) {
        precondition(tensor.rank <= 4, "flash attention: \(name) of rank \(tensor.rank) > 4")
        let shape = Array(repeating: 1, count: 4 - tensor.rank) + tensor.shape
        let target = [batch, heads, queryLength, keyLength]
        precondition(zip(shape, target).allSatisfy { $0 == $1 || $0 == 1 },
                     "flash attention: \(name) \(tensor.shape) does not broadcast to \(target)")
        values = tensor
        let dense = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1]
        strides = (shape[0] == 1 ? 0 : dense[0], shape[1] == 1 ? 0 : dense[1], shape[2] == 1 ? 0 : dense[2],
                   shape[3] == 1 ? 0 : dense[3])
    }

    /// Calls `body(value, tileIndex)` for every element of the tile, row by row.
    func forEach(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>, _ body: (Float, Int) -> Void) {
        values.withUnsafeScalars { scalars in
            for (r, i) in rows.enumerated() {
                let base = b * strides.0 + h * strides.1 + i * strides.2
                for (c, j) in columns.enumerated() { body(scalars[base + j * strides.3], r * columns.count + c) }
            }
        }
    }

    /// Adds a tile of gradient into `gradient` (laid out like `values`), summing over broadcast axes.
    func accumulate(_ tile: UnsafePointer<Float>, batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>,
                    into gradient: UnsafeMutablePointer<Float>) {
        for (r, i) in rows.enumerated() {
            let base = b * strides.0 + h * strides.1 + i * strides.2
            for (c, j) in columns.enumerated() { gradient[base + j * strides.3] += tile[r * columns.count + c] }
        }
    }
}
