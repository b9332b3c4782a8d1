import Foundation
import HeedTensor

/// How much of a tile a pattern allows.
///
/// A tiled (flash) engine asks ``Pattern/coverage(batch:head:rows:columns:queryLength:keyLength:)``
/// for each (query tile, key tile) pair: it skips `.none` tiles, computes
/// `.all` tiles without a mask, and masks `.some` tiles with
/// ``Pattern/fillTile(batch:head:rows:columns:queryLength:keyLength:into:)``.
public enum TileCoverage: Sendable, Equatable {
    /// Every pair of the tile is masked.
    case none
    /// Every pair of the tile is allowed.
    case all
    /// Some pairs are allowed and some masked.
    case some
}

/// One tile of the [Tq, Tk] grid for one batch element and head.
struct PatternTile {
    let batch: Int
    let head: Int
    let rows: Range<Int>
    let columns: Range<Int>
    let queryLength: Int
    let keyLength: Int

    /// Tk − Tq: query i sits at `i + shift` for the bottom-right-aligned patterns.
    var shift: Int { keyLength - queryLength }
    /// The tile's leading dimension.
    var width: Int { columns.count }
    var firstColumn: Int { columns.lowerBound }
    var lastColumn: Int { columns.upperBound - 1 }

    /// The same columns, one row.
    func row(_ i: Int) -> PatternTile {
        PatternTile(batch: batch, head: head, rows: i ..< i + 1, columns: columns, queryLength: queryLength, keyLength: keyLength)
    }

    /// The coverage of a row whose allowed columns number `count`.
    func coverage(allowedCount count: Int) -> TileCoverage {
        count == 0 ? .none : (count == width ? .all : .some)
    }
}

extension Pattern {
    /// Classifies one tile: queries `rows` × keys `columns` of batch element
    /// `batch` and head `head`, for inputs of `queryLength` Tq and `keyLength` Tk.
    ///
    /// Exact: `.all` if and only if every pair of the tile is allowed, `.none`
    /// if and only if every pair is masked — the same pairs as
    /// ``mask(batch:heads:queryLength:keyLength:)`` (same alignment conventions).
    ///
    /// Cost: O(1) for `.full`, `.causal`, `.keyPadding`, `.slidingWindow` and
    /// intersections of these (one band, see `PatternBand`);
    /// O(rows) for `.dilatedWindow`, `.strided`, `.fixed`; O(#tokens) for
    /// `.global`; O(#segments) for `.blockDiagonal`; O(#blocks in the tile)
    /// for `.bigBird` (its block table is built once per configuration and
    /// cached); O(rows · columns) for `.mask(Tensor)`, which is scanned.
    /// Compositions combine their parts' coverages and fall back to rows (and,
    /// for a row where two parts are both mixed, to filling that row) only
    /// when the parts alone cannot decide.
    ///
    /// - Parameters:
    ///   - batch: the batch element (only `.keyPadding` and `.mask` depend on it).
    ///   - head: the head (only `.mask` depends on it).
    ///   - rows: query indices, inside `0 ..< queryLength`.
    ///   - columns: key indices, inside `0 ..< keyLength`.
    /// - Returns: the coverage; `.none` for an empty tile (nothing to compute).
    public func coverage(batch: Int, head: Int, rows: Range<Int>, columns: Range<Int>,
                         queryLength: Int, keyLength: Int) -> TileCoverage {
        Pattern.checkTile(rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength)
        if rows.isEmpty || columns.isEmpty { return .none }
        return coverage(PatternTile(batch: batch, head: head, rows: rows, columns: columns,
                                    queryLength: queryLength, keyLength: keyLength))
    }

    /// Writes the tile's mask: 1 (allowed) or 0 (masked), row-major with
    /// leading dimension `columns.count`, `rows.count · columns.count` floats.
    ///
    /// Equals the slice `mask(…)[batch, head, rows, columns]` exactly. The
    /// analytic patterns write each row as a few runs (closed form per row; a
    /// row equal to the previous one is copied); `.mask(Tensor)` copies its
    /// elements; compositions fill their mixed parts into a scratch tile and
    /// combine (product for intersection, maximum for union).
    ///
    /// - Parameter out: room for `rows.count · columns.count` floats; every one is written.
    public func fillTile(batch: Int, head: Int, rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int,
                         into out: UnsafeMutablePointer<Float>) {
        Pattern.checkTile(rows: rows, columns: columns, queryLength: queryLength, keyLength: keyLength)
        if rows.isEmpty || columns.isEmpty { return }
        fill(PatternTile(batch: batch, head: head, rows: rows, columns: columns,
                         queryLength: queryLength, keyLength: keyLength), into: out)
    }

