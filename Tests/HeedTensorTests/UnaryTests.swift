import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

/// Forward values against Foundation's double-precision functions, and every
/// derivative against finite differences on awkward shapes.
final class UnaryTests: XCTestCase {
    private let x = randomAwayFromZero([3, 1, 59], seed: 11)

    private func checkForward(_ f: (Tensor) -> Tensor, _ reference: (Double) -> Double, input: Tensor? = nil,
                              rtol: Float = 2e-6, atol: Float = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        let input = input ?? x
        let expected = input.scalars.map { Float(reference(Double($0))) }
        assertClose(f(input).scalars, expected, rtol: rtol, atol: atol, file: file, line: line)
    }

    private var positive: Tensor { Tensor(x.scalars.map { Swift.abs($0) + 0.2 }, shape: x.shape, requiresGrad: true) }

    func testExp() { checkForward({ $0.exp() }, Foundation.exp); assertGradients([x]) { $0[0].exp() } }
    func testLog() { checkForward({ $0.log() }, Foundation.log, input: positive); assertGradients([positive]) { $0[0].log() } }
    func testSqrt() { checkForward({ $0.sqrt() }, Foundation.sqrt, input: positive); assertGradients([positive]) { $0[0].sqrt() } }
    func testRsqrt() {
        checkForward({ $0.rsqrt() }, { 1 / Foundation.sqrt($0) }, input: positive)
        assertGradients([positive]) { $0[0].rsqrt() }
    }
    func testTanh() { checkForward({ $0.tanh() }, Foundation.tanh); assertGradients([x]) { $0[0].tanh() } }
    func testSigmoid() {
        checkForward({ $0.sigmoid() }, { 1 / (1 + Foundation.exp(-$0)) })
        assertGradients([x]) { $0[0].sigmoid() }
        // Stable at the extremes: no NaN, saturates to 0 and 1.
        XCTAssertEqual(Tensor([-200, 200]).sigmoid().scalars, [0, 1])
    }
    func testRelu() { checkForward({ $0.relu() }, { Swift.max($0, 0) }); assertGradients([x]) { $0[0].relu() } }
    func testAbs() { checkForward({ $0.abs() }, { Swift.abs($0) }); assertGradients([x]) { $0[0].abs() } }
    func testSilu() { checkForward({ $0.silu() }, { $0 / (1 + Foundation.exp(-$0)) }); assertGradients([x]) { $0[0].silu() } }
    func testGeluErf() {
        checkForward({ $0.gelu() }, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) })
        assertGradients([x]) { $0[0].gelu() }
    }
    func testGeluTanh() {
        let c = (2 / Double.pi).squareRoot()
        checkForward({ $0.gelu(approximate: .tanh) }, { 0.5 * $0 * (1 + Foundation.tanh(c * ($0 + 0.044715 * $0 * $0 * $0))) })
        assertGradients([x]) { $0[0].gelu(approximate: .tanh) }
    }
    func testSquareAndNeg() {
        checkForward({ $0.square() }, { $0 * $0 })
        checkForward({ -$0 }, { -$0 })
        assertGradients([x]) { $0[0].square() }
        assertGradients([x]) { -$0[0] }
    }
    func testPowBothOperands() {
        let exponent = Tensor(Tensor.randomUniform([59], low: -1.5, high: 2.5, seed: 12).scalars, shape: [59], requiresGrad: true)
        let base = positive
        let y = base.pow(exponent)
        let expected = zip(base.scalars, Array(repeating: exponent.scalars, count: 3).flatMap { $0 }).map { Float(Foundation.pow(Double($0), Double($1))) }
        assertClose(y.scalars, expected, rtol: 1e-5)
        assertGradients([base, exponent]) { $0[0].pow($0[1]) }
        assertGradients([base]) { $0[0].pow(3) }
    }
    func testMaximumMinimumAndTies() {
        let a = randomTensor([4, 1], seed: 13), b = randomTensor([1, 5], seed: 14)
        let expected = a.scalars.flatMap { av in b.scalars.map { Swift.max(av, $0) } }
        XCTAssertEqual(Tensor.maximum(a, b).scalars, expected)
        assertGradients([a, b]) { Tensor.maximum($0[0], $0[1]) }
        assertGradients([a, b]) { Tensor.minimum($0[0], $0[1]) }
        // Ties split the gradient evenly, like PyTorch.
        let p = Tensor([1, 2], requiresGrad: true), q = Tensor([1, 3], requiresGrad: true)
        Tensor.maximum(p, q).sum().backward()
        XCTAssertEqual(p.grad!.scalars, [0.5, 0])
        XCTAssertEqual(q.grad!.scalars, [0.5, 1])
    }
    func testWhereAndMaskedFill() {
        let condition = Tensor([1, 0, 1], shape: [1, 3])
        let a = randomTensor([2, 3], seed: 15), b = randomTensor([2, 1], seed: 16)
        let y = Tensor.where(condition, a, b)
        let expected = (0..<6).map { i in condition.scalars[i % 3] != 0 ? a.scalars[i] : b.scalars[i / 3] }
        XCTAssertEqual(y.scalars, expected)
        assertGradients([a, b]) { Tensor.where(condition, $0[0], $0[1]) }
        // The unchosen side's inf/NaN never leaks into the result.
        let filled = Tensor([1, 2, 3]).maskedFill(Tensor([0, 1, 0]), -.infinity)
        XCTAssertEqual(filled.scalars, [1, -.infinity, 3])
        XCTAssertEqual(Tensor.where(Tensor([1, 0]), Tensor([1, 1]), Tensor([.nan, .infinity])).scalars, [1, .infinity])
    }
    func testComparisons() {
        let a = Tensor([1, 2, 3]), b = Tensor([2, 2, 2])
        XCTAssertEqual(a.equal(b).scalars, [0, 1, 0])
        XCTAssertEqual(a.greater(b).scalars, [0, 0, 1])
        XCTAssertEqual(a.less(b).scalars, [1, 0, 0])
    }
}
