import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Every normalizer against the committed PyTorch fixtures
/// (Tests/Fixtures/attention/make_normalizers_fixtures.py), finite differences,
/// and the empty-row rule.
final class NormalizerTests: XCTestCase {
    private static let cases = ["main", "unmasked", "single"]

    /// Runs `normalizer` on the stored case `prefix` and compares weights and gradients.
    private func checkFixture(_ file: SafeTensorsFile, _ prefix: String, rtol: Float = 1e-4, atol: Float = 1e-5,
                              file sourceFile: StaticString = #filePath, line: UInt = #line,
                              _ normalizer: (Tensor) -> Normalizer) throws {
        let scores = try file.tensor("\(prefix).scores")
        scores.requiresGrad = true
        let mask = file.contains("\(prefix).mask") ? try file.tensor("\(prefix).mask") : nil
        let params = file.contains("\(prefix).params") ? try file.tensor("\(prefix).params") : Tensor([0])
        let weights = normalizer(params)(scores, mask: mask).weights
        assertClose(weights, try file.tensor("\(prefix).weights"), rtol: rtol, atol: atol, "\(prefix) weights",
                    file: sourceFile, line: line)
        weights.backward(try file.tensor("\(prefix).grad_out"))
        assertClose(scores.grad!, try file.tensor("\(prefix).dscores"), rtol: rtol, atol: atol, "\(prefix) dscores",
                    file: sourceFile, line: line)
    }

    // MARK: Fixtures

    func testSparsemaxMatchesEntmaxPackage() throws {
        let file = try loadFixture("attention/normalizers_sparsemax.safetensors")
        for name in Self.cases { try checkFixture(file, name) { _ in .sparsemax } }
    }

    func testEntmax15MatchesEntmaxPackage() throws {
        let file = try loadFixture("attention/normalizers_entmax15.safetensors")
        for name in Self.cases { try checkFixture(file, name) { _ in .entmax15 } }
    }

    func testDivisiveMatchesTranscription() throws {
        let file = try loadFixture("attention/normalizers_divisive.safetensors")
        for (drive, kind) in [("exponential", Normalizer.Drive.exponential), ("rectified", .rectified)] {
            for name in Self.cases {
                try checkFixture(file, "\(drive).\(name)") { p in
                    .divisive(semiSaturation: p.scalars[0], exponent: p.scalars[1], drive: kind)
                }
            }
        }
    }

    func testLocalPoolsMatchTranscription() throws {
        let file = try loadFixture("attention/normalizers_localpools.safetensors")
        for (drive, kind) in [("exponential", Normalizer.Drive.exponential), ("rectified", .rectified)] {
            for name in Self.cases {
                try checkFixture(file, "\(drive).\(name)") { p in
                    .localPools(radius: Int(p.scalars[2]), semiSaturation: p.scalars[0], exponent: p.scalars[1], drive: kind)
                }
            }
        }
    }

    func testHardArgmaxMatchesTorchArgmax() throws {
        let file = try loadFixture("attention/normalizers_hard.safetensors")
        for name in Self.cases {
            let scores = try file.tensor("\(name).scores")
            let mask = file.contains("\(name).mask") ? try file.tensor("\(name).mask") : nil
            let weights = Normalizer.hardArgmax(scores, mask: mask).weights
            XCTAssertEqual(weights.scalars, try file.tensor("\(name).weights").scalars, name)
        }
    }

    // MARK: Finite differences (small shapes, a mask with an all-masked row)

    /// [2, 3, 5] scores, a [2, 1, 5] mask (broadcast over the middle axis) whose
    /// second row allows nothing.
    private func smallMask() -> Tensor {
        Tensor([1, 0, 1, 1, 1,
                0, 0, 0, 0, 0], shape: [2, 1, 5])
    }

    func testSoftNormalizersFiniteDifferences() {
        let normalizers: [Normalizer] = [
            .softmax,
            .divisive(semiSaturation: 0.8, exponent: 1.5, drive: .exponential),
            .divisive(semiSaturation: 1.5, exponent: 2, drive: .rectified),
            .localPools(radius: 1, semiSaturation: 0.5, exponent: 1, drive: .exponential),
            .localPools(radius: 2, semiSaturation: 1, exponent: 2, drive: .rectified),
        ]
        for normalizer in normalizers {
            // Rectified drives have a kink at 0: keep the scores away from it.
            let scores = randomAwayFromZero([2, 3, 5], seed: 41, gap: 0.2)
            assertGradients([scores], "\(normalizer)") { normalizer($0[0], mask: self.smallMask()).weights }
            assertGradients([scores], "\(normalizer), no mask") { normalizer($0[0], mask: nil).weights }
        }
    }

