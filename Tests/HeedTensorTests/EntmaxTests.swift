import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

final class EntmaxTests: XCTestCase {
    func testKnownValues() {
        // v = z/2 = (0.5, 0): support of 2, μ = 0.25, ss = 0.125, τ = 0.25 − √(0.875/2).
        let tau = 0.25 - (0.875 / 2.0).squareRoot()
        let expected = [(0.5 - tau) * (0.5 - tau), tau * tau].map(Float.init)
        assertClose(Tensor([1, 0]).entmax15().scalars, expected, rtol: 1e-6, atol: 1e-7)
        // A gap of more than 2: one-hot.
        XCTAssertEqual(Tensor([0, 2.5, -1]).entmax15().scalars, [0, 1, 0])
        // Equal scores: uniform.
        assertClose(Tensor([3, 3, 3]).entmax15().scalars, [1.0 / 3, 1.0 / 3, 1.0 / 3], rtol: 1e-6, atol: 1e-7)
    }

    func testMatchesBisectionReference() {
        for (seed, std) in [(UInt64(11), Float(0.3)), (12, 1.5), (13, 5)] {
            let x = randomTensor([5, 59], seed: seed, std: std, requiresGrad: false)
            let y = x.entmax15()
            assertClose(y.scalars, SimplexReference.entmax15(x), rtol: 1e-5, atol: 1e-6, "std \(std)")
            assertClose(y.sum(axis: -1).scalars, [Float](repeating: 1, count: 5), rtol: 0, atol: 1e-5)
        }
    }

    /// Between softmax and sparsemax: sparser than softmax, denser than sparsemax.
    func testSparsityBetweenSoftmaxAndSparsemax() {
        let x = randomTensor([8, 40], seed: 14, std: 1.5, requiresGrad: false)
        let entmaxSupport = x.entmax15().greater(Tensor(scalar: 0)).sum().item()
        let sparsemaxSupport = x.sparsemax().greater(Tensor(scalar: 0)).sum().item()
        XCTAssertLessThan(entmaxSupport, Float(8 * 40))
        XCTAssertGreaterThan(entmaxSupport, sparsemaxSupport)
    }

    /// The closed-form backward against the composition on the (constant) support S:
    /// v = z/2, τ = mean_S v − √((1 − Σ_S (v − mean)²)/|S|), p = s ⊙ (v − τ)² —
    /// the explicit τ of Alg. 2, whose tape derivative is the exact Jacobian.
    func testFusedBackwardMatchesComposed() {
        let x = randomTensor([4, 3, 13], seed: 15, std: 1.2)
        let seed = Tensor.randomNormal([4, 3, 13], seed: 16)
        let fused = x.entmax15()
        fused.backward(seed)
        let fusedGrad = x.grad!
        x.grad = nil

        let support = fused.detached().greater(Tensor(scalar: 0))                          // s, constant
        let size = support.sum(axis: -1, keepDims: true)                                   // |S|
        let v = x * 0.5
        let mean = (v * support).sum(axis: -1, keepDims: true) / size
        let spread = ((v - mean).square() * support).sum(axis: -1, keepDims: true)
        let tau = mean - ((1 - spread) / size).sqrt()
        let composed = support * (v - tau).square()
        assertClose(composed.scalars, fused.scalars, rtol: 1e-5, atol: 1e-6)
        composed.backward(seed)
        assertClose(fusedGrad.scalars, x.grad!.scalars, rtol: 1e-4, atol: 1e-6)
    }

    func testFiniteDifferences() {
        let x = randomTensor([3, 8], seed: 17, std: 1)
        let step: Float = 1e-3
        let margin = SimplexReference.distanceToKinks(x, weights: x.entmax15().detached(), scale: 0.5)
        XCTAssertGreaterThan(margin, 3 * Double(step), "inputs too close to a kink for the check")
        assertGradients([x], relativeStep: step) { $0[0].entmax15() }
        // entmax is C¹: the check also passes across the whole range of a larger input.
        assertGradients([randomTensor([2, 6], seed: 18, std: 3)], relativeStep: step) { $0[0].entmax15() }
    }

    func testMinusInfinityIsExcludedAndEmptyRowIsZero() {
        let inf = -Float.infinity
        let x = Tensor([1, inf, 0, inf, inf, inf], shape: [2, 3], requiresGrad: true)
        let y = x.entmax15()
        let expected = Tensor([1, 0]).entmax15().scalars
        assertClose(y.scalars, [expected[0], 0, expected[1], 0, 0, 0], rtol: 0, atol: 1e-7)
        (y * Tensor.randomNormal([2, 3], seed: 19)).sum().backward()
        let g = x.grad!.scalars
        XCTAssertFalse(g.contains { $0.isNaN })
        for i in [1, 3, 4, 5] { XCTAssertEqual(g[i], 0, "element \(i)") }
        XCTAssertNotEqual(g[0], 0)
    }

    func testOtherAxis() {
        let x = randomTensor([5, 2, 3], seed: 20, requiresGrad: false)
        assertClose(x.entmax15(axis: 1).scalars, x.transposed(1, 2).entmax15().transposed(1, 2).scalars, rtol: 0, atol: 0)
    }
}
