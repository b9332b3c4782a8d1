import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

final class PatternTests: XCTestCase {
    private func allowed(_ p: Pattern, _ tq: Int, _ tk: Int, batch: Int = 1) -> [[Bool]] {
        let m = p.mask(batch: batch, heads: 1, queryLength: tq, keyLength: tk).expand(to: [batch, 1, tq, tk]).scalars
        return (0..<tq).map { i in (0..<tk).map { m[i * tk + $0] != 0 } }
    }

    func testCausalAlignments() {
        let top = allowed(.causal(.topLeft), 2, 4), bottom = allowed(.causal(.bottomRight), 2, 4)
        XCTAssertEqual(top, [[true, false, false, false], [true, true, false, false]])
        XCTAssertEqual(bottom, [[true, true, true, false], [true, true, true, true]])
    }

    func testSlidingAndDilatedWindow() {
        let w = allowed(.slidingWindow(left: 1, right: 0), 4, 4)
        for i in 0..<4 { for j in 0..<4 { XCTAssertEqual(w[i][j], j == i || j == i - 1, "\(i),\(j)") } }
        let d = allowed(.dilatedWindow(left: 2, right: 1, dilation: 2), 7, 7)
        for i in 0..<7 { for j in 0..<7 {
            let expected = [i - 4, i - 2, i, i + 2].contains(j)
            XCTAssertEqual(d[i][j], expected, "\(i),\(j)")
        } }
    }

    func testGlobalUnionWindowAndIntersection() {
        let p = Pattern.union([.slidingWindow(left: 0, right: 0), .global(tokens: [0])])
        let a = allowed(p, 3, 3)
        XCTAssertEqual(a, [[true, true, true], [true, true, false], [true, false, true]])
        let c = allowed(.intersection([.strided(stride: 2), .causal()]), 5, 5)
        for i in 0..<5 { for j in 0..<5 { XCTAssertEqual(c[i][j], j <= i && (i - j < 2 || (i - j) % 2 == 0)) } }
    }

    func testPaddingAndBlockDiagonal() {
        let m = Pattern.keyPadding(lengths: [2, 3]).mask(batch: 2, heads: 1, queryLength: 1, keyLength: 3)
        XCTAssertEqual(m.shape, [2, 1, 1, 3])
        XCTAssertEqual(m.scalars, [1, 1, 0, 1, 1, 1])
        let bd = allowed(.blockDiagonal(lengths: [2, 1]), 3, 3)
        XCTAssertEqual(bd, [[true, true, false], [true, true, false], [false, false, true]])
    }

    func testFixedAndBigBird() {
        let f = allowed(.fixed(block: 2, summary: 1), 4, 4)
        for i in 0..<4 { for j in 0..<4 { XCTAssertEqual(f[i][j], i / 2 == j / 2 || j % 2 == 1) } }
        let b1 = allowed(.bigBird(blockSize: 2, windowBlocks: 1, globalBlocks: 1, randomBlocks: 1, seed: 3), 8, 8)
        let b2 = allowed(.bigBird(blockSize: 2, windowBlocks: 1, globalBlocks: 1, randomBlocks: 1, seed: 3), 8, 8)
        XCTAssertEqual(b1, b2)                               // seeded: reproducible
        XCTAssertTrue(b1[0].allSatisfy { $0 })               // global block row sees all
        for i in 2..<8 {
            let blocks = Set((0..<8).filter { b1[i][$0] }.map { $0 / 2 })
            XCTAssertTrue(blocks.contains(0) && blocks.contains(i / 2))
            XCTAssertEqual(blocks.count, 3)                  // global + own + one random
        }
    }
}
