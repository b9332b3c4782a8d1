import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// `Pattern.coverage`/`fillTile` and `AttentionBias.addTile` against slices of
/// the dense `Pattern.mask` and `AttentionBias.bias` (the reference path).
final class PatternTilesTests: XCTestCase {
    // MARK: Harness

    /// (rows, columns) tile sizes; every pair is swept, grids start at 0 and at an odd offset.
    private let tileSizes = [1, 3, 16, 64]
    /// (Tq, Tk): equal, Tq < Tk, Tq > Tk, and single rows/columns.
    private let shapes = [(37, 37), (23, 61), (61, 23), (1, 19), (19, 1), (70, 131)]
    private let batch = 3, heads = 2

    /// Tiles covering the grid: size r×c from the origin, and shifted by an offset (ragged edges both ends).
    private func tiles(_ tq: Int, _ tk: Int, rowSize: Int, columnSize: Int) -> [(Range<Int>, Range<Int>)] {
        var result: [(Range<Int>, Range<Int>)] = []
        for origin in [0, 2] {
            var rowStarts = [0] + Array(stride(from: Swift.min(origin, tq), to: tq, by: rowSize)).filter { $0 > 0 }
            var columnStarts = [0] + Array(stride(from: Swift.min(origin, tk), to: tk, by: columnSize)).filter { $0 > 0 }
            rowStarts.append(tq)
            columnStarts.append(tk)
            for a in 0 ..< rowStarts.count - 1 {
                for b in 0 ..< columnStarts.count - 1 {
                    result.append((rowStarts[a] ..< rowStarts[a + 1], columnStarts[b] ..< columnStarts[b + 1]))
                }
            }
        }
        return result
    }

    private struct Tally { var none = 0, all = 0, some = 0 }

    /// Every tile of every grid, batch element and head: `fillTile` equals the
    /// mask slice and `coverage` is exactly `.all`/`.none`/`.some`.
    /// `everyElement`: every (batch, head) pair, for patterns that depend on them; else the first and last pair.
    @discardableResult
    private func checkPattern(_ pattern: Pattern, _ name: String, tq: Int, tk: Int, sizes: [Int]? = nil,
                              everyElement: Bool = false) -> Tally {
        let mask = pattern.mask(batch: batch, heads: heads, queryLength: tq, keyLength: tk)
            .expand(to: [batch, heads, tq, tk]).scalars
        var tally = Tally()
        var failures = 0
        for rowSize in sizes ?? tileSizes {
            for columnSize in sizes ?? tileSizes {
                for (rows, columns) in tiles(tq, tk, rowSize: rowSize, columnSize: columnSize) {
                    let pairs = everyElement ? (0 ..< batch * heads).map { ($0 / heads, $0 % heads) } : [(0, 0), (batch - 1, heads - 1)]
                    for (b, h) in pairs {
                        var expected: [Float] = []
                        for i in rows { for j in columns { expected.append(mask[((b * heads + h) * tq + i) * tk + j]) } }
                        var actual = [Float](repeating: -7, count: rows.count * columns.count)
                        actual.withUnsafeMutableBufferPointer {
                            pattern.fillTile(batch: b, head: h, rows: rows, columns: columns, queryLength: tq, keyLength: tk,
                                             into: $0.baseAddress!)
                        }
                        let ones = expected.filter { $0 == 1 }.count
                        let exact: TileCoverage = ones == 0 ? .none : (ones == expected.count ? .all : .some)
                        let coverage = pattern.coverage(batch: b, head: h, rows: rows, columns: columns,
                                                        queryLength: tq, keyLength: tk)
                        switch exact { case .none: tally.none += 1; case .all: tally.all += 1; case .some: tally.some += 1 }
                        if (actual != expected || coverage != exact) && failures < 3 {
                            failures += 1
                            XCTFail("\(name) Tq=\(tq) Tk=\(tk) b=\(b) h=\(h) rows \(rows) columns \(columns): "
                                    + (actual != expected ? "fill \(actual) vs mask \(expected)" : "coverage \(coverage) vs \(exact)"))
                        }
                    }
                }
            }
        }
        return tally
    }