    static func checkTile(rows: Range<Int>, columns: Range<Int>, queryLength: Int, keyLength: Int) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= queryLength,
                     "Pattern tile: rows \(rows) outside 0..<\(queryLength)")
        precondition(columns.lowerBound >= 0 && columns.upperBound <= keyLength,
                     "Pattern tile: columns \(columns) outside 0..<\(keyLength)")
    }

    // MARK: Coverage

    func coverage(_ tile: PatternTile) -> TileCoverage {
        if let band = band(tile) { return band.coverage(tile) }
        switch self {
        case .full, .causal, .keyPadding, .slidingWindow:
            preconditionFailure("Pattern.coverage: \(self) is a band")
        case .mask(let mask):
            return Pattern.maskCoverage(mask, tile)
        case .dilatedWindow(let left, let right, let dilation):
            precondition(dilation >= 1, "Pattern.dilatedWindow: dilation \(dilation) < 1")
            return Pattern.rowwise(tile.rows) { i in
                tile.coverage(allowedCount: Pattern.dilatedRange(i + tile.shift, tile, left: left, right: right, dilation: dilation).count)
            }
        case .global(let tokens):
            return Pattern.globalCoverage(tokens, tile)
        case .bigBird(let blockSize, let windowBlocks, let globalBlocks, let randomBlocks, let seed):
            let table = BigBirdTable.cached(queryLength: tile.queryLength, keyLength: tile.keyLength, blockSize: blockSize,
                                            windowBlocks: windowBlocks, globalBlocks: globalBlocks,
                                            randomBlocks: randomBlocks, seed: seed)
            return table.coverage(tile)
        case .strided(let stride):
            precondition(stride >= 1, "Pattern.strided: stride \(stride) < 1")
            return Pattern.rowwise(tile.rows) { i in
                tile.coverage(allowedCount: Pattern.stridedCount(i + tile.shift, tile, stride: stride))
            }
        case .fixed(let block, let summary):
            precondition(block >= 1 && summary >= 0 && summary <= block, "Pattern.fixed: need block ≥ 1 and 0 ≤ summary ≤ block")
            return Pattern.rowwise(tile.rows) { i in
                tile.coverage(allowedCount: Pattern.fixedCount(i + tile.shift, tile, block: block, summary: summary))
            }
        case .blockDiagonal(let queryLengths, let keyLengths):
            return Segments(queryLengths: queryLengths, keyLengths: keyLengths, tile: tile).coverage(tile)
        case .intersection(let parts):
            return Pattern.compositeCoverage(parts, intersection: true, tile)      // not all parts are bands
        case .union(let parts):
            return Pattern.compositeCoverage(parts, intersection: false, tile)
        }
    }

    /// A bound no index reaches (half-open arithmetic on it cannot overflow).
    static let unbounded = Int.max / 4

    /// Folds row coverages, stopping as soon as the tile is known to be mixed.
    static func rowwise(_ rows: Range<Int>, _ row: (Int) -> TileCoverage) -> TileCoverage {
        var sawAll = false, sawNone = false
        for i in rows {
            switch row(i) {
            case .some: return .some
            case .all: sawAll = true
            case .none: sawNone = true
            }
            if sawAll && sawNone { return .some }
        }
        return sawAll ? .all : .none
    }

    /// The pattern as a ``PatternBand`` when it is one: `.full`, `.causal`,
    /// `.slidingWindow`, `.keyPadding`, `.dilatedWindow` with dilation 1, and
    /// intersections of these (Mistral's causal window over padded keys is
    /// one band: one run per row, O(1) coverage).
    func band(_ tile: PatternTile) -> PatternBand? {
        switch self {
        case .full:
            return PatternBand()
        case .causal(let alignment):
            return PatternBand(upper: alignment == .topLeft ? 0 : tile.shift)
        case .slidingWindow(let left, let right):
            return PatternBand(lower: tile.shift - left, upper: tile.shift + right)
        case .dilatedWindow(let left, let right, let dilation) where dilation == 1:
            return PatternBand(lower: tile.shift - left, upper: tile.shift + right)
        case .keyPadding(let lengths):
            return PatternBand(columnEnd: Pattern.paddingLength(lengths, batch: tile.batch))
        case .intersection(let parts):
            var band = PatternBand()
            for part in parts {
                guard let next = part.band(tile) else { return nil }
                band = PatternBand(lower: Swift.max(band.lower, next.lower), upper: Swift.min(band.upper, next.upper),
                                   columnEnd: Swift.min(band.columnEnd, next.columnEnd))
            }
            return band
        default:
            return nil
        }
    }

    static func paddingLength(_ lengths: [Int], batch: Int) -> Int {
        precondition(batch >= 0 && batch < lengths.count, "Pattern.keyPadding: batch element \(batch) of \(lengths.count) lengths")
        return lengths[batch]
    }

    /// Intersection: a `.none` part decides, `.all` parts are neutral; one
    /// mixed part makes the tile mixed (its coverage is exact). Two or more
    /// mixed parts are decided row by row, and a row where they still mix is
    /// filled and scanned. Union is the mirror image.
    static func compositeCoverage(_ parts: [Pattern], intersection: Bool, _ tile: PatternTile) -> TileCoverage {
        let absorbing: TileCoverage = intersection ? .none : .all
        var mixed: [Pattern] = []
        for part in parts {
            let coverage = part.coverage(tile)
            if coverage == absorbing { return absorbing }
            if coverage == .some { mixed.append(part) }
        }
        if mixed.isEmpty { return intersection ? .all : .none }
        if mixed.count == 1 { return .some }
        if tile.rows.count > 1 {
            return rowwise(tile.rows) { i in compositeCoverage(mixed, intersection: intersection, tile.row(i)) }
        }
        // One row, two or more mixed parts: fill it and count.
        let combined: Pattern = intersection ? .intersection(mixed) : .union(mixed)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: tile.width) { row in
            combined.fill(tile, into: row.baseAddress!)
            var count = 0
            for value in row where value != 0 { count += 1 }
            return tile.coverage(allowedCount: count)
        }
    }

    // MARK: Fill

    func fill(_ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        if let band = band(tile) { return band.fill(tile, into: out) }
        let width = tile.width
        switch self {
        case .full, .causal, .keyPadding, .slidingWindow:
            preconditionFailure("Pattern.fillTile: \(self) is a band")
        case .mask(let mask):
            Pattern.fillFromMask(mask, tile, into: out)
        case .dilatedWindow(let left, let right, let dilation):
            precondition(dilation >= 1, "Pattern.dilatedWindow: dilation \(dilation) < 1")
            for (r, i) in tile.rows.enumerated() {
                let row = out + r * width, position = i + tile.shift
                row.update(repeating: 0, count: width)
                for k in Pattern.dilatedRange(position, tile, left: left, right: right, dilation: dilation) {
                    row[position - k * dilation - tile.firstColumn] = 1
                }
            }
        case .global(let tokens):
            Pattern.fillGlobal(tokens, tile, into: out)
        case .bigBird(let blockSize, let windowBlocks, let globalBlocks, let randomBlocks, let seed):
            let table = BigBirdTable.cached(queryLength: tile.queryLength, keyLength: tile.keyLength, blockSize: blockSize,
                                            windowBlocks: windowBlocks, globalBlocks: globalBlocks,
                                            randomBlocks: randomBlocks, seed: seed)
            table.fill(tile, into: out)
        case .strided(let stride):
            precondition(stride >= 1, "Pattern.strided: stride \(stride) < 1")
            Pattern.fillStrided(stride, tile, into: out)
        case .fixed(let block, let summary):
            precondition(block >= 1 && summary >= 0 && summary <= block, "Pattern.fixed: need block ≥ 1 and 0 ≤ summary ≤ block")
            Pattern.fillFixed(block: block, summary: summary, tile, into: out)
        case .blockDiagonal(let queryLengths, let keyLengths):
            Segments(queryLengths: queryLengths, keyLengths: keyLengths, tile: tile).fill(tile, into: out)
        case .intersection(let parts):
            Pattern.fillComposite(parts, intersection: true, tile, into: out)      // not all parts are bands
        case .union(let parts):
            Pattern.fillComposite(parts, intersection: false, tile, into: out)
        }
    }

    /// Writes one row of `width`: ones on the relative columns [from, to) (clamped), zeros elsewhere.
    @inline(__always)
    static func writeRow(_ row: UnsafeMutablePointer<Float>, width: Int, onesFrom from: Int, to end: Int) {
        let lower = Swift.min(Swift.max(from, 0), width), upper = Swift.min(Swift.max(end, lower), width)
        if lower > 0 { zero(row, count: lower) }
        if upper > lower { one(row + lower, count: upper - lower) }
        if width > upper { zero(row + upper, count: width - upper) }
    }

    /// `count` zeros (memset; `update(repeating:)` measured ~3× slower on short runs).
    @inline(__always)
    static func zero(_ start: UnsafeMutablePointer<Float>, count: Int) {
        memset(start, 0, count * MemoryLayout<Float>.stride)
    }

    /// `count` ones, in a loop the compiler vectorises.
    @inline(__always)
    static func one(_ start: UnsafeMutablePointer<Float>, count: Int) {
        for k in 0 ..< count { start[k] = 1 }
    }

    /// Sets the relative columns of [from, to) (absolute, clamped to the tile) to one.
    @inline(__always)
    static func setOnes(_ row: UnsafeMutablePointer<Float>, _ tile: PatternTile, from: Int, to end: Int) {
        let lower = Swift.max(from, tile.firstColumn), upper = Swift.min(end, tile.columns.upperBound)
        if upper > lower { (row + (lower - tile.firstColumn)).update(repeating: 1, count: upper - lower) }
    }

    /// Intersection: zeros as soon as a part is `.none`; `.all` parts are
    /// skipped; the first mixed part is filled in place and each further one
    /// into a scratch tile, multiplied in. Union: the mirror image, maximum.
    static func fillComposite(_ parts: [Pattern], intersection: Bool, _ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let count = tile.rows.count * tile.width
        let absorbing: TileCoverage = intersection ? .none : .all
        var mixed: [Pattern] = []
        for part in parts {
            let coverage = part.coverage(tile)
            if coverage == absorbing {
                out.update(repeating: intersection ? 0 : 1, count: count)
                return
            }
            if coverage == .some { mixed.append(part) }
        }
        guard let first = mixed.first else {
            out.update(repeating: intersection ? 1 : 0, count: count)
            return
        }
        first.fill(tile, into: out)
        if mixed.count == 1 { return }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { scratch.deallocate() }
        for part in mixed.dropFirst() {
            part.fill(tile, into: scratch)
            if intersection {
                for k in 0 ..< count { out[k] *= scratch[k] }
            } else {
                for k in 0 ..< count { out[k] = Swift.max(out[k], scratch[k]) }
            }
        }
    }
}

