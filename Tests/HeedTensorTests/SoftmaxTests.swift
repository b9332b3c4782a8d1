import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

final class SoftmaxTests: XCTestCase {
    /// Softmax of a [outer, r, inner] layout along the middle axis, in Double.
    private func reference(_ x: Tensor, axis: Int, log: Bool = false) -> [Float] {
        let outer = x.shape[..<axis].reduce(1, *), r = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        let v = x.scalars.map(Double.init)
        var out = [Float](repeating: 0, count: v.count)
        for o in 0..<outer { for i in 0..<inner {
            let idx = (0..<r).map { (o * r + $0) * inner + i }
            let m = idx.map { v[$0] }.max()!
            let s = idx.reduce(0.0) { $0 + Foundation.exp(v[$1] - m) }
            for j in idx { out[j] = Float(log ? v[j] - m - Foundation.log(s) : Foundation.exp(v[j] - m) / s) }
        } }
        return out
    }

    func testSoftmaxEveryAxis() {
        let x = randomTensor([2, 3, 59], seed: 31, std: 3)
        for axis in 0..<3 {
            assertClose(x.softmax(axis: axis).scalars, reference(x, axis: axis), rtol: 1e-5, atol: 1e-7, "axis \(axis)")
            assertClose(x.logSoftmax(axis: axis).scalars, reference(x, axis: axis, log: true), rtol: 1e-5, atol: 1e-5, "log axis \(axis)")
        }
    }

    func testSoftmaxGradients() {
        let x = randomTensor([3, 1, 7], seed: 32)
        for axis in [0, 2, -1] {
            assertGradients([x], "softmax \(axis)") { $0[0].softmax(axis: axis) }
            assertGradients([x], "logSoftmax \(axis)") { $0[0].logSoftmax(axis: axis) }
        }
    }

    func testLargeLogitsDoNotOverflow() {
        let y = Tensor([1000, 999, -1000]).softmax().scalars
        XCTAssertEqual(Double(y[0]), 1 / (1 + Foundation.exp(-1.0)), accuracy: 1e-6)
        XCTAssertFalse(y.contains { $0.isNaN })
    }

    func testFullyMaskedRowGivesZerosAndZeroGradient() {
        let inf = -Float.infinity
        for axis in [1, 0] {
            let values: [Float] = axis == 1 ? [inf, inf, inf, 0, 1, 2] : [inf, 0, inf, 1, inf, 2]
            let shape = axis == 1 ? [2, 3] : [3, 2]
            let x = Tensor(values, shape: shape, requiresGrad: true)
            let y = x.softmax(axis: axis)
            let masked = axis == 1 ? [0, 1, 2] : [0, 2, 4]
            for i in masked { XCTAssertEqual(y.scalars[i], 0, "axis \(axis)") }
            XCTAssertFalse(y.scalars.contains { $0.isNaN })
            (y * Tensor.randomNormal(shape, seed: 33)).sum().backward()
            for i in masked { XCTAssertEqual(x.grad!.scalars[i], 0) }
            XCTAssertFalse(x.grad!.scalars.contains { $0.isNaN })
        }
        XCTAssertEqual(Tensor([inf, inf]).logSoftmax().scalars, [inf, inf])
    }
}
