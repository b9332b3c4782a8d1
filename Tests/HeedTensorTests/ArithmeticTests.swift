import XCTest
import HeedTestSupport
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

    func testMatmulVectorCasesMatchLoops() {
        let m = randomTensor([3, 59], seed: 6), v = randomTensor([59], seed: 7), w = randomTensor([3], seed: 8)
        let mv = m.matmul(v)                       // [3]
        let wm = w.matmul(m)                       // [59]
        let vv = v.matmul(v)                       // []
        XCTAssertEqual(mv.shape, [3]); XCTAssertEqual(wm.shape, [59]); XCTAssertEqual(vv.shape, [])
        let expectedMV = (0..<3).map { r in (0..<59).reduce(0.0) { $0 + Double(m[r, $1]) * Double(v.scalars[$1]) } }
        let expectedWM = (0..<59).map { c in (0..<3).reduce(0.0) { $0 + Double(w.scalars[$1]) * Double(m[$1, c]) } }
        assertClose(mv.scalars, expectedMV.map(Float.init), rtol: 1e-5, atol: 1e-5)
        assertClose(wm.scalars, expectedWM.map(Float.init), rtol: 1e-5, atol: 1e-5)
        XCTAssertEqual(Double(vv.item()), v.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }, accuracy: 1e-3)
        assertGradients([m, v]) { $0[0].matmul($0[1]) }
        assertGradients([w, m]) { $0[0].matmul($0[1]) }
        // A zero inner dimension gives zeros.
        XCTAssertEqual(Tensor.zeros([2, 0]).matmul(Tensor.zeros([0, 3])).scalars, [0, 0, 0, 0, 0, 0])
    }

    func testBatchedMatmulMatchesLoops() {
        let a = randomTensor([2, 1, 4, 5], seed: 9), b = randomTensor([3, 5, 2], seed: 10)
        let c = a.matmul(b)
        for i in 0..<2 { for j in 0..<3 { for r in 0..<4 { for col in 0..<2 {
            let expected = (0..<5).reduce(0.0) { $0 + Double(a[i, 0, r, $1]) * Double(b[j, $1, col]) }
            XCTAssertEqual(Double(c[i, j, r, col]), expected, accuracy: 1e-5)
        } } } }
    }

    func testExpandAndSumToShapeGradients() {
        let x = randomTensor([3, 1, 5], seed: 17)
        let e = x.expand(to: [2, 3, 4, 5])
        XCTAssertEqual(e.shape, [2, 3, 4, 5])
        XCTAssertEqual(e[1, 2, 3, 4], x[2, 0, 4])
        assertGradients([x]) { $0[0].expand(to: [2, 3, 4, 5]) }
        let big = randomTensor([2, 3, 4, 5], seed: 18)
        let reduced = big.sum(toShape: [3, 1, 5])
        XCTAssertEqual(Double(reduced[1, 0, 2]), (0..<2).reduce(0.0) { i, a in (0..<4).reduce(i) { $0 + Double(big[a, 1, $1, 2]) } }, accuracy: 1e-5)
        assertGradients([big]) { $0[0].sum(toShape: [3, 1, 5]) }
        assertGradients([big]) { $0[0].reshaped(4, -1, 3) }
    }

    func testMaskedFillGradientSkipsFilledPositions() {
        let x = randomTensor([2, 59], seed: 19)
        let mask = Tensor((0..<59).map { Float($0 % 3 == 0 ? 1 : 0) }, shape: [1, 59])
        assertGradients([x]) { $0[0].maskedFill(mask, -4) }
        x.maskedFill(mask, -4).sum().backward()
        XCTAssertEqual(x.grad!.scalars, (0..<118).map { Float(($0 % 59) % 3 == 0 ? 0 : 1) })
    }
}

final class TransposedMatmulTests: XCTestCase {
    /// Every transpose-flag combination equals the product of explicit
    /// transposes, and its gradients pass the finite-difference check.
    func testAllFlagCombinations() {
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let a = randomTensor(transposeA ? [2, 5, 3] : [2, 3, 5], seed: 90)
                let b = randomTensor(transposeB ? [1, 4, 5] : [1, 5, 4], seed: 91)
                let fast = Tensor.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
                let slow = (transposeA ? a.transposed() : a).matmul(transposeB ? b.transposed() : b)
                assertClose(fast, slow, rtol: 1e-6, atol: 1e-6, "tA \(transposeA) tB \(transposeB)")
                assertGradients([a, b], "tA \(transposeA) tB \(transposeB)") {
                    Tensor.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)
                }
            }
        }
    }
}

final class LinearOpTests: XCTestCase {
    func testLinearMatchesLoopsAndGradients() {
        let x = randomTensor([2, 3, 5], seed: 95), w = randomTensor([4, 5], seed: 96), b = randomTensor([4], seed: 97)
        let y = x.linear(weight: w, bias: b)
        XCTAssertEqual(y.shape, [2, 3, 4])
        for i in 0..<2 { for t in 0..<3 { for o in 0..<4 {
            let expected = (0..<5).reduce(Double(b.scalars[o])) { $0 + Double(x[i, t, $1]) * Double(w[o, $1]) }
            XCTAssertEqual(Double(y[i, t, o]), expected, accuracy: 1e-5)
        } } }
        assertGradients([x, w, b]) { $0[0].linear(weight: $0[1], bias: $0[2]) }
    }
}
