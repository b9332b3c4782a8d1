import CHeedKernels
@testable import HeedAttention
import HeedTensor
import HeedTestSupport
import Foundation
import XCTest

/// The flash engine against the dense reference engine: outputs and every
/// gradient, over sizes, head dimensions, Tq ≠ Tk, grouped heads, softcap and
/// every kernel path (AVX-512 where present, AVX2+FMA and portable).
///
/// Tolerance: both engines run in f32 and differ only in summation order (the
/// flash engine sums each row tile by tile, rescaling) and in exp/tanh
/// implementations (≤ 2 ulp each). The error of an f32 sum of n terms grows
/// like √n·ε relative to the largest term, ≈ 2·10⁻⁶ at n = 1024 keys, so every
/// comparison asserts max |flash − dense| ≤ 10⁻⁵ · max |dense| per tensor
/// (see `assertAgree`), with gradients from a random linear loss.
final class FlashAttentionTests: XCTestCase {
    /// One problem: sizes, mechanism, and what to compare.
    struct Case {
        var batch = 1, heads = 2, keyHeads = 2, queryLength = 7, keyLength = 7, depth = 32, valueDepth: Int? = nil
        var attention = Attention()
        var seed: UInt64 = 1
        var label: String { "B\(batch) H\(heads)/\(keyHeads) Tq\(queryLength) Tk\(keyLength) D\(depth)" }
    }

    /// Runs `c` on both engines and asserts outputs and gradients agree.
    static func checkAgainstDense(_ c: Case, learned: [Tensor] = [], tolerance: Float = 1e-5, _ message: String = "",
                                  file: StaticString = #filePath, line: UInt = #line) {
        let dv = c.valueDepth ?? c.depth
        let q = randomTensor([c.batch, c.heads, c.queryLength, c.depth], seed: c.seed)
        let k = randomTensor([c.batch, c.keyHeads, c.keyLength, c.depth], seed: c.seed + 1)
        let v = randomTensor([c.batch, c.keyHeads, c.keyLength, dv], seed: c.seed + 2)
        let probe = Tensor.randomNormal([c.batch, c.heads, c.queryLength, dv], seed: c.seed + 3)
        let parameters = [q, k, v] + learned
        let names = ["dq", "dk", "dv"] + learned.indices.map { "dlearned\($0)" }

        func run(_ engine: Attention.Engine) -> (Tensor, [Tensor?]) {
            for parameter in parameters { parameter.grad = nil }
            var attention = c.attention
            attention.engine = engine
            let result = attention(query: q, key: k, value: v)
            XCTAssertEqual(result.engine, engine, file: file, line: line)
            (result.output * probe).sum().backward()
            return (result.output.detached(), parameters.map(\.grad))
        }
        let (denseOutput, denseGradients) = run(.dense)
        let (flashOutput, flashGradients) = run(.flash)
        let label = "\(c.label) \(message)"
        assertAgree(flashOutput, denseOutput, tolerance: tolerance, "output \(label)", file: file, line: line)
        for (index, (flash, dense)) in zip(flashGradients, denseGradients).enumerated() {
            guard let dense else { XCTAssertNil(flash, "\(names[index]) \(label)", file: file, line: line); continue }
            guard let flash else { XCTFail("no \(names[index]) from flash \(label)", file: file, line: line); continue }
            assertAgree(flash, dense, tolerance: tolerance, "\(names[index]) \(label)", file: file, line: line)
        }
    }

