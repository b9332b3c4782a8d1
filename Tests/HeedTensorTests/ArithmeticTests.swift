import XCTest
@testable import HeedTensor

final class ArithmeticTests: XCTestCase {
    func testBroadcastAddMatchesManualLoops() {
        let a = Tensor.arange(6).reshaped(2, 3, 1)           // [2, 3, 1]
        let b = Tensor([10, 20, 30, 40], shape: [4])          // [4]
        let c = a + b                                         // [2, 3, 4]
        XCTAssertEqual(c.shape, [2, 3, 4])
        var expected: [Float] = []
        for i in 0..<6 { for j in 0..<4 { expected.append(Float(i) + Float(10 * (j + 1))) } }
        XCTAssertEqual(c.scalars, expected)
    }

    func testGradientsBroadcastOnBothSides() {
        let a = randomTensor([3, 1, 5], seed: 1)
        let b = randomTensor([4, 1], seed: 2)
        assertGradients([a, b], "add") { $0[0] + $0[1] }
        assertGradients([a, b], "sub") { $0[0] - $0[1] }
        assertGradients([a, b], "mul") { $0[0] * $0[1] }
        let positive = Tensor(randomTensor([4, 1], seed: 3).scalars.map { Swift.abs($0) + 0.5 }, shape: [4, 1], requiresGrad: true)
        assertGradients([a, positive], "div") { $0[0] / $0[1] }
    }

    func testMatmulGradientWithBroadcastBatch() {
        let a = randomTensor([2, 1, 3, 59], seed: 4)
        let b = randomTensor([3, 59, 5], seed: 5)
        let c = a.matmul(b)
        XCTAssertEqual(c.shape, [2, 3, 3, 5])
        assertGradients([a, b], "matmul") { $0[0].matmul($0[1]) }
    }
}
