import XCTest
import HeedTestSupport
import CHeedKernels
@testable import HeedTensor

final class AutodiffTests: XCTestCase {
    func testGradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        (x * x).sum().backward()
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [5, 7, 9])     // 2x + 3
        x.grad = nil
        x.sum().backward()
        XCTAssertEqual(x.grad!.scalars, [1, 1, 1])
    }

    func testDiamondGraphSumsBothPaths() {
        let x = Tensor([2], requiresGrad: true)
        let a = x * x, b = x.exp()
        (a * b).sum().backward()   // d/dx x²eˣ = (2x + x²)eˣ
        XCTAssertEqual(x.grad!.item(), (4 + 4) * Float(exp(2.0)), accuracy: 1e-4)
    }

    func testNonScalarOutputWithSeed() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = x * x
        y.backward(Tensor([10, 100]))
        XCTAssertEqual(x.grad!.scalars, [20, 400])
    }

    func testNoGradScopeRecordsNothing() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = Tensor.withoutGrad { x * 2 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(Tensor.withoutGrad { Tensor.isGradEnabled })
        XCTAssertTrue(Tensor.isGradEnabled)
        XCTAssertFalse((x.detached() * 2).requiresGrad)
    }

    func testTapeIsFreedAfterBackward() {
        let x = Tensor([1, 2], requiresGrad: true)
        let hidden = x * 3
        weak var weakHidden: Tensor?
        var y: Tensor? = hidden.sum()
        weakHidden = hidden
        XCTAssertNotNil(y?.gradFunction)
        y!.backward()
        XCTAssertNil(y!.gradFunction)
        XCTAssertNil(hidden.gradFunction)
        y = nil
        _ = weakHidden
        XCTAssertEqual(x.grad!.scalars, [3, 3])
    }

    func testLeavesWithoutRequiresGradGetNothing() {
        let x = Tensor([1, 2], requiresGrad: true), c = Tensor([5, 6])
        (x * c).sum().backward()
        XCTAssertNil(c.grad)
        XCTAssertEqual(x.grad!.scalars, [5, 6])
    }
}

final class GradCheckTests: XCTestCase {
    /// The checker itself must catch a wrong derivative.
    func testDetectsAWrongBackward() {
        let x = randomTensor([4], seed: 81)
        let check = GradientCheck([x]) { inputs in
            let input = inputs[0]
            let out = Tensor.mapUnary(input, HEED_EXP)
            return Tensor.record(out, "wrongExp", [input]) { g in [g * 1.02 * out] }   // 2% off
        }
        XCTAssertFalse(check.passed)
        XCTAssertFalse(check.mismatches.isEmpty)
        for mismatch in check.mismatches {   // each flagged element is off by the planted 2 %
            XCTAssertEqual(mismatch.analytic / mismatch.numeric, 1.02, accuracy: 2e-3)
        }
        let right = GradientCheck([x]) { $0[0].exp() }
        XCTAssertTrue(right.passed)
        XCTAssertLessThan(right.maxAbsoluteError, 1e-3)
    }
}