/// Query i may see key j when `i + lower ≤ j ≤ i + upper` and `j < columnEnd`.
struct PatternBand {
    var lower = -Pattern.unbounded
    var upper = Pattern.unbounded
    var columnEnd = Pattern.unbounded

    /// Exact. Clip the columns to `columnEnd`; on what is left the rows'
    /// intervals move by one per row, so their union is one interval when
    /// they are not empty, and the corners decide.
    func coverage(_ tile: PatternTile) -> TileCoverage {
        let lastColumn = Swift.min(tile.lastColumn, columnEnd - 1)
        if lower > upper || lastColumn < tile.firstColumn { return .none }
        let (r0, r1) = (tile.rows.lowerBound, tile.rows.upperBound - 1)
        if tile.firstColumn > r1 + upper || lastColumn < r0 + lower { return .none }
        if tile.firstColumn >= r1 + lower && lastColumn <= r0 + upper { return lastColumn == tile.lastColumn ? .all : .some }
        return .some
    }

    /// One run of ones per row.
    func fill(_ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let width = tile.width, end = columnEnd - tile.firstColumn
        for (r, i) in tile.rows.enumerated() {
            let from = lower > upper ? 0 : i + lower - tile.firstColumn
            let to = lower > upper ? 0 : Swift.min(i + upper + 1 - tile.firstColumn, end)
            Pattern.writeRow(out + r * width, width: width, onesFrom: from, to: to)
        }
    }
}