    func testSparseNormalizersFiniteDifferences() {
        // Scores spread widely enough that no entry sits within the step of a support edge.
        let scores = Tensor([0.9, -0.7, 0.35, 0.1, -1.6,
                             1.4, 0.2, 0.8, -0.3, 0.55,
                             -0.2, 0.6, 0.05, 1.1, 0.3,
                             0.4, 1.0, -0.9, 0.75, 0.0,
                             0.3, -0.5, 1.2, 0.6, 0.1,
                             -1.0, 0.2, 0.5, 0.9, 1.3], shape: [2, 3, 5], requiresGrad: true)
        for normalizer in [Normalizer.sparsemax, .entmax15] {
            let weights = normalizer(scores, mask: smallMask()).weights
            XCTAssertGreaterThan(weights.greater(Tensor(scalar: 0)).sum().item(), Float(3), "a non-trivial support")
            assertGradients([scores], relativeStep: 1e-3, "\(normalizer)") { normalizer($0[0], mask: self.smallMask()).weights }
        }
    }

    // MARK: The empty-row rule, for every normalizer

    static let everyNormalizer: [Normalizer] = [
        .softmax, .sparsemax, .entmax15,
        .divisive(), .divisive(semiSaturation: 2, exponent: 2, drive: .rectified),
        .localPools(radius: 1), .localPools(radius: 2, semiSaturation: 0.5, exponent: 2, drive: .rectified),
        .hardArgmax, .hardSampled(seed: 3),
    ]

    func testRowsWithNothingToAttendToAreZeroWithZeroGradient() {
        let inf = -Float.infinity
        for normalizer in Self.everyNormalizer {
            // Row 0: masked by the mask; row 1: every score −inf (an additive −inf bias); row 2: open.
            let scores = Tensor([0.5, 2, -1, inf, inf, inf, 0.3, -0.2, 1.5], shape: [3, 3], requiresGrad: true)
            let mask = Tensor([0, 0, 0, 1, 1, 1, 1, 1, 1], shape: [3, 3])
            let result = normalizer(scores, mask: mask)
            let w = result.weights.scalars
            XCTAssertEqual(Array(w[0..<6]), [0, 0, 0, 0, 0, 0], "\(normalizer)")
            XCTAssertFalse(w.contains { $0.isNaN }, "\(normalizer)")
            XCTAssertGreaterThan(w[6..<9].reduce(0, +), 0.1, "\(normalizer): the open row attends")
            var loss = (result.weights * Tensor.randomNormal([3, 3], seed: 42)).sum()
            if let logProbability = result.logProbability {
                XCTAssertEqual(logProbability.shape, [3])
                XCTAssertEqual(Array(logProbability.scalars[0..<2]), [0, 0], "\(normalizer)")
                loss = loss + logProbability.sum()
            }
            guard loss.requiresGrad else { continue }   // hardArgmax: no gradient at all
            loss.backward()
            let g = scores.grad!.scalars
            XCTAssertEqual(Array(g[0..<6]), [0, 0, 0, 0, 0, 0], "\(normalizer)")
            XCTAssertFalse(g.contains { $0.isNaN }, "\(normalizer)")
        }
    }

    func testMaskedKeysGetNoWeightAndNoGradient() {
        for normalizer in Self.everyNormalizer {
            let scores = randomTensor([2, 3, 59], seed: 43, std: 2)
            let mask = Tensor.randomUniform([2, 1, 59], seed: 44).greater(Tensor(scalar: 0.4))   // [2, 1, 59]
            let result = normalizer(scores, mask: mask)
            let blocked = (1 - mask).expand(to: [2, 3, 59]).scalars
            let w = result.weights.scalars
            for i in w.indices where blocked[i] == 1 { XCTAssertEqual(w[i], 0, "\(normalizer) at \(i)") }
            let loss = (result.weights * Tensor.randomNormal([2, 3, 59], seed: 45)).sum()
                + (result.logProbability?.sum() ?? Tensor(scalar: 0))
            guard loss.requiresGrad else { continue }
            loss.backward()
            let g = scores.grad!.scalars
            for i in g.indices where blocked[i] == 1 { XCTAssertEqual(g[i], 0, "\(normalizer) at \(i)") }
        }
    }

    // MARK: Properties of the divisive family

