import Foundation
import HeedTensor

// The block-structured patterns seen tile by tile: packed segments
// (`.blockDiagonal`) and BigBird's block table (built once, cached).

/// `.blockDiagonal` as prefix sums: segment s holds queries
/// `queryStarts[s] ..< queryStarts[s + 1]` and keys `keyStarts[s] ..< keyStarts[s + 1]`.
struct Segments {
    let queryStarts: [Int]
    let keyStarts: [Int]

    init(queryLengths: [Int], keyLengths: [Int], tile: PatternTile) {
        precondition(queryLengths.count == keyLengths.count,
                     "Pattern.blockDiagonal: \(queryLengths.count) query segments, \(keyLengths.count) key segments")
        var queryStarts = [0], keyStarts = [0]
        queryStarts.reserveCapacity(queryLengths.count + 1)
        keyStarts.reserveCapacity(keyLengths.count + 1)
        for (queries, keys) in zip(queryLengths, keyLengths) {
            queryStarts.append(queryStarts.last! + queries)
            keyStarts.append(keyStarts.last! + keys)
        }
        precondition(queryStarts.last! == tile.queryLength && keyStarts.last! == tile.keyLength,
                     "Pattern.blockDiagonal: segments cover \(queryStarts.last!)×\(keyStarts.last!), inputs are \(tile.queryLength)×\(tile.keyLength)")
        self.queryStarts = queryStarts
        self.keyStarts = keyStarts
    }

    /// Calls `body(rows, keys)` for each segment with rows in the tile (its
    /// rows clipped to the tile), in order, until `body` returns false.
    func forEachSegment(in rows: Range<Int>, _ body: (Range<Int>, Range<Int>) -> Bool) {
        // The first segment ending after rows.lowerBound (binary search on the ends).
        var low = 0, high = queryStarts.count - 1
        while low < high {
            let middle = (low + high) / 2
            if queryStarts[middle + 1] > rows.lowerBound { high = middle } else { low = middle + 1 }
        }
        var segment = low
        while segment < queryStarts.count - 1 && queryStarts[segment] < rows.upperBound {
            let clipped = Swift.max(queryStarts[segment], rows.lowerBound) ..< Swift.min(queryStarts[segment + 1], rows.upperBound)
            if !clipped.isEmpty && !body(clipped, keyStarts[segment] ..< keyStarts[segment + 1]) { return }
            segment += 1
        }
    }

    func coverage(_ tile: PatternTile) -> TileCoverage {
        var sawAllowed = false, sawMasked = false
        forEachSegment(in: tile.rows) { _, keys in
            let allowed = Swift.max(0, Swift.min(keys.upperBound, tile.columns.upperBound) - Swift.max(keys.lowerBound, tile.firstColumn))
            if allowed > 0 { sawAllowed = true }
            if allowed < tile.width { sawMasked = true }
            return !(sawAllowed && sawMasked)
        }
        return sawAllowed ? (sawMasked ? .some : .all) : .none
    }

    func fill(_ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let width = tile.width
        forEachSegment(in: tile.rows) { rows, keys in
            for i in rows {
                Pattern.writeRow(out + (i - tile.rows.lowerBound) * width, width: width,
                                 onesFrom: keys.lowerBound - tile.firstColumn, to: keys.upperBound - tile.firstColumn)
            }
            return true
        }
    }
}

/// BigBird's allowed (query block, key block) pairs for one configuration and
/// one (Tq, Tk), from `Pattern.bigBirdBlocks` (the same table `mask` uses).
struct BigBirdTable: Sendable {
    let blockSize: Int
    let keyBlocks: Int
    /// [queryBlocks · keyBlocks], row-major.
    let allowed: [Bool]

    struct Key: Hashable {
        let queryLength, keyLength, blockSize, windowBlocks, globalBlocks, randomBlocks: Int
        let seed: UInt64
    }

    /// The table for this configuration, built on first use and cached (a few
    /// dozen configurations at most; the cache starts afresh when full).
    static func cached(queryLength: Int, keyLength: Int, blockSize: Int, windowBlocks: Int, globalBlocks: Int,
                       randomBlocks: Int, seed: UInt64) -> BigBirdTable {
        let key = Key(queryLength: queryLength, keyLength: keyLength, blockSize: blockSize, windowBlocks: windowBlocks,
                      globalBlocks: globalBlocks, randomBlocks: randomBlocks, seed: seed)
        if let table = BigBirdTableCache.shared.table(for: key) { return table }
        let sets = Pattern.bigBirdBlocks(queryLength: queryLength, keyLength: keyLength, blockSize: blockSize,
                                         windowBlocks: windowBlocks, globalBlocks: globalBlocks,
                                         randomBlocks: randomBlocks, seed: seed)
        let keyBlocks = (keyLength + blockSize - 1) / blockSize
        var allowed = [Bool](repeating: false, count: sets.count * keyBlocks)
        for (queryBlock, set) in sets.enumerated() {
            for keyBlock in set where keyBlock < keyBlocks { allowed[queryBlock * keyBlocks + keyBlock] = true }
        }
        let table = BigBirdTable(blockSize: blockSize, keyBlocks: keyBlocks, allowed: allowed)
        BigBirdTableCache.shared.store(table, for: key)
        return table
    }

    /// Exact: every (query block, key block) pair the tile touches has at least one element in it.
    func coverage(_ tile: PatternTile) -> TileCoverage {
        var sawAllowed = false, sawMasked = false
        for queryBlock in tile.rows.lowerBound / blockSize ... (tile.rows.upperBound - 1) / blockSize {
            for keyBlock in tile.firstColumn / blockSize ... tile.lastColumn / blockSize {
                if allowed[queryBlock * keyBlocks + keyBlock] { sawAllowed = true } else { sawMasked = true }
                if sawAllowed && sawMasked { return .some }
            }
        }
        return sawAllowed ? .all : .none
    }

    func fill(_ tile: PatternTile, into out: UnsafeMutablePointer<Float>) {
        let width = tile.width
        var previousBlock = -1
        for (r, i) in tile.rows.enumerated() {
            let row = out + r * width, queryBlock = i / blockSize
            if queryBlock == previousBlock {                    // same query block: same row
                row.update(from: row - width, count: width)
                continue
            }
            previousBlock = queryBlock
            for keyBlock in tile.firstColumn / blockSize ... tile.lastColumn / blockSize {
                let start = Swift.max(keyBlock * blockSize, tile.firstColumn)
                let end = Swift.min(keyBlock * blockSize + blockSize, tile.columns.upperBound)
                (row + (start - tile.firstColumn)).update(repeating: allowed[queryBlock * keyBlocks + keyBlock] ? 1 : 0,
                                                          count: end - start)
            }
        }
    }
}

/// The process-wide BigBird table cache.
///
/// `@unchecked Sendable` is sound: the only mutable state, `tables`, is read
/// and written only while `lock` is held, and the tables are immutable values.
final class BigBirdTableCache: @unchecked Sendable {
    static let shared = BigBirdTableCache()
    private let lock = NSLock()
    private var tables: [BigBirdTable.Key: BigBirdTable] = [:]
    private let capacity = 32

    func table(for key: BigBirdTable.Key) -> BigBirdTable? {
        lock.lock()
        defer { lock.unlock() }
        return tables[key]
    }

    func store(_ table: BigBirdTable, for key: BigBirdTable.Key) {
        lock.lock()
        defer { lock.unlock() }
        if tables.count >= capacity { tables.removeAll(keepingCapacity: true) }
        tables[key] = table
    }
}
