import XCTest
import Foundation
import HeedTensor

/// Asserts elementwise |actual − expected| ≤ atol + rtol·|expected| (NaN equals NaN).
public func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count differs \(message)", file: file, line: line)
    var worst: (Int, Float, Float)?
    var worstExcess: Float = 0
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        if a.isNaN && e.isNaN { continue }
        if a == e { continue }
        let excess = Swift.abs(a - e) - (atol + rtol * Swift.abs(e))
        if excess > worstExcess || !excess.isFinite { worst = (i, a, e); worstExcess = excess.isFinite ? excess : .infinity }
    }
    if let (i, a, e) = worst {
        XCTFail("element \(i): \(a) vs expected \(e) \(message)", file: file, line: line)
    }
}

public func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shape \(message)", file: file, line: line)
    assertClose(actual.scalars, expected.scalars, rtol: rtol, atol: atol, message, file: file, line: line)
}

/// A seeded normal tensor that requires gradients.
public func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1, requiresGrad: Bool = true) -> Tensor {
    Tensor.randomNormal(shape, std: std, seed: seed, requiresGrad: requiresGrad)
}

/// A seeded tensor whose entries stay at least `gap` away from 0 (for kinks).
public func randomAwayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.1) -> Tensor {
    let t = Tensor.randomNormal(shape, seed: seed)
    let moved = t.scalars.map { $0 >= 0 ? $0 + gap : $0 - gap }
    return Tensor(moved, shape: shape, requiresGrad: true)
}

/// Runs a finite-difference gradient check and fails with the first mismatches.
public func assertGradients(_ inputs: [Tensor], atol: Double = 1e-3, rtol: Double = 2e-3, relativeStep: Float = 1e-2,
                     _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                     _ f: @escaping ([Tensor]) -> Tensor) {
    let check = GradientCheck(inputs, relativeStep: relativeStep, atol: atol, rtol: rtol, f)
    XCTAssertGreaterThan(check.checkedCount, 0, "nothing checked \(message)", file: file, line: line)
    XCTAssertTrue(check.passed, "gradient mismatch \(message): \(check.mismatches.prefix(3)) (max abs error \(check.maxAbsoluteError))",
                  file: file, line: line)
}

/// The committed fixtures folder (Tests/Fixtures), found from this source file.
public func fixturesDirectory(file: StaticString = #filePath) -> URL {
    URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
}


/// Opens a committed safetensors fixture under Tests/Fixtures.
public func loadFixture(_ relativePath: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(url: fixturesDirectory().appendingPathComponent(relativePath))
}
