import XCTest
import HeedTestSupport
@testable import HeedTensor

final class DropoutTests: XCTestCase {
    func testDropoutKeepsExpectedFractionAndScales() {
        let x = Tensor.ones([100_000])
        let y = x.dropout(probability: 0.3, seed: 7)
        let kept = y.scalars.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 100_000, 0.7, accuracy: 0.005)   // ~6σ of a binomial
        XCTAssertTrue(kept.allSatisfy { Swift.abs($0 - 1 / 0.7) < 1e-6 })
        XCTAssertEqual(Double(y.mean().item()), 1, accuracy: 0.01)
    }

    func testSameSeedSameMaskAndGradientFollowsMask() {
        let x = randomTensor([3, 59], seed: 71)
        let a = x.dropout(probability: 0.5, seed: 99), b = x.dropout(probability: 0.5, seed: 99)
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertNotEqual(a.scalars, x.dropout(probability: 0.5, seed: 100).scalars)
        a.sum().backward()
        let expected = a.scalars.map { $0 == 0 ? Float(0) : 2 }
        XCTAssertEqual(x.grad!.scalars, expected)
        assertGradients([x]) { $0[0].dropout(probability: 0.25, seed: 5) }
    }

    func testEdgeProbabilities() {
        let x = randomTensor([10], seed: 72)
        XCTAssertEqual(x.dropout(probability: 0, seed: 1).scalars, x.scalars)
        XCTAssertEqual(x.dropout(probability: 1, seed: 1).scalars, [Float](repeating: 0, count: 10))
    }
}
