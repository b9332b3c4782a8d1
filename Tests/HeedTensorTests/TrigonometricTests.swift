import XCTest
import Foundation
import HeedTestSupport
@testable import HeedTensor

final class TrigonometricTests: XCTestCase {
    func testSineAndCosineValues() {
        let angles: [Float] = [0, 0.5, -1.25, 3.14159, 10, -100]
        let x = Tensor(angles, shape: [2, 3])
        XCTAssertEqual(x.sin().shape, [2, 3])
        assertClose(x.sin().scalars, angles.map { Float(Foundation.sin(Double($0))) }, rtol: 1e-6, atol: 1e-6)
        assertClose(x.cos().scalars, angles.map { Float(Foundation.cos(Double($0))) }, rtol: 1e-6, atol: 1e-6)
    }

    func testSineAndCosineGradients() {
        let x = randomTensor([3, 4], seed: 1, std: 2)
        assertGradients([x], "sin") { $0[0].sin() }
        assertGradients([x], "cos") { $0[0].cos() }
        assertGradients([x], "sin·cos") { $0[0].sin() * $0[0].cos() }
    }
}
