import Foundation
import HeedTensor

// The per-pattern closed forms behind `Pattern.coverage(…)` and `Pattern.fillTile(…)`:
// for each row, which columns of the tile a leaf pattern allows, as counts
// (for coverage) and as runs (for filling). Each mirrors its predicate in
// `Pattern.mask(…)`; `PatternTilesTests` holds them to it.

extension Pattern {
    // MARK: Dilated window — j = p − k·dilation, −right ≤ k ≤ left

    /// The steps k whose key p − k·dilation lies in the tile's columns and in the window.
    static func dilatedRange(_ position: Int, _ tile: PatternTile, left: Int, right: Int, dilation: Int) -> Range<Int> {
        let lower = Swift.max(-right, ceilingDivision(position - tile.lastColumn, dilation))
        let upper = Swift.min(left, floorDivision(position - tile.firstColumn, dilation))
        return lower <= upper ? lower ..< upper + 1 : lower ..< lower
    }

    // MARK: Strided — |d| < stride or stride | d, d = p − j

    /// How many columns of the tile query position `position` may see.
    static func stridedCount(_ position: Int, _ tile: PatternTile, stride: Int) -> Int {
        let (lower, upper) = (position - tile.lastColumn, position - tile.firstColumn)   // d over the row
        let near = Swift.max(0, Swift.min(upper, stride - 1) - Swift.max(lower, 1 - stride) + 1)
        let multiples = floorDivision(upper, stride) - ceilingDivision(lower, stride) + 1
        let zero = lower <= 0 && upper >= 0 ? 1 : 0          // the one multiple that is also near
        return near + multiples - zero
    }

    static func fillStrided(_ stride: Int, _ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let width = tile.width
        for (r, i) in tile.rows.enumerated() {
            let row = out + r * width, position = i + tile.shift
            writeRow(row, width: width, onesFrom: position - stride + 1 - tile.firstColumn, to: position + stride - tile.firstColumn)
            var j = tile.firstColumn + positiveRemainder(position - tile.firstColumn, stride)
            while j <= tile.lastColumn {
                row[j - tile.firstColumn] = 1
                j += stride
            }
        }
    }

    // MARK: Fixed — p / block == j / block (truncating, as mask does), or j % block ≥ block − summary

    /// Keys j in [0, n) that are summary positions.
    static func summaryCount(below n: Int, block: Int, summary: Int) -> Int {
        (n / block) * summary + Swift.max(0, n % block - (block - summary))
    }

    /// How many columns of the tile query position `position` may see.
    static func fixedCount(_ position: Int, _ tile: PatternTile, block: Int, summary: Int) -> Int {
        let (first, end) = (tile.firstColumn, tile.columns.upperBound)
        let summaries = summaryCount(below: end, block: block, summary: summary) - summaryCount(below: first, block: block, summary: summary)
        let queryBlock = position / block                   // truncates toward zero, as in `mask`
        guard queryBlock >= 0 else { return summaries }
        let runStart = Swift.max(first, queryBlock * block), runEnd = Swift.min(end, queryBlock * block + block)
        guard runEnd > runStart else { return summaries }
        let runSummaries = summaryCount(below: runEnd, block: block, summary: summary)
            - summaryCount(below: runStart, block: block, summary: summary)
        return (runEnd - runStart) + summaries - runSummaries
    }

    static func fillFixed(block: Int, summary: Int, _ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let width = tile.width
        var previousBlock: Int? = nil
        for (r, i) in tile.rows.enumerated() {
            let row = out + r * width, queryBlock = (i + tile.shift) / block
            if queryBlock == previousBlock {                // same query block: same row
                row.update(from: row - width, count: width)
                continue
            }
            previousBlock = queryBlock
            row.update(repeating: 0, count: width)
            if summary > 0 {
                for keyBlock in tile.firstColumn / block ... tile.lastColumn / block {
                    setOnes(row, tile, from: keyBlock * block + block - summary, to: keyBlock * block + block)
                }
            }
            if queryBlock >= 0 { setOnes(row, tile, from: queryBlock * block, to: queryBlock * block + block) }
        }
    }

    // MARK: Global — p or j among the tokens