    /// Random segment lengths (some empty) summing to `total`.
    private func segments(_ total: Int, count: Int, generator: inout RandomGenerator) -> [Int] {
        var cuts = (0 ..< count - 1).map { _ in generator.nextInt(below: total + 1) }.sorted()
        cuts = [0] + cuts + [total]
        return (0 ..< count).map { cuts[$0 + 1] - cuts[$0] }
    }

    private func randomMask(_ shape: [Int], density: Float, seed: UInt64) -> Tensor {
        Tensor.randomUniform(shape, seed: seed).less(Tensor(scalar: density))
    }

    // MARK: Patterns

    func testCausalWindowAndPaddingTilesMatchMask() {
        for (tq, tk) in shapes {
            let sizes = tq * tk > 5000 ? [3, 16, 64] : nil
            let tally = checkPattern(.causal(.topLeft), "causal topLeft", tq: tq, tk: tk, sizes: sizes)
            checkPattern(.causal(.bottomRight), "causal bottomRight", tq: tq, tk: tk, sizes: sizes)
            checkPattern(.full, "full", tq: tq, tk: tk, sizes: sizes)
            checkPattern(.keyPadding(lengths: [0, tk / 2, tk + 3]), "keyPadding", tq: tq, tk: tk, sizes: sizes, everyElement: true)
            for (left, right) in [(4, 0), (0, 3), (10, 7), (-2, 5), (3, -5), (2, -2)] {
                checkPattern(.slidingWindow(left: left, right: right), "window \(left),\(right)", tq: tq, tk: tk, sizes: sizes)
            }
            if tq > 1 && tk > 1 { XCTAssertTrue(tally.none > 0 && tally.all > 0 && tally.some > 0, "causal \(tq)×\(tk): \(tally)") }
        }
    }

    func testStructuredPatternTilesMatchMask() {
        for (tq, tk) in shapes {
            let sizes = tq * tk > 5000 ? [3, 16, 64] : nil
            for (left, right, dilation) in [(3, 2, 3), (5, 0, 2), (2, 2, 1), (4, -1, 2)] {
                checkPattern(.dilatedWindow(left: left, right: right, dilation: dilation), "dilated \(left),\(right),\(dilation)",
                             tq: tq, tk: tk, sizes: sizes)
            }
            checkPattern(.global(tokens: [0, 5, 5, 17, 200]), "global", tq: tq, tk: tk, sizes: sizes)
            checkPattern(.global(tokens: []), "global empty", tq: tq, tk: tk, sizes: sizes)
            for stride in [1, 2, 4, 7] { checkPattern(.strided(stride: stride), "strided \(stride)", tq: tq, tk: tk, sizes: sizes) }
            for (block, summary) in [(4, 1), (5, 0), (3, 3), (8, 2)] {
                checkPattern(.fixed(block: block, summary: summary), "fixed \(block),\(summary)", tq: tq, tk: tk, sizes: sizes)
            }
            checkPattern(.bigBird(blockSize: 4, windowBlocks: 3, globalBlocks: 1, randomBlocks: 1, seed: 7), "bigBird 4",
                         tq: tq, tk: tk, sizes: sizes)
            checkPattern(.bigBird(blockSize: 5, windowBlocks: 1, globalBlocks: 0, randomBlocks: 2, seed: 3), "bigBird 5",
                         tq: tq, tk: tk, sizes: sizes)
            var generator = RandomGenerator(seed: UInt64(tq * 1000 + tk))
            for count in [1, 3, 6] {
                let queryLengths = segments(tq, count: count, generator: &generator)
                let keyLengths = segments(tk, count: count, generator: &generator)
                checkPattern(.blockDiagonal(queryLengths: queryLengths, keyLengths: keyLengths),
                             "blockDiagonal \(queryLengths) \(keyLengths)", tq: tq, tk: tk, sizes: sizes)
            }
        }
    }