    /// max |actual − expected| ≤ tolerance · max |expected| (and ≤ 10⁻⁶ when expected is all zeros), no NaN.
    static func assertAgree(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ message: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, message, file: file, line: line)
        let a = actual.scalars, e = expected.scalars
        XCTAssertFalse(a.contains { $0.isNaN }, "NaN in \(message)", file: file, line: line)
        let scale = e.map(Swift.abs).max() ?? 0
        var worst: Float = 0, at = 0
        for i in a.indices where Swift.abs(a[i] - e[i]) > worst { worst = Swift.abs(a[i] - e[i]); at = i }
        XCTAssertLessThanOrEqual(worst, Swift.max(tolerance * scale, 1e-6),
                                 "\(message): element \(at) is \(a.isEmpty ? 0 : a[at]) vs \(e.isEmpty ? 0 : e[at]) (scale \(scale))",
                                 file: file, line: line)
    }

    func testSizesAndHeadDimensions() {
        // L ∈ {1, 7, 64, 65, 300, 1024} × D ∈ {32, 59, 64, 128}, not every pair: the larger L with small H and D.
        let sizes: [(Int, Int, Int)] = [(1, 1, 32), (1, 1, 128), (7, 7, 59), (7, 7, 64), (64, 64, 64), (64, 64, 59),
                                        (65, 65, 128), (65, 65, 32), (300, 300, 32), (300, 300, 59)]
        for (tq, tk, d) in sizes {
            Self.checkAgainstDense(Case(queryLength: tq, keyLength: tk, depth: d, seed: UInt64(tq * 1000 + d)))
        }
        Self.checkAgainstDense(Case(heads: 1, keyHeads: 1, queryLength: 1024, keyLength: 1024, depth: 32, seed: 5))
    }

    func testDifferentQueryAndKeyLengths() {
        for (tq, tk) in [(1, 65), (7, 300), (65, 7), (300, 64), (96, 97), (97, 96)] {
            Self.checkAgainstDense(Case(batch: 2, queryLength: tq, keyLength: tk, depth: 59, valueDepth: 17, seed: UInt64(tq + tk)))
        }
        // Runs of whole tiles in several steps (HEED_FLASH_KEY_RUN, HEED_FLASH_QUERY_RUN): 1100 keys in
        // the forward and 1100 query rows in the backward go in three steps of 368; with a softcap, 600
        // rows in two of 304.
        for (tq, tk) in [(40, 1100), (1100, 40)] {
            Self.checkAgainstDense(Case(queryLength: tq, keyLength: tk, depth: 32, valueDepth: 24, seed: UInt64(tq + 2 * tk)))
        }
        Self.checkAgainstDense(Case(queryLength: 600, keyLength: 100, depth: 32, attention: Attention(softcap: 30), seed: 6),
                               "softcap 30")
    }

    func testGroupedAndMultiQueryHeads() {
        for keyHeads in [2, 1] {
            Self.checkAgainstDense(Case(batch: 2, heads: 4, keyHeads: keyHeads, queryLength: 65, keyLength: 130, depth: 32,
                                        attention: Attention(pattern: .causal(.bottomRight)), seed: 40 + UInt64(keyHeads)))
        }
    }

    func testScaleTemperatureDotScoreAndSoftcap() {
        let base = Case(queryLength: 100, keyLength: 120, depth: 64)
        var c = base
        c.attention = Attention(score: .scaledDot(scale: 0.3), temperature: 0.7)
        Self.checkAgainstDense(c, "scale 0.3, τ 0.7")
        c.attention = Attention(score: .dot, temperature: 2)
        Self.checkAgainstDense(c, "dot, τ 2")
        c.attention = Attention(score: .scaledDot(scale: 2), softcap: 5, pattern: .causal())
        Self.checkAgainstDense(c, "softcap 5 (scores saturate)")
        c.attention = Attention(softcap: 30)
        Self.checkAgainstDense(c, "softcap 30")
    }

    /// Later key steps whose scores jump far above the running maximum: the
    /// forward's one-pass path (exponentials against the current maximum, a
    /// step's row sum up to 2^12) must hand such steps to the two-pass path,
    /// and rows whose maximum creeps up within the headroom must stay exact —
    /// with the AVX-512 kernel (where the CPU has it) and the AVX2 one. Keys in
    /// whole tiles go in steps of up to 512 (HEED_FLASH_KEY_RUN): 400 keys are
    /// one step, whose first try at m = 0 overflows; 1400 are steps of 480, and
    /// the jumps fall in the second and third.
    func testScoresThatOutgrowTheRunningMaximum() {
        XCTAssertEqual(FlashProblem.runLength(1400, limit: FlashProblem.keyRun), 480)
        for (tk, jumps, rise) in [(400, [150, 260, 399], 200 ..< 220), (1400, [600, 1000, 1399], 700 ..< 720)] {
            let d = 16, tq = 40
            var keys = Tensor.randomNormal([1, 1, tk, d], std: 0.1, seed: 3).scalars
            // Scores (scale 1/4) of about 15, 26 and 200 at the jumps, against ≈ 0.1 elsewhere: the
            // last is 2^280 times the running maximum's weight, which would overflow f32 without the
            // two-pass fallback.
            for (j, value) in zip(jumps, [Float(3.75), 6.5, 50]) {
                for c in 0 ..< d { keys[j * d + c] = value }
            }
            for j in rise { for c in 0 ..< d { keys[j * d + c] = 0.5 } }      // a modest rise (within the headroom)
            let q = Tensor(Tensor.randomUniform([1, 1, tq, d], low: 0.5, high: 1.5, seed: 1).scalars, shape: [1, 1, tq, d],
                           requiresGrad: true)
            let k = Tensor(keys, shape: [1, 1, tk, d], requiresGrad: true)
            let v = randomTensor([1, 1, tk, d], seed: 2)
            defer { heed_kernels_allow_avx512(1) }
            for avx512 in [Int32(1), 0] {
                heed_kernels_allow_avx512(avx512)
                for attention in [Attention(), Attention(score: .scaledDot(scale: 0.05))] {
                    var dense = attention, flash = attention
                    dense.engine = .dense
                    flash.engine = .flash
                    let expected = dense(query: q, key: k, value: v), actual = flash(query: q, key: k, value: v)
                    Self.assertAgree(actual.output, expected.output, tolerance: 1e-5, "output, Tk \(tk), AVX-512 allowed: \(avx512)")
                    assertClose(actual.weights, expected.weights, rtol: 1e-4, atol: 1e-6, "weights, Tk \(tk)")
                }
            }
        }
    }

    /// Runs of whole tiles go in the fewest steps of at most HEED_FLASH_KEY_RUN
    /// keys (forward) or HEED_FLASH_QUERY_RUN rows (backward), of equal
    /// length in whole 16-key panels.
    func testRunLengths() {
        XCTAssertEqual(FlashProblem.keyRun, 512)
        XCTAssertEqual(FlashProblem.queryRun, 384)
        for (count, length) in [(12, 16), (96, 96), (480, 480), (512, 512), (513, 272), (600, 304), (1024, 512),
                                (1100, 368), (1400, 480), (4096, 512), (4097, 464)] {
            XCTAssertEqual(FlashProblem.runLength(count, limit: 512), length, "\(count) keys or rows")
        }
        for (count, length) in [(384, 384), (385, 208), (600, 304), (1024, 352), (1100, 368)] {
            XCTAssertEqual(FlashProblem.runLength(count, limit: FlashProblem.queryRun), length, "\(count) rows")
        }
        XCTAssertEqual(FlashProblem.runLength(200, limit: 96), 80, "200 in steps of at most 96: three of 80")
    }

    /// A row's first key tile tries the one-pass path at m = 0; rows whose
    /// scores all lie far below 0 (their sum would underflow there) or far
    /// above it (it would exceed the headroom) must take the two-pass step and
    /// stay exact — scores near −200, −80, +60 and +200, over one and several
    /// key tiles, with both forward kernels.
    ///
    /// The reference is the attention computed in Double from the same f32
    /// inputs. f32 scores of magnitude |S| carry an absolute rounding error of
    /// about |S|·2⁻²⁴, which the softmax passes on as relative error in the
    /// weights, so both engines are held to max(10⁻⁵, 4·|S|·2⁻²⁴) of the
    /// output's scale (at |S| = 200 the dense engine itself is 1.1·10⁻⁵ off).
    func testFirstKeyTileFarFromZero() {
        let (tq, d) = (30, 16)
        defer { heed_kernels_allow_avx512(1) }
        for avx512 in [Int32(1), 0] {
            heed_kernels_allow_avx512(avx512)
            for (level, tk) in [(Float(-200), 150), (-80, 97), (60, 250), (200, 40)] {
                // q = 1 everywhere; key j = level/4 + noise per column, so a score (scale 1/4) ≈ level.
                let noise = Tensor.randomNormal([1, 1, tk, d], std: 0.05, seed: UInt64(tk)).scalars
                let keys = noise.map { $0 + level / Float(d) * 4 }
                let q = Tensor([Float](repeating: 1, count: tq * d), shape: [1, 1, tq, d])
                let k = Tensor(keys, shape: [1, 1, tk, d])
                let v = randomTensor([1, 1, tk, d], seed: 5)
                let exact = Self.exactAttention(query: q.scalars, key: keys, value: v.scalars, queryLength: tq,
                                                keyLength: tk, depth: d, scale: 0.25)
                let tolerance = Swift.max(1e-5, 4 * Swift.abs(level) * 0x1p-24)
                for engine in [Attention.Engine.dense, .flash] {
                    var attention = Attention()
                    attention.engine = engine
                    Self.assertAgree(attention(query: q, key: k, value: v).output, exact, tolerance: tolerance,
                                     "\(engine) output, scores ≈ \(level), AVX-512 allowed: \(avx512)")
                }
            }
        }
    }

    /// softmax(scale·Q Kᵀ) V for one head, in Double from f32 inputs ([Tq, D], [Tk, D], [Tk, D]).
    static func exactAttention(query: [Float], key: [Float], value: [Float], queryLength: Int, keyLength: Int,
                               depth: Int, scale: Double) -> Tensor {
        var output = [Float](repeating: 0, count: queryLength * depth)
        for i in 0 ..< queryLength {
            let scores = (0 ..< keyLength).map { j in
                (0 ..< depth).reduce(0.0) { $0 + Double(query[i * depth + $1]) * Double(key[j * depth + $1]) } * scale
            }
            let maximum = scores.max() ?? 0
            let weights = scores.map { Foundation.exp($0 - maximum) }
            let total = weights.reduce(0, +)
            for c in 0 ..< depth {
                let sum = (0 ..< keyLength).reduce(0.0) { $0 + weights[$1] * Double(value[$1 * depth + c]) }
                output[i * depth + c] = Float(sum / total)
            }
        }
        return Tensor(output, shape: [1, 1, queryLength, depth])
    }

    /// Where the CPU has AVX-512 the sweeps above run its forward kernel; this
    /// runs the AVX2 one on the same kind of problems (keys in blocks of 16
    /// and 32 plus a remainder, one and several key tiles, the one-pass path
    /// included) so that both stay checked.
    func testAVX2KernelsAgreeWhereAVX512Runs() {
        heed_kernels_allow_avx512(0)
        defer { heed_kernels_allow_avx512(1) }
        for (tq, tk, d) in [(65, 65, 32), (300, 300, 59), (97, 1024, 64)] {
            Self.checkAgainstDense(Case(queryLength: tq, keyLength: tk, depth: d, seed: UInt64(tq + tk + d)), "AVX2")
        }
    }

    func testPortableKernelsAgree() {
        heed_kernels_force_portable(1)
        defer { heed_kernels_force_portable(0) }
        Self.checkAgainstDense(Case(queryLength: 65, keyLength: 100, depth: 59, attention: Attention(softcap: 3, pattern: .causal())),
                               "portable")
        Self.checkAgainstDense(Case(batch: 2, heads: 2, keyHeads: 1, queryLength: 7, keyLength: 7, depth: 32,
                                    attention: Attention(pattern: .keyPadding(lengths: [0, 5]), dropout: 0.3, dropoutSeed: 9)),
                               "portable, padding and dropout")
    }

    func testEngineChoice() {
        let q = randomTensor([1, 2, 8, 16], seed: 1), k = randomTensor([1, 2, 8, 16], seed: 2)
        let big = randomTensor([1, 2, 100, 16], seed: 3)
        XCTAssertEqual(Attention()(query: q, key: k, value: k).engine, .dense, "8 × 8 is tiny")
        XCTAssertEqual(Attention()(query: big, key: big, value: big).engine, .flash, "100 × 100 goes flash")
        XCTAssertEqual(Attention(engine: .dense)(query: big, key: big, value: big).engine, .dense, "forced dense")
        XCTAssertEqual(Attention(engine: .flash)(query: q, key: k, value: k).engine, .flash, "forced flash")
        XCTAssertEqual(Attention(normalizer: .sparsemax)(query: big, key: big, value: big).engine, .dense)
        XCTAssertNotNil(Attention(normalizer: .sparsemax).flashUnsupportedReason)
        XCTAssertNotNil(Attention(score: .cosine()).flashUnsupportedReason)
        XCTAssertNil(Attention(score: .dot, softcap: 3, pattern: .causal(), dropout: 0.1).flashUnsupportedReason)
    }

    /// The kernels' e^x for x ≤ 0 (as 2^(x·log₂e)): relative error ≤ (2.5 + 1.5|x|)·2⁻²⁴
    /// against Foundation.exp in Double — 1.3 ulp of the polynomial plus the
    /// error of t = x·log₂e (its rounding, |t|·2⁻²⁴, and f32 log₂e's own
    /// 0.22 ulp), which becomes a relative error of ln 2 times itself in 2^t:
    /// ≈ 1.22|x|·2⁻²⁴. It grows with |x| but never exceeds 3.3·10⁻⁸ in
    /// absolute terms (max |x|e^x·1.5·2⁻²⁴), far below a softmax row's
    /// largest term, 1. Exactly 0 below −86.6 (2^t < 2^−125) and at −inf; NaN stays NaN.
    func testExponentialAccuracy() {
        var inputs: [Float] = [0, -0.0, -Float.leastNonzeroMagnitude, -1e-30, -1e-7, -0.5, -1, -20, -87, -87.3]
        var generator = RandomGenerator(seed: 11)
        for _ in 0 ..< 20000 { inputs.append(-88 * generator.nextUniform()) }
        for _ in 0 ..< 2000 { inputs.append(-generator.nextUniform()) }
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            var outputs = [Float](repeating: 0, count: inputs.count)
            heed_flash_exp_f32(inputs, &outputs, Int64(inputs.count))
            for (x, y) in zip(inputs, outputs) {
                let exact = Foundation.exp(Double(x))
                if exact < 0x1p-125 { XCTAssertLessThanOrEqual(y, 0x1p-125, "e^\(x) flushes"); continue }
                let bound = (2.5 + 1.5 * Double(Swift.abs(x))) * 0x1p-24 * exact
                XCTAssertLessThanOrEqual(Swift.abs(Double(y) - exact), bound, "e^\(x) = \(y), portable \(portable)")
            }
            var specials: [Float] = [-.infinity, -200, .nan]
            heed_flash_exp_f32(specials, &specials, 3)
            XCTAssertEqual(Array(specials[0 ..< 2]), [0, 0])
            XCTAssertTrue(specials[2].isNaN)
        }
        heed_kernels_force_portable(0)
    }

    func testEmptyKeysGiveZeros() {
        let q = randomTensor([1, 2, 5, 8], seed: 1), k = randomTensor([1, 2, 0, 8], seed: 2), v = randomTensor([1, 2, 0, 3], seed: 3)
        let result = FlashAttention.attention(query: q, key: k, value: v)
        XCTAssertEqual(result.output.scalars, [Float](repeating: 0, count: 30))
        XCTAssertTrue(result.logSumExp.scalars.allSatisfy { $0 == -.infinity })
        result.output.sum().backward()
        XCTAssertEqual(q.grad?.scalars, [Float](repeating: 0, count: 80))
    }
}
