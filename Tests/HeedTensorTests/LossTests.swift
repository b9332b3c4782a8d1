import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

final class LossTests: XCTestCase {
    /// PyTorch's cross_entropy formula, in Double with plain loops.
    private func reference(_ logits: Tensor, _ targets: [Int], smoothing: Double, ignore: Int) -> (losses: [Double], mean: Double) {
        let c = logits.shape.last!
        var losses: [Double] = [], counted = 0
        for (i, t) in targets.enumerated() {
            if t == ignore { losses.append(0); continue }
            let row = (0..<c).map { Double(logits.scalars[i * c + $0]) }
            let m = row.max()!
            let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            let logp = row.map { $0 - lse }
            losses.append((1 - smoothing) * -logp[t] + smoothing * -logp.reduce(0, +) / Double(c))
            counted += 1
        }
        return (losses, losses.reduce(0, +) / Double(Swift.max(counted, 1)))
    }

    func testCrossEntropyWithSmoothingAndIgnoreIndex() {
        let logits = randomTensor([2, 3, 5], seed: 61, std: 2)
        let targets = IndexTensor([0, 4, -100, 2, 2, 1], shape: [2, 3])
        for smoothing in [0.0, 0.1, 1.0] {
            let ref = reference(logits, targets.values, smoothing: smoothing, ignore: -100)
            let mean = logits.crossEntropy(targets: targets, labelSmoothing: Float(smoothing))
            XCTAssertEqual(Double(mean.item()), ref.mean, accuracy: 1e-5, "ε = \(smoothing)")
            let each = logits.crossEntropy(targets: targets, labelSmoothing: Float(smoothing), reduction: .none)
            XCTAssertEqual(each.shape, [2, 3])
            assertClose(each.scalars, ref.losses.map(Float.init), rtol: 1e-5, atol: 1e-6)
            let total = logits.crossEntropy(targets: targets, labelSmoothing: Float(smoothing), reduction: .sum)
            XCTAssertEqual(Double(total.item()), ref.losses.reduce(0, +), accuracy: 1e-4)
            assertGradients([logits], "ε = \(smoothing)") { $0[0].crossEntropy(targets: targets, labelSmoothing: Float(smoothing)) }
        }
    }

    func testCustomIgnoreIndexAndAllIgnored() {
        let logits = randomTensor([3, 4], seed: 62)
        let ref = reference(logits, [1, 7, 3], smoothing: 0, ignore: 7)
        XCTAssertEqual(Double(logits.crossEntropy(targets: IndexTensor([1, 7, 3]), ignoreIndex: 7).item()), ref.mean, accuracy: 1e-6)
        let none = logits.crossEntropy(targets: IndexTensor([7, 7, 7]), ignoreIndex: 7)
        XCTAssertEqual(none.item(), 0)
        none.backward()
        XCTAssertEqual(logits.grad!.scalars, [Float](repeating: 0, count: 12))
    }
}