    func testExplicitMaskTilesMatchMask() {
        for (tq, tk) in shapes where tq * tk < 5000 {
            checkPattern(.mask(randomMask([batch, heads, tq, tk], density: 0.5, seed: 1)), "mask dense random", tq: tq, tk: tk, everyElement: true)
            // Mostly one value, so whole tiles are all ones or all zeros.
            let tally = checkPattern(.mask(randomMask([1, heads, 1, tk], density: 0.9, seed: 2)), "mask [1,H,1,Tk]", tq: tq, tk: tk, everyElement: true)
            checkPattern(.mask(randomMask([tq, tk], density: 0.02, seed: 3)), "mask [Tq,Tk]", tq: tq, tk: tk)
            checkPattern(.mask(randomMask([batch, 1, tq, 1], density: 0.5, seed: 4)), "mask [B,1,Tq,1]", tq: tq, tk: tk, everyElement: true)
            if tq > 1 && tk > 1 { XCTAssertTrue(tally.none > 0 && tally.all > 0 && tally.some > 0, "mask \(tq)×\(tk): \(tally)") }
        }
    }

    func testCompositionTilesMatchMask() {
        for (tq, tk) in shapes {
            let sizes = tq * tk > 5000 ? [3, 16, 64] : nil
            let compositions: [(Pattern, String)] = [
                (.intersection([.causal(), .slidingWindow(left: 8, right: 0)]), "causal ∩ window"),
                (.union([.slidingWindow(left: 2, right: 2), .global(tokens: [0, 3])]), "window ∪ global"),
                (.intersection([.causal(.bottomRight), .slidingWindow(left: 6, right: 0), .keyPadding(lengths: [0, 9, tk])]),
                 "causal ∩ window ∩ padding (one band)"),
                (.intersection([.dilatedWindow(left: 3, right: 1, dilation: 1), .keyPadding(lengths: [tk, 5, 12]), .full]),
                 "dilation-1 window ∩ padding ∩ full (one band)"),
                (.intersection([.strided(stride: 3), .causal()]), "strided ∩ causal"),
                (.intersection([.fixed(block: 4, summary: 1), .causal(.bottomRight)]), "fixed ∩ causal"),
                // Both parts mixed on the diagonal, yet the intersection is empty / the union is everything.
                (.intersection([.causal(.bottomRight), .slidingWindow(left: -1, right: 9)]), "empty intersection"),
                (.union([.causal(.bottomRight), .slidingWindow(left: -1, right: 200)]), "full union"),
                (.union([.intersection([.causal(), .slidingWindow(left: 5, right: 0)]), .keyPadding(lengths: [1, 4, 9])]),
                 "(causal ∩ window) ∪ padding"),
                (.intersection([.union([.dilatedWindow(left: 4, right: 4, dilation: 2), .global(tokens: [1])]),
                                .keyPadding(lengths: [tk, tk / 3, 2]), .causal(.bottomRight)]), "(dilated ∪ global) ∩ padding ∩ causal"),
                (.intersection([.mask(randomMask([1, heads, tq, tk], density: 0.7, seed: 9)), .causal()]), "mask ∩ causal"),
                (.intersection([.intersection([.causal()]), .union([.full])]), "nested trivial"),
                (.intersection([]), "empty intersection list"),
                (.union([]), "empty union list"),
            ]
            for (pattern, name) in compositions {
                let perElement = name.contains("padding") || name.contains("mask")    // the parts that depend on b or h
                checkPattern(pattern, name, tq: tq, tk: tk, sizes: sizes, everyElement: perElement)
            }
        }
    }

