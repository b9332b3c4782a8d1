import HeedTensor

// Biases seen one tile at a time, for the flash engine: the default slices the
// materialised bias; ALiBi and T5 (in their own files) compute tiles in closed
// form with `addToeplitzTile`, since both depend on j − p_i only.

extension AttentionBias {
    /// The default tile: calls ``bias(heads:queryLength:keyLength:queryOffset:)``
    /// and adds the slice `[batch, head, rows, columns]` (broadcast over size-1
    /// axes) to `out`.
    ///
    /// It materialises the whole bias **on every call** — free for
    /// ``AdditiveBias`` (its stored tensor), but O(H·Tq·Tk) per tile for a
    /// conformer that computes its bias: an engine should wrap such a bias once
    /// per attention call, `AdditiveBias(bias.bias(heads:queryLength:keyLength:queryOffset:))`,
    /// which is acceptable only for problems small enough to hold [H, Tq, Tk];
    /// large ones should implement `addTile` in closed form. Values only: no
    /// gradient is recorded.
    public func addTile(batch: Int, head: Int, heads: Int, rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int,
                        queryOffset: Int, into out: UnsafeMutablePointer<Float>) {
        checkBiasTile(rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength)
        let values = bias(heads: heads, queryLength: queryLength, keyLength: keyLength, queryOffset: queryOffset)
        let view = BroadcastTile(shape: values.shape, batch: batch, head: head, heads: heads,
                                 queryLength: queryLength, keyLength: keyLength, name: "AttentionBias.addTile")
        let width = columns.count
        values.withUnsafeScalars { scalars in
            for (r, i) in rows.enumerated() {
                let source = view.base + i * view.rowStride, row = out + r * width
                if view.columnStride == 1 {
                    for c in 0 ..< width { row[c] += scalars[source + columns.lowerBound + c] }
                } else {
                    let value = scalars[source]
                    for c in 0 ..< width { row[c] += value }
                }
            }
        }
    }
}

/// Checks that a tile lies inside the [Tq, Tk] grid.
func checkBiasTile(rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int) {
    precondition(rows.lowerBound >= 0 && rows.upperBound <= queryLength,
                 "AttentionBias.addTile: rows \(rows) outside 0..<\(queryLength)")
    precondition(columns.lowerBound >= 0 && columns.upperBound <= keyLength,
                 "AttentionBias.addTile: columns \(columns) outside 0..<\(keyLength)")
}

/// Adds a tile whose value depends only on the relative position
/// `rel = j − (queryOffset + i)`, a Toeplitz tile:
///
/// ```
/// out[r, c] += value(rel)     rel = columns[c] − queryOffset − rows[r]
/// ```
///
/// `value` is evaluated once per distinct rel (rows + columns − 1 of them),
/// then each row adds a contiguous run of that table.
func addToeplitzTile(rows: Range<Int>, columns: Range<Int>, queryOffset: Int, into out: UnsafeMutablePointer<Float>,
                     value: (Int) -> Float) {
    if rows.isEmpty || columns.isEmpty { return }
    let width = columns.count, height = rows.count
    // rel runs from columns.first − p(last row) up to columns.last − p(first row).
    let lowest = columns.lowerBound - (queryOffset + rows.upperBound - 1)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: height + width - 1) { table in
        for k in 0 ..< height + width - 1 { table[k] = value(lowest + k) }
        for r in 0 ..< height {
            // Row r (query rows.lowerBound + r) starts at rel = lowest + (height − 1 − r).
            let source = table.baseAddress! + (height - 1 - r), row = out + r * width
            for c in 0 ..< width { row[c] += source[c] }
        }
    }
}

/// Sums a tile of values along its diagonals (constant rel = j − p_i) and
/// hands each sum to `accumulate(rel, sum)`: the adjoint of ``addToeplitzTile``.
func sumToeplitzTile(_ tile: UnsafePointer<Float>, rows: Range<Int>, columns: Range<Int>, queryOffset: Int,
                     accumulate: (Int, Float) -> Void) {
    if rows.isEmpty || columns.isEmpty { return }
    let width = columns.count, height = rows.count
    let lowest = columns.lowerBound - (queryOffset + rows.upperBound - 1)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: height + width - 1) { sums in
        sums.initialize(repeating: 0)
        for r in 0 ..< height {
            let target = sums.baseAddress! + (height - 1 - r), row = tile + r * width
            for c in 0 ..< width { target[c] += row[c] }
        }
        for k in 0 ..< height + width - 1 { accumulate(lowest + k, sums[k]) }
    }
}