    static func globalCoverage(_ tokens: [Int], _ tile: PatternTile) -> TileCoverage {
        var rowHits = 0, columnHits = 0
        for token in Set(tokens) {
            if tile.columns.contains(token) { columnHits += 1 }
            if tile.rows.contains(token - tile.shift) { rowHits += 1 }
        }
        if columnHits == tile.width || rowHits == tile.rows.count { return .all }
        return columnHits == 0 && rowHits == 0 ? .none : .some
    }

    static func fillGlobal(_ tokens: [Int], _ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let set = Set(tokens), width = tile.width
        let columns = set.filter { tile.columns.contains($0) }.map { $0 - tile.firstColumn }
        for (r, i) in tile.rows.enumerated() {
            let row = out + r * width
            if set.contains(i + tile.shift) {
                row.update(repeating: 1, count: width)
            } else {
                row.update(repeating: 0, count: width)
                for column in columns { row[column] = 1 }
            }
        }
    }

    // MARK: Explicit mask — scanned

    static func maskCoverage(_ mask: Tensor, _ tile: PatternTile) -> TileCoverage {
        let view = BroadcastTile(shape: mask.shape, batch: tile.batch, head: tile.head, heads: nil,
                                 queryLength: tile.queryLength, keyLength: tile.keyLength, name: "Pattern.mask")
        return mask.withUnsafeScalars { values in
            var allowed = 0
            for i in tile.rows {
                let row = view.base + i * view.rowStride
                for j in tile.columns where values[row + j * view.columnStride] > 0 { allowed += 1 }
            }
            return allowed == 0 ? .none : (allowed == tile.rows.count * tile.width ? .all : .some)
        }
    }

    static func fillFromMask(_ mask: Tensor, _ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let view = BroadcastTile(shape: mask.shape, batch: tile.batch, head: tile.head, heads: nil,
                                 queryLength: tile.queryLength, keyLength: tile.keyLength, name: "Pattern.mask")
        mask.withUnsafeScalars { values in
            var k = 0
            for i in tile.rows {
                let row = view.base + i * view.rowStride
                for j in tile.columns {
                    out[k] = values[row + j * view.columnStride] > 0 ? 1 : 0   // NaN counts as masked, as `greater` does
                    k += 1
                }
            }
        }
    }

    // MARK: Integer helpers

    static func floorDivision(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func ceilingDivision(_ a: Int, _ b: Int) -> Int { -floorDivision(-a, b) }

    static func positiveRemainder(_ a: Int, _ b: Int) -> Int {
        let r = a % b
        return r < 0 ? r + b : r
    }
}

/// Element offsets of one (batch, head) slice of a tensor broadcast to
/// [B, H, Tq, Tk] (rank ≤ 4, leading ones implied, size-1 axes broadcast).
struct BroadcastTile {
    /// Offset of element (batch, head, 0, 0).
    let base: Int
    /// Step per query (0 when the query axis is broadcast).
    let rowStride: Int
    /// Step per key (0 when the key axis is broadcast).
    let columnStride: Int

    /// - Parameter heads: H when known (biases), nil when not (patterns).
    init(shape: [Int], batch: Int, head: Int, heads: Int?, queryLength: Int, keyLength: Int, name: String) {
        precondition(shape.count <= 4, "\(name): rank \(shape.count) > 4")
        let full = Array(repeating: 1, count: 4 - shape.count) + shape
        precondition(full[0] == 1 || (batch >= 0 && batch < full[0]), "\(name): \(shape) has no batch element \(batch)")
        precondition(full[1] == 1 || (head >= 0 && head < full[1]) && (heads == nil || heads == full[1]),
                     "\(name): \(shape) does not broadcast to head \(head) of \(heads.map(String.init) ?? "H")")
        precondition((full[2] == 1 || full[2] == queryLength) && (full[3] == 1 || full[3] == keyLength),
                     "\(name): \(shape) does not broadcast to [\(queryLength), \(keyLength)]")
        let headStride = full[2] * full[3], batchStride = full[1] * headStride
        base = (full[0] == 1 ? 0 : batch * batchStride) + (full[1] == 1 ? 0 : head * headStride)
        rowStride = full[2] == 1 ? 0 : full[3]
        columnStride = full[3] == 1 ? 0 : 1
    }
}
