import XCTest
import HeedTestSupport
@testable import HeedTensor

final class RandomTests: XCTestCase {
    /// Random123's published known-answer vectors for Philox4x32-10.
    func testPhiloxKnownAnswers() {
        let a = Philox.block(counter: (0, 0, 0, 0), key: (0, 0))
        XCTAssertEqual([a.0, a.1, a.2, a.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let b = Philox.block(counter: (.max, .max, .max, .max), key: (.max, .max))
        XCTAssertEqual([b.0, b.1, b.2, b.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let c = Philox.block(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        XCTAssertEqual([c.0, c.1, c.2, c.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testStreamIsTheDocumentedFunctionOfTheSeed() {
        var generator = RandomGenerator(seed: 0x1234_5678_9ABC_DEF0)
        let words = (0..<8).map { _ in generator.nextWord() }
        let block1 = Philox.block(counter: (1, 0, 0, 0), key: (0x9ABC_DEF0, 0x1234_5678))
        XCTAssertEqual(Array(words[4...]), [block1.0, block1.1, block1.2, block1.3])
        XCTAssertEqual(generator.position, 8)
    }

    func testUniformAndNormalMoments() {
        let u = Tensor.randomUniform([200_000], low: -2, high: 3, seed: 1).scalars.map(Double.init)
        XCTAssertEqual(u.reduce(0, +) / 200_000, 0.5, accuracy: 0.02)
        XCTAssertTrue(u.allSatisfy { $0 >= -2 && $0 < 3 })
        let n = Tensor.randomNormal([200_000], mean: 1, std: 2, seed: 2).scalars.map(Double.init)
        let mean = n.reduce(0, +) / 200_000
        let variance = n.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 200_000
        XCTAssertEqual(mean, 1, accuracy: 0.02)
        XCTAssertEqual(variance, 4, accuracy: 0.06)
        XCTAssertEqual(Tensor.randomNormal([5], seed: 3).scalars, Tensor.randomNormal([5], seed: 3).scalars)
    }

    func testNextIntIsUniformAndInRange() {
        var generator = RandomGenerator(seed: 4)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[generator.nextInt(below: 7)] += 1 }
        for count in counts { XCTAssertEqual(Double(count), 10_000, accuracy: 400) }
    }

    func testCreationOps() {
        XCTAssertEqual(Tensor.arange(0, 1, step: 0.25).scalars, [0, 0.25, 0.5, 0.75])
        XCTAssertEqual(Tensor.arange(3).scalars, [0, 1, 2])
        XCTAssertEqual(Tensor.arange(5, 0, step: -2).scalars, [5, 3, 1])
        XCTAssertEqual(Tensor.full([2, 2], 7).scalars, [7, 7, 7, 7])
        XCTAssertEqual(Tensor.zeros([0, 3]).count, 0)
        XCTAssertEqual(Tensor.ones([]).shape, [])
    }
}
