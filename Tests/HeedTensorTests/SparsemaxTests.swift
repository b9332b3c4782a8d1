import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

/// Independent references for the sparse normalizers, in Double: the threshold
/// τ found by bisection on Σ f(z − τ) = 1 (not by sorting, as the ops do).
enum SimplexReference {
    /// Rows of the last axis of `x`; −inf entries are left out (weight 0).
    /// `map(z_j, τ)` is the weight of an entry; it must decrease in τ.
    static func project(_ x: Tensor, map: (Double, Double) -> Double) -> [Float] {
        let columns = x.shape.last!
        let values = x.scalars.map(Double.init)
        var out = [Float](repeating: 0, count: values.count)
        for row in 0..<(values.count / columns) {
            let z = Array(values[(row * columns)..<((row + 1) * columns)])
            let finite = z.filter { $0 != -.infinity }
            guard let top = finite.max() else { continue }
            // Σ map(z, τ) is 1 at some τ in [top − 2·columns, top] for both maps used here.
            var low = top - 2 * Double(columns) - 2, high = top
            for _ in 0..<200 {
                let middle = (low + high) / 2
                let total = finite.reduce(0) { $0 + map($1, middle) }
                if total > 1 { low = middle } else { high = middle }
            }
            let tau = (low + high) / 2
            for j in 0..<columns where z[j] != -.infinity { out[row * columns + j] = Float(map(z[j], tau)) }
        }
        return out
    }

    static func sparsemax(_ x: Tensor) -> [Float] { project(x) { z, tau in Swift.max(z - tau, 0) } }
    static func entmax15(_ x: Tensor) -> [Float] { project(x) { z, tau in Swift.max(z / 2 - tau, 0) * Swift.max(z / 2 - tau, 0) } }

    /// The smallest |z_j − τ| over allowed entries (sparsemax: p = z − τ on the support),
    /// to keep finite differences away from the kinks of the support.
    static func distanceToKinks(_ x: Tensor, weights: Tensor, scale: Double) -> Double {
        let columns = x.shape.last!
        let z = x.scalars.map(Double.init), p = weights.scalars.map(Double.init)
        var smallest = Double.infinity
        for row in 0..<(z.count / columns) {
            let range = (row * columns)..<((row + 1) * columns)
            // τ from any support entry: sparsemax p = z − τ; entmax √p = z/2 − τ.
            guard let j = range.first(where: { p[$0] > 0 }) else { continue }
            let tau = scale == 1 ? z[j] - p[j] : z[j] / 2 - p[j].squareRoot()
            for k in range where z[k] != -.infinity { smallest = Swift.min(smallest, Swift.abs(z[k] * scale - tau)) }
        }
        return smallest
    }
}

final class SparsemaxTests: XCTestCase {
    func testKnownValue() {
        // Sorted 1, 0.5, −1: support {1, 0.5} (1 + 2·0.5 > 1.5, 1 − 3 < 0.5), τ = (1.5 − 1)/2 = 0.25.
        assertClose(Tensor([1, 0.5, -1]).sparsemax().scalars, [0.75, 0.25, 0], rtol: 0, atol: 1e-7)
        // Far-apart scores: one-hot, like argmax.
        XCTAssertEqual(Tensor([0, 3, 1.5]).sparsemax().scalars, [0, 1, 0])
        // Equal scores: uniform.
        assertClose(Tensor([2, 2, 2, 2]).sparsemax().scalars, [0.25, 0.25, 0.25, 0.25], rtol: 0, atol: 1e-7)
    }

    func testMatchesBisectionReference() {
        for (seed, std) in [(UInt64(1), Float(0.3)), (2, 1), (3, 4)] {
            let x = randomTensor([5, 59], seed: seed, std: std, requiresGrad: false)
            let y = x.sparsemax()
            assertClose(y.scalars, SimplexReference.sparsemax(x), rtol: 1e-5, atol: 1e-6, "std \(std)")
            let sums = y.sum(axis: -1).scalars
            assertClose(sums, [Float](repeating: 1, count: 5), rtol: 0, atol: 1e-5)
            XCTAssertTrue(y.scalars.allSatisfy { $0 >= 0 })
        }
    }

    func testShiftInvariant() {
        let x = randomTensor([3, 7], seed: 4, requiresGrad: false)
        assertClose((x + 1000).sparsemax().scalars, x.sparsemax().scalars, rtol: 0, atol: 1e-4)
    }

    /// The closed-form backward (eq. 14) against the composition
    /// p = s ⊙ (z − (Σ s z − 1)/|S|), whose tape derivative is the same Jacobian.
    func testFusedBackwardMatchesComposed() {
        let x = randomTensor([4, 3, 11], seed: 5, std: 0.7)
        let seed = Tensor.randomNormal([4, 3, 11], seed: 6)
        let fused = x.sparsemax()
        fused.backward(seed)
        let fusedGrad = x.grad!
        x.grad = nil

        let support = fused.detached().greater(Tensor(scalar: 0))                  // s, constant
        let size = support.sum(axis: -1, keepDims: true)                           // |S|
        let tau = ((x * support).sum(axis: -1, keepDims: true) - 1) / size
        let composed = support * (x - tau)
        assertClose(composed.scalars, fused.scalars, rtol: 1e-5, atol: 1e-6)
        composed.backward(seed)
        assertClose(fusedGrad.scalars, x.grad!.scalars, rtol: 1e-5, atol: 1e-6)
        XCTAssertGreaterThan(support.sum().item(), Float(12), "the support must hold more than one key per row somewhere")
    }

    func testFiniteDifferences() {
        let x = randomTensor([3, 9], seed: 7, std: 0.5)
        let step: Float = 1e-3
        let margin = SimplexReference.distanceToKinks(x, weights: x.sparsemax().detached(), scale: 1)
        XCTAssertGreaterThan(margin, 3 * Double(step) * 2, "inputs too close to a kink for the check")
        assertGradients([x], relativeStep: step) { $0[0].sparsemax() }
    }

    func testMinusInfinityIsExcludedAndEmptyRowIsZero() {
        let inf = -Float.infinity
        let x = Tensor([inf, 0.5, inf, 1, inf, inf, inf, inf], shape: [2, 4], requiresGrad: true)
        let y = x.sparsemax()
        assertClose(y.scalars, [0, 0.25, 0, 0.75, 0, 0, 0, 0], rtol: 0, atol: 1e-7)
        (y * Tensor.randomNormal([2, 4], seed: 8)).sum().backward()
        let g = x.grad!.scalars
        XCTAssertFalse(g.contains { $0.isNaN })
        for i in [0, 2, 4, 5, 6, 7] { XCTAssertEqual(g[i], 0, "element \(i)") }
        XCTAssertNotEqual(g[1], 0)
        XCTAssertEqual(g[1] + g[3], 0, accuracy: 1e-6)   // the gradient is centred on the support
    }

    func testOtherAxisAndNaN() {
        let x = randomTensor([4, 3], seed: 9, requiresGrad: false)
        assertClose(x.sparsemax(axis: 0).scalars, x.transposed().sparsemax().transposed().scalars, rtol: 0, atol: 0)
        XCTAssertTrue(Tensor([1, .nan, 0]).sparsemax().scalars.allSatisfy { $0.isNaN })
        XCTAssertTrue(Tensor([1, .infinity]).sparsemax().scalars.allSatisfy { $0.isNaN })
        XCTAssertEqual(Tensor.zeros([2, 0]).sparsemax().shape, [2, 0])
    }
}