    func testDivisiveRowsLeakMassAndApproachSoftmax() {
        let scores = randomTensor([4, 9], seed: 46, requiresGrad: false)
        let softmax = scores.softmax(axis: -1)
        // Row sums D/(σⁿ + D) < 1, exactly as the formula says.
        let sigma: Float = 3
        let leaky = Normalizer.divisive(semiSaturation: sigma)(scores, mask: nil).weights
        let drive = scores.exp().sum(axis: -1).scalars
        assertClose(leaky.sum(axis: -1).scalars, drive.map { $0 / (sigma + $0) }, rtol: 1e-5, atol: 1e-6)
        // Same shape as softmax, scaled down: w = softmax · D/(σ + D).
        assertClose(leaky.scalars, (softmax * leaky.sum(axis: -1, keepDims: true)).scalars, rtol: 1e-5, atol: 1e-7)
        // σ → 0 recovers softmax.
        assertClose(Normalizer.divisive(semiSaturation: 1e-6)(scores, mask: nil).weights.scalars, softmax.scalars,
                    rtol: 1e-4, atol: 1e-6)
        // Weak scores: almost nothing is attended.
        let weak = Normalizer.divisive(semiSaturation: 1)(scores - 20, mask: nil).weights
        XCTAssertLessThan(weak.sum(axis: -1).max().item(), 1e-6)
        // Huge scores do not overflow.
        let huge = Normalizer.divisive(semiSaturation: 1)(scores * 1000, mask: nil).weights.scalars
        XCTAssertFalse(huge.contains { $0.isNaN })
    }

    func testLocalPoolsLimits() {
        let scores = randomTensor([2, 3, 7], seed: 47, requiresGrad: false)
        let mask = Tensor.randomUniform([2, 3, 7], seed: 48).greater(Tensor(scalar: 0.3))
        for drive in [Normalizer.Drive.exponential, .rectified] {
            // A pool as wide as the row is .divisive.
            for radius in [6, 100] {
                assertClose(Normalizer.localPools(radius: radius, semiSaturation: 0.7, exponent: 2, drive: drive)(scores, mask: mask).weights,
                            Normalizer.divisive(semiSaturation: 0.7, exponent: 2, drive: drive)(scores, mask: mask).weights,
                            rtol: 1e-5, atol: 1e-7, "\(drive) radius \(radius)")
            }
            // Radius 0: each key alone, E/(σⁿ + E).
            let alone = Normalizer.localPools(radius: 0, semiSaturation: 0.7, exponent: 2, drive: drive)(scores, mask: mask).weights
            let e = (drive == .exponential ? (scores * 2).exp() : scores.relu().square()) * mask
            assertClose(alone, e / (e + 0.49), rtol: 1e-5, atol: 1e-7, "\(drive) radius 0")
        }
        // Two strong keys far apart each win their own pool: the row sums to more than 1.
        let two = Tensor([5, 0, 0, 0, 0, 0, 5], shape: [1, 7])
        let w = Normalizer.localPools(radius: 1, semiSaturation: 0.1)(two, mask: nil).weights.scalars
        XCTAssertGreaterThan(w[0], 0.9)
        XCTAssertGreaterThan(w[6], 0.9)
        XCTAssertLessThan(Normalizer.softmax(two, mask: nil).weights.scalars[0], 0.51)
    }

    // MARK: Through the attention engine

    func testAttentionWithEveryNormalizerMatchesWeightsTimesValues() {
        let (b, h, tq, tk, d) = (2, 2, 3, 5, 4)
        let q = randomTensor([b, h, tq, d], seed: 49), k = randomTensor([b, h, tk, d], seed: 50)
        let v = randomTensor([b, h, tk, d], seed: 51)
        for normalizer in Self.everyNormalizer {
            let attention = Attention(pattern: .causal(), normalizer: normalizer)
            let result = attention(query: q, key: k, value: v)
            let scores = q.matmul(k.transposed()) * (1 / Float(d).squareRoot())
            let mask = Pattern.causal().mask(batch: b, heads: h, queryLength: tq, keyLength: tk)
            let expected = normalizer(scores, mask: mask)
            assertClose(result.weights, expected.weights, rtol: 1e-5, atol: 1e-6, "\(normalizer)")
            assertClose(result.output, expected.weights.matmul(v), rtol: 1e-5, atol: 1e-6, "\(normalizer)")
            XCTAssertEqual(result.logProbability?.shape, expected.logProbability?.shape)
        }
    }
}