    func testRandomTilesMatchMask() {
        var generator = RandomGenerator(seed: 11)
        let pattern = Pattern.union([.intersection([.causal(.bottomRight), .slidingWindow(left: 12, right: 0)]),
                                     .strided(stride: 5), .keyPadding(lengths: [3, 0, 7])])
        let (tq, tk) = (45, 52)
        let mask = pattern.mask(batch: batch, heads: heads, queryLength: tq, keyLength: tk).expand(to: [batch, heads, tq, tk]).scalars
        for _ in 0 ..< 300 {
            let r0 = generator.nextInt(below: tq), c0 = generator.nextInt(below: tk)
            let rows = r0 ..< r0 + 1 + generator.nextInt(below: tq - r0)
            let columns = c0 ..< c0 + 1 + generator.nextInt(below: tk - c0)
            let b = generator.nextInt(below: batch)
            var expected: [Float] = []
            for i in rows { for j in columns { expected.append(mask[((b * heads) * tq + i) * tk + j]) } }
            var actual = [Float](repeating: -1, count: expected.count)
            actual.withUnsafeMutableBufferPointer {
                pattern.fillTile(batch: b, head: 0, rows: rows, columns: columns, queryLength: tq, keyLength: tk, into: $0.baseAddress!)
            }
            XCTAssertEqual(actual, expected, "rows \(rows) columns \(columns) b=\(b)")
            let ones = expected.filter { $0 == 1 }.count
            XCTAssertEqual(pattern.coverage(batch: b, head: 0, rows: rows, columns: columns, queryLength: tq, keyLength: tk),
                           ones == 0 ? .none : (ones == expected.count ? .all : .some), "rows \(rows) columns \(columns)")
        }
    }

    // MARK: Biases

    /// `addTile` onto random values equals the same values plus the bias slice, bit for bit.
    private func checkBias(_ bias: any AttentionBias, _ name: String, heads: Int, tq: Int, tk: Int, queryOffset: Int, batch: Int = 1) {
        let dense = bias.bias(heads: heads, queryLength: tq, keyLength: tk, queryOffset: queryOffset)
            .detached().expand(to: [batch, heads, tq, tk]).scalars
        var failures = 0
        let noise = Tensor.randomNormal([64 * 64 + 97], seed: 99).scalars
        for (rowSize, columnSize) in [(1, 1), (3, 16), (16, 3), (16, 64), (64, 64)] where tq * tk < 5000 || rowSize > 1 {
            for (rows, columns) in tiles(tq, tk, rowSize: rowSize, columnSize: columnSize) {
                for b in 0 ..< batch {
                    for h in 0 ..< heads {
                        let base = Array(noise[(rows.lowerBound + columns.lowerBound) % 97 ..< (rows.lowerBound + columns.lowerBound) % 97 + rows.count * columns.count])
                        var expected = base
                        for (r, i) in rows.enumerated() {
                            for (c, j) in columns.enumerated() { expected[r * columns.count + c] += dense[((b * heads + h) * tq + i) * tk + j] }
                        }
                        var actual = base
                        actual.withUnsafeMutableBufferPointer {
                            bias.addTile(batch: b, head: h, heads: heads, rows: rows, columns: columns, queryLength: tq, keyLength: tk,
                                         queryOffset: queryOffset, into: $0.baseAddress!)
                        }
                        if actual != expected && failures < 3 {
                            failures += 1
                            XCTFail("\(name) Tq=\(tq) Tk=\(tk) offset \(queryOffset) b=\(b) h=\(h) rows \(rows) columns \(columns)")
                        }
                    }
                }
            }
        }
    }

    func testALiBiTilesMatchBias() {
        for (tq, tk) in [(37, 37), (23, 61), (61, 23), (1, 19), (70, 131)] {
            for queryOffset in Set([0, tk - tq, 7, -3]) {
                for heads in tq == tk ? [3, 8] : [3] {
                    checkBias(ALiBi(heads: heads), "ALiBi", heads: heads, tq: tq, tk: tk, queryOffset: queryOffset)
                    checkBias(ALiBi(heads: heads, symmetric: true), "ALiBi symmetric", heads: heads, tq: tq, tk: tk, queryOffset: queryOffset)
                }
            }
        }
    }

