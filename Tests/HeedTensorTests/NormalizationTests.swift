import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

final class NormalizationTests: XCTestCase {
    func testLayerNormMatchesLoopsAndGradients() {
        let x = randomTensor([2, 3, 59], seed: 41, std: 2)
        let w = randomTensor([59], seed: 42), b = randomTensor([59], seed: 43)
        let y = x.layerNorm(weight: w, bias: b, epsilon: 1e-5)
        var expected: [Float] = []
        for row in 0..<6 {
            let v = (0..<59).map { Double(x.scalars[row * 59 + $0]) }
            let mean = v.reduce(0, +) / 59
            let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 59
            for c in 0..<59 { expected.append(Float((v[c] - mean) / (variance + 1e-5).squareRoot() * Double(w.scalars[c]) + Double(b.scalars[c]))) }
        }
        assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
        let small = randomTensor([3, 1, 7], seed: 44), w7 = randomTensor([7], seed: 45), b7 = randomTensor([7], seed: 46)
        assertGradients([small, w7, b7]) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        // Normalising the last two axes.
        let w2 = randomTensor([1, 7], seed: 47)
        assertGradients([small, w2]) { $0[0].layerNorm(normalizedAxes: 2, weight: $0[1]) }
    }

    func testRMSNormMatchesLoopsAndGradients() {
        let x = randomTensor([4, 59], seed: 48)
        let w = randomTensor([59], seed: 49)
        let y = x.rmsNorm(weight: w, epsilon: 1e-6)
        var expected: [Float] = []
        for row in 0..<4 {
            let v = (0..<59).map { Double(x.scalars[row * 59 + $0]) }
            let rms = (v.reduce(0) { $0 + $1 * $1 } / 59 + 1e-6).squareRoot()
            for c in 0..<59 { expected.append(Float(v[c] / rms * Double(w.scalars[c]))) }
        }
        assertClose(y.scalars, expected, rtol: 1e-5, atol: 1e-6)
        let small = randomTensor([2, 1, 9], seed: 50), w9 = randomTensor([9], seed: 51)
        assertGradients([small, w9]) { $0[0].rmsNorm(weight: $0[1]) }
    }
}
