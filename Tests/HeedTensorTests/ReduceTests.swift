import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

/// Reductions over every axis combination against plain loops, and their gradients.
final class ReduceTests: XCTestCase {
    /// Reduces a [2, 3, 4] array over `axes` with plain loops in Double.
    private func loopReduce(_ x: Tensor, axes: Set<Int>, _ combine: ([Double]) -> Double) -> [Float] {
        let s = x.shape
        var groups: [[Int]: [Double]] = [:]
        var order: [[Int]] = []
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] {
            let key = [i, j, k].enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(Double(x[i, j, k]))
        } } }
        return order.map { Float(combine(groups[$0]!)) }
    }

    private let x = randomTensor([2, 3, 4], seed: 21)
    /// 0, 0.1, …, 2.3 in a scrambled order (7 is coprime to 24).
    private let spread = Tensor((0..<24).map { Float(($0 * 7) % 24) * 0.1 }, shape: [2, 3, 4], requiresGrad: true)
    private let axisSets: [[Int]] = [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2], [-1]]

    func testSumOverEveryAxisSet() {
        for axes in axisSets {
            let normalized = Set(axes.map { $0 < 0 ? $0 + 3 : $0 })
            let expected = loopReduce(x, axes: normalized) { $0.reduce(0, +) }
            assertClose(x.sum(axes: axes).scalars, expected, rtol: 1e-6, atol: 1e-6, "axes \(axes)")
            let kept = x.sum(axes: axes, keepDims: true)
            XCTAssertEqual(kept.shape, (0..<3).map { normalized.contains($0) ? 1 : x.shape[$0] })
            assertGradients([x], "sum \(axes)") { $0[0].sum(axes: axes) }
        }
        assertClose([x.sum().item()], [Float(x.scalars.map(Double.init).reduce(0, +))], rtol: 1e-6)
    }

    func testMeanMaxMin() {
        for axes in axisSets {
            let normalized = Set(axes.map { $0 < 0 ? $0 + 3 : $0 })
            assertClose(x.mean(axes: axes).scalars, loopReduce(x, axes: normalized) { $0.reduce(0, +) / Double($0.count) }, rtol: 1e-6, atol: 1e-6)
            XCTAssertEqual(x.max(axes: axes).scalars, loopReduce(x, axes: normalized) { $0.max()! })
            XCTAssertEqual(x.min(axes: axes).scalars, loopReduce(x, axes: normalized) { $0.min()! })
            assertGradients([x], "mean \(axes)") { $0[0].mean(axes: axes) }
            // Distinct values ≥ 0.1 apart keep finite differences off the kinks.
            assertGradients([spread], "max \(axes)") { $0[0].max(axes: axes) }
            assertGradients([spread], "min \(axes)") { $0[0].min(axes: axes) }
        }
    }

    func testMaxGradientSharedAmongTies() {
        let t = Tensor([3, 1, 3, 2], requiresGrad: true)
        t.max().backward()
        XCTAssertEqual(t.grad!.scalars, [0.5, 0, 0.5, 0])
    }

    func testReductionOfOddLongAxisUsesAllElements() {
        // 59 rows × 1000 columns: exercises the row-accumulating path.
        let big = Tensor.randomNormal([59, 1000], seed: 22)
        let columnSums = big.sum(axis: 0).scalars
        for c in [0, 499, 999] {
            let expected = (0..<59).reduce(0.0) { $0 + Double(big[$1, c]) }
            XCTAssertEqual(Double(columnSums[c]), expected, accuracy: 1e-4)
        }
        let rowMax = big.max(axis: 1).scalars
        XCTAssertEqual(rowMax[58], (0..<1000).map { big[58, $0] }.max()!)
    }

    func testArgmaxArgmin() {
        let t = Tensor([1, 5, 5, 0, -2, 7], shape: [2, 3])
        XCTAssertEqual(t.argmax(axis: 1), IndexTensor([1, 2]))            // first of ties
        XCTAssertEqual(t.argmin(axis: 1), IndexTensor([0, 1]))
        XCTAssertEqual(t.argmax(axis: 0, keepDims: true), IndexTensor([0, 0, 1], shape: [1, 3]))
        XCTAssertEqual(t.argmax(axis: -1).shape, [2])
    }

    func testLogsumexpStableAndDifferentiable() {
        let t = Tensor([1000, 1000, -.infinity, 0, 1, 2], shape: [2, 3])
        let y = t.logsumexp(axis: 1).scalars
        XCTAssertEqual(Double(y[0]), 1000 + Foundation.log(2.0), accuracy: 1e-3)
        XCTAssertEqual(Double(y[1]), Foundation.log(Foundation.exp(0.0) + Foundation.exp(1.0) + Foundation.exp(2.0)), accuracy: 1e-6)
        XCTAssertEqual(Tensor([-.infinity, -.infinity]).logsumexp(axis: 0).item(), -.infinity)
        assertGradients([x]) { $0[0].logsumexp(axes: [0, 2]) }
        assertGradients([x]) { $0[0].logsumexp(axis: -1, keepDims: true) }
    }
}