    func testRelativePositionBiasTilesMatchBias() {
        for (tq, tk) in [(37, 37), (23, 61), (61, 23), (1, 19), (70, 131)] {
            for queryOffset in Set([0, tk - tq, 5, -4]) {
                for (buckets, distance) in [(32, 128), (8, 10)] {
                    checkBias(RelativePositionBias(heads: 3, numBuckets: buckets, maxDistance: distance, bidirectional: true, seed: 1),
                              "T5 bidirectional \(buckets),\(distance)", heads: 3, tq: tq, tk: tk, queryOffset: queryOffset)
                    checkBias(RelativePositionBias(heads: 2, numBuckets: buckets, maxDistance: distance, bidirectional: false, seed: 2),
                              "T5 causal \(buckets),\(distance)", heads: 2, tq: tq, tk: tk, queryOffset: queryOffset)
                }
            }
        }
    }

    func testAdditiveBiasTilesMatchBias() {
        let (tq, tk, heads, batch) = (29, 41, 2, 3)
        for shape in [[batch, heads, tq, tk], [tq, tk], [1, heads, 1, tk], [batch, 1, tq, 1], [1]] {
            let values = Tensor.randomNormal(shape, seed: UInt64(shape.count))
            checkBias(AdditiveBias(values), "AdditiveBias \(shape)", heads: heads, tq: tq, tk: tk, queryOffset: 0, batch: batch)
        }
    }

    func testTableBucketsEqualT5Buckets() {
        for (buckets, distance) in [(32, 128), (8, 10), (4, 3), (33, 50), (2, 2), (16, 1000)] {
            for bidirectional in [true, false] where !(bidirectional && buckets < 4) {
                let bias = RelativePositionBias(heads: 1, numBuckets: buckets, maxDistance: distance, bidirectional: bidirectional)
                for r in -4000 ... 4000 {
                    let expected = RelativePositionBias.bucket(relativePosition: r, bidirectional: bidirectional,
                                                               numBuckets: buckets, maxDistance: distance)
                    if bias.tableBucket(relativePosition: r) != expected {
                        XCTFail("N=\(buckets) M=\(distance) bidirectional=\(bidirectional) r=\(r): \(bias.tableBucket(relativePosition: r)) vs \(expected)")
                        break
                    }
                }
            }
        }
    }

    /// The scattered tile gradients sum to the autodiff gradient of the table.
    func testTableGradientFromTilesMatchesAutodiff() {
        for bidirectional in [true, false] {
            let (tq, tk, heads, queryOffset) = (45, 67, 3, 22)
            let bias = RelativePositionBias(heads: heads, numBuckets: 8, maxDistance: 12, bidirectional: bidirectional, seed: 5)
            let upstream = Tensor.randomNormal([1, heads, tq, tk], seed: 6)
            (bias.bias(heads: heads, queryLength: tq, keyLength: tk, queryOffset: queryOffset) * upstream).sum().backward()
            let expected = bias.table.grad!.scalars
            bias.table.grad = nil

            var gradient = [Float](repeating: 0, count: 8 * heads)
            let g = upstream.scalars
            for h in 0 ..< heads {
                for (rows, columns) in tiles(tq, tk, rowSize: 16, columnSize: 7) {
                    var tile: [Float] = []
                    for i in rows { for j in columns { tile.append(g[(h * tq + i) * tk + j]) } }
                    gradient.withUnsafeMutableBufferPointer { buffer in
                        bias.accumulateTableGradient(fromTileGradient: tile, head: h, rows: rows, columns: columns,
                                                     queryOffset: queryOffset, into: buffer.baseAddress!)
                    }
                }
            }
            // Each grid of `tiles` is covered twice (origin 0 and 2).
            assertClose(gradient.map { $0 / 2 }, expected, rtol: 1e-4, atol: 1e-4, "bidirectional \(bidirectional)")
            XCTAssertGreaterThan(expected.filter { $0 != 0 }.count, 8, "buckets reached")
        }
    }
}
