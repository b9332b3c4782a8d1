import HeedTensor

/// The pattern and the additive biases of one attention call, seen one tile
/// at a time — all the flash kernels need beyond Q, K and V.
///
/// A tile is queries `rows` × keys `columns` of one batch element and query
/// head; mask and bias tiles are row-major with leading dimension
/// `columns.count`. Coverage and masks come from ``Pattern/coverage(batch:head:rows:columns:queryLength:keyLength:)``
/// and ``Pattern/fillTile(batch:head:rows:columns:queryLength:keyLength:into:)``
/// (closed form per row, no [Tq, Tk] mask).
struct FlashTiles {
    let batch: Int
    let heads: Int
    let queryLength: Int
    let keyLength: Int
    let queryOffset: Int
    let pattern: Pattern
    let biases: [FlashBias]
    /// `pattern.isFull`, read once.
    private let full: Bool

    init(pattern: Pattern, biases: [any AttentionBias], batch: Int, heads: Int, queryLength: Int, keyLength: Int,
         queryOffset: Int) {
        self.batch = batch
        self.heads = heads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.queryOffset = queryOffset
        self.pattern = pattern
        self.full = pattern.isFull
        self.biases = biases.map {
            FlashBias($0, batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength, queryOffset: queryOffset)
        }
    }

    /// Whether the pattern allows every pair (no tile is ever masked).
    var isFull: Bool { full }

    /// Whether any bias adds to the scores.
    var hasBias: Bool { !biases.isEmpty }

    /// The tensors that receive a gradient (in `biases` order; nil where none flows).
    var differentiableBiases: [Tensor?] { biases.map(\.differentiableInput) }

    /// Which part of the tile the pattern allows.
    func coverage(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>) -> TileCoverage {
        if full { return rows.isEmpty || columns.isEmpty ? .none : .all }
        return pattern.coverage(batch: b, head: h, rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength)
    }

    /// Writes the tile's 0/1 mask into `out`.
    func fillMask(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        pattern.fillTile(batch: b, head: h, rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength, into: out)
    }

    /// Writes the sum of the biases over the tile into `out` (overwriting it).
    func fillBias(batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: rows.count * columns.count)
        for bias in biases { bias.add(self, batch: b, head: h, rows: rows, columns: columns, into: out) }
    }
}

/// One additive bias as the flash engine uses it.
enum FlashBias {
    /// A bias with closed-form tiles and no parameters (ALiBi).
    case closedForm(any AttentionBias)
    /// T5's relative bias: closed-form tiles; its table's gradient is scattered tile by tile.
    case relative(RelativePositionBias)
    /// Any other bias, materialised once per call (a given tensor costs
    /// nothing; a computed one costs its [.., Tq, Tk] size); its gradient, when
    /// it requires one, is accumulated densely.
    case dense(BroadcastGrid)

    init(_ bias: any AttentionBias, batch: Int, heads: Int, queryLength: Int, keyLength: Int, queryOffset: Int) {
        if let relative = bias as? RelativePositionBias {
            self = .relative(relative)
        } else if bias is ALiBi {
            self = .closedForm(bias)
        } else {
            let values = bias.bias(heads: heads, queryLength: queryLength, keyLength: keyLength, queryOffset: queryOffset)
            self = .dense(BroadcastGrid(values, batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength,
                                        name: "bias"))
        }
    }

    /// The tensor the backward differentiates (the T5 table, a learned dense bias), or nil.
    var differentiableInput: Tensor? {
        switch self {
        case .closedForm: return nil
        case .relative(let bias): return bias.table.requiresGrad ? bias.table : nil
        case .dense(let grid): return grid.values.requiresGrad ? grid.values : nil
        }
    }

    /// Adds the tile's bias to `out`.
    func add(_ tiles: FlashTiles, batch b: Int, head h: Int, rows: Range<Int>, columns: Range<Int>,
             into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .closedForm(let bias):
            bias.addTile(batch: b, head: h, heads: tiles.heads, rows: rows, columns: columns, queryLength: tiles.queryLength,
                         keyLength: tiles.keyLength, queryOffset: tiles.queryOffset, into: out)
        case .relative(let bias):
            bias.addTile(batch: b, head: h, heads: tiles.heads, rows: rows, columns: columns, queryLength: tiles.queryLength,
                         keyLength: tiles.keyLength, queryOffset: tiles.queryOffset, into: out)
        case .dense(let grid):
            grid.forEach(batch: b, head: h, rows: rows, columns: columns) { value, index in out[index] += value }
        }
    }

    /// Adds ∂L/∂bias of one tile (`tile`, leading dimension `columns.count`)
    /// into `gradient`, laid out like ``differentiableInput``.
    func accumulateGradient(_ tile: UnsafePointer<Float>, _ tiles: FlashTiles, batch b: Int, head h: Int, rows: Range<Int>,
                            columns: Range<Int>, into gradient: UnsafeMutablePointer<Float>) {
        switch self {
        case .closedForm: return
        case .relative(let bias):
            bias.accumulateTableGradient(fromTileGradient: tile, head: h, rows: rows, columns: columns,
                                         queryOffset: tiles.queryOffset, into: gradient)
        case .dense(let grid):
            grid.accumulate(tile, batch: b, head: h, rows: rows, columns: columns, into: gradient)
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
