import CHeedKernels
import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

/// The C kernels of CHeedKernels, held to independent references:
/// - the vector exp against Foundation's double-precision exp, in ulps, over a
///   sweep of the whole float range and its edges;
/// - every dispatched (AVX2+FMA) kernel against the portable one on awkward
///   lengths and special values — bit for bit where the operation is exact,
///   within a stated ulp bound where it is not;
/// - tanh, sigmoid, silu, erf, the GELUs, their derivatives and log against
///   Foundation's double functions.
///
/// The ulp of a reference value y is 2^(⌊log2|y|⌋ − 23) for normal |y| and the
/// smallest subnormal 2^−149 below; a result equal to Float(y) (y correctly
/// rounded, ±inf and 0 included) has error 0.
final class KernelTests: XCTestCase {
    override func tearDown() {
        heed_kernels_force_portable(0)
        super.tearDown()
    }

    // MARK: Dispatch

    func testDispatchPicksAVX2WhereTheCPUHasItAndCanBeForcedPortable() throws {
        #if arch(x86_64)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let words = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        guard words.contains("avx2") && words.contains("fma") else { throw XCTSkip("CPU without AVX2+FMA (or no /proc/cpuinfo)") }
        XCTAssertEqual(String(cString: heed_kernels_isa()), "avx2+fma")
        heed_kernels_force_portable(1)
        XCTAssertEqual(String(cString: heed_kernels_isa()), "portable")
        heed_kernels_force_portable(0)
        XCTAssertEqual(String(cString: heed_kernels_isa()), "avx2+fma")
        #else
        throw XCTSkip("AVX2 dispatch exists on x86 only")
        #endif
    }

    /// CPUKernels names what runs from /proc/cpuinfo's flags, caps it at each
    /// level, and restores the best with `.automatic`.
    func testCPUKernelsLevelsFollowTheCPUFlags() throws {
        #if arch(x86_64)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let words = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        guard !words.isEmpty else { throw XCTSkip("no /proc/cpuinfo") }
        defer { CPUKernels.limit(to: .automatic) }
        let hasAVX2 = words.contains("avx2") && words.contains("fma")
        let hasAVX512 = hasAVX2 && words.contains("avx512f") && words.contains("avx512vl") && words.contains("avx512dq")
        let best = hasAVX512 ? "avx512" : hasAVX2 ? "avx2+fma" : "portable"
        XCTAssertEqual(CPUKernels.supports(.avx2), hasAVX2)
        CPUKernels.limit(to: .portable)
        XCTAssertEqual(CPUKernels.active, "portable")
        XCTAssertTrue(CPUKernels.supports(.avx2) == hasAVX2, "supports() reads the CPU, not the current cap")
        CPUKernels.limit(to: .avx2)
        XCTAssertEqual(CPUKernels.active, hasAVX2 ? "avx2+fma" : "portable")
        XCTAssertEqual(heed_kernels_avx512_active(), 0)
        CPUKernels.limit(to: .automatic)
        XCTAssertEqual(CPUKernels.active, best)
        #else
        throw XCTSkip("the AVX levels exist on x86 only")
        #endif
    }

    /// Where the CPU has AVX-512, GELU (erf) runs on 16 lanes; it must return
    /// the AVX2 kernel's bits on every value, tails of every length included.
    func testAVX512GeluEqualsAVX2BitForBit() throws {
        heed_kernels_allow_avx512(1)
        defer { heed_kernels_allow_avx512(1) }
        guard heed_kernels_avx512_active() != 0 else { throw XCTSkip("no AVX-512 on this CPU") }
        var values = Tensor.randomNormal([4000], std: 3, seed: 77).scalars
        values += [0, -0.0, .infinity, -.infinity, .nan, 1e-40, -1e-40, 0.7071067, 0.70710677, -0.70710677, 5.5, -5.5,
                   -15, -15.5, 40, -40, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        for count in Array(1 ... 40) + [values.count] {
            let x = Array(values.suffix(count))
            let wide = unary(HEED_GELU_ERF, x)
            heed_kernels_allow_avx512(0)
            let narrow = unary(HEED_GELU_ERF, x)
            heed_kernels_allow_avx512(1)
            XCTAssertEqual(wide.map(\.bitPattern), narrow.map(\.bitPattern), "\(count) values")
        }
    }

    // MARK: (a) exp in ulps over the whole float range

    func testExpIsWithinTwoUlpsOverTheWholeFloatRange() {
        var inputs: [Float] = []
        // Every 1021st bit pattern of all 2^32: every sign, exponent and a
        // spread of mantissas (a full sweep: `HeedBenchmarks accuracy`).
        var bits: UInt64 = 0
        while bits < 1 << 32 { inputs.append(Float(bitPattern: UInt32(bits))); bits += 1021 }
        // Dense where the result becomes subnormal, underflows, or overflows.
        for (low, high, count) in [(-104.0, -86.0, 200_000), (88.0, 89.0, 50_000), (-1.0, 1.0, 50_000)] as [(Float, Float, Int)] {
            for i in 0...count { inputs.append(low + (high - low) * Float(i) / Float(count)) }
        }
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, 0, -0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                                 .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                 88.72283, 88.72284, 88.7229, -87.33654, -103.27893, -103.97208, -103.97209, -104.5]
        inputs += specials
        let outputs = unary(HEED_EXP, inputs)

        var worst = 0.0, worstInput: Float = 0, subnormals = 0, overflows = 0, underflows = 0
        for (x, y) in zip(inputs, outputs) {
            let reference = Foundation.exp(Double(x))
            let error = ulpError(y, reference)
            if error > worst { worst = error; worstInput = x }
            if reference < Double(Float.leastNormalMagnitude) && reference >= Double(Float.leastNonzeroMagnitude) { subnormals += 1 }
            if y == .infinity && x.isFinite { overflows += 1 }
            if y == 0 && x.isFinite { underflows += 1 }
        }
        XCTAssertLessThanOrEqual(worst, 2, "exp: \(worst) ulp at x = \(worstInput) (\(worstInput.bitPattern))")
        XCTAssertGreaterThan(subnormals, 10_000, "the sweep must reach subnormal results")
        XCTAssertGreaterThan(overflows, 100)
        XCTAssertGreaterThan(underflows, 100)
        // Specials exactly.
        let special = unary(HEED_EXP, [-.infinity, .infinity, .nan, 0, -0, -104, 89])
        XCTAssertEqual(special[0], 0)
        XCTAssertEqual(special[1], .infinity)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], 1)
        XCTAssertEqual(special[4], 1)
        XCTAssertEqual(special[5], 0)
        XCTAssertEqual(special[6], .infinity)
    }

    /// A tensor above TensorStorage.hugePageThresholdBytes (posix_memalign +
    /// madvise path) through kernels split over the cores: every element right.
    func testLargeTensorThroughHugePageStorageAndSplitKernels() {
        let n = (TensorStorage.hugePageThresholdBytes / MemoryLayout<Float>.stride) + 12_345
        let x = Tensor.full([n], 0.5)
        let y = x.exp(), z = y + x
        let expected = Float(Foundation.exp(0.5))
        XCTAssertLessThanOrEqual(ulpError(y.withUnsafeScalars { $0[n - 1] }, Foundation.exp(0.5)), 2)
        let first = y.withUnsafeScalars { $0[0] }
        XCTAssertLessThanOrEqual(Swift.abs(first - expected), 2 * expected.ulp)
        XCTAssertTrue(y.withUnsafeScalars { $0.allSatisfy { $0 == first } }, "exp differs between chunks")
        XCTAssertTrue(z.withUnsafeScalars { $0.allSatisfy { $0 == first + 0.5 } }, "add differs between chunks")
    }

    /// Storage of ≥ TensorStorage.reuseThresholdBytes is kept when its tensor
    /// goes and handed to the next tensor that fits (the same block here), which
    /// still sees only its own values; a much smaller request takes a new block.
    func testLargeStorageIsReusedAndHoldsOnlyItsOwnValues() {
        let n = TensorStorage.reuseThresholdBytes / MemoryLayout<Float>.stride + 1000
        func address(_ t: Tensor) -> UnsafePointer<Float>? { t.withUnsafeScalars { $0.baseAddress } }
        var first: UnsafePointer<Float>?
        do {
            let ones = Tensor.full([n], 1)
            first = address(ones)
            XCTAssertEqual(ones.sum().item(), Float(n))
        }
        let zeros = Tensor.zeros([n - 7])                     // within a quarter: takes the block back
        XCTAssertEqual(address(zeros), first, "the idle block was not reused")
        XCTAssertTrue(zeros.withUnsafeScalars { $0.allSatisfy { $0 == 0 } })
        let scalars = (0 ..< n).map { Float($0 % 97) }
        let other = Tensor(scalars, shape: [n])              // another block: the first is still in use
        XCTAssertNotEqual(address(other), first)
        XCTAssertEqual(other.scalars, scalars)
    }

    // MARK: (b) dispatched kernels against the portable ones

    static let lengths = [0, 1, 7, 8, 9, 59, 1000, 1025]

    /// Seeded normals (std 3) with special values spread over the run,
    /// the last element included (so masked tails see them).
    static func awkwardInput(_ n: Int, seed: UInt64) -> [Float] {
        var values = Tensor.randomNormal([n], std: 3, seed: seed).scalars
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0, .leastNormalMagnitude / 4096, -.leastNormalMagnitude / 4096, 88.7, -88.7, 1e30, -1e30,
                                 100, -100, 20, -20, 0.5, -0.5, 1e-6, -1e-6, 15, -15]
        for (k, value) in specials.enumerated() where n > 0 {
            values[(k * 37 + n - 1) % n] = value
        }
        return values
    }

    /// Ops whose AVX2 form performs the same IEEE operations as the portable one.
    static let exactUnary: [heed_unary_op] = [HEED_NEG, HEED_SQRT, HEED_RSQRT, HEED_RELU, HEED_ABS, HEED_SIGN,
                                              HEED_STEP, HEED_RECIPROCAL, HEED_SQUARE]

    func testExactUnaryKernelsMatchPortableBitForBit() {
        for op in Self.exactUnary {
            for n in Self.lengths {
                let x = Self.awkwardInput(n, seed: UInt64(n) + 7)
                let (fast, portable) = bothPaths { unary(op, x) }
                assertIdentical(fast, portable, "unary op \(op.rawValue), n = \(n)")
            }
        }
    }

    /// Approximate unary ops: the AVX2 result and the portable (glibc-based) one
    /// each sit within a few ulps of the truth (KernelAccuracy below and the exp
    /// sweep above), so they differ by at most the sum of the two bounds.
    /// `atol` (scaled by max(1, |x|)) covers results that are subnormal, where
    /// ulps mean little, and — for the GELUs — the portable kernel's own
    /// cancellation in ½x(1 + …) for x ≪ 0, whose absolute error is about
    /// ulp(1)·|x| (the AVX2 forms do not cancel; see KernelAccuracyTests).
    func testApproximateUnaryKernelsAgreeWithPortable() {
        // ulps = the AVX2 bound asserted against double references in this file
        // (exp 2, log 1.5, tanh 2, sigmoid 3, silu 3.5, erf 1.5, gelu 5) plus
        // glibc's float functions used by the portable kernels (expf, logf
        // < 1 ulp; tanhf, erff about 1–2), rounded to the half ulp; for the
        // tanh-form GELU the float rounding of u dominates (see below).
        let cases: [(heed_unary_op, ulps: Double, atol: Double)] = [
            (HEED_EXP, 2.5, 0), (HEED_LOG, 2, 0), (HEED_TANH, 3.5, 0), (HEED_SIGMOID, 3.5, 1e-37),
            (HEED_SILU, 4.5, 1e-36), (HEED_ERF, 2.5, 0), (HEED_GELU_ERF, 8, 1.2e-7), (HEED_GELU_TANH, 16, 1.2e-7),
            (HEED_GELU_ERF_GRAD, 8, 6e-7), (HEED_GELU_TANH_GRAD, 16, 6e-7), (HEED_SILU_GRAD, 8, 3e-7),
        ]
        for (op, ulps, atol) in cases {
            for n in Self.lengths {
                // Large finite inputs are kept for exp/log; the GELUs' portable
                // forms overflow x³ for |x| ≳ 1e13, which the test does not pin down.
                var x = Self.awkwardInput(n, seed: UInt64(n) + 11)
                if op != HEED_EXP && op != HEED_LOG { x = x.map { Swift.abs($0) > 1e12 ? ($0 > 0 ? 60 : -60) : $0 } }
                let (fast, portable) = bothPaths { unary(op, x) }
                assertWithinUlps(fast, portable, ulps: ulps, atol: atol, inputs: x, "unary op \(op.rawValue), n = \(n)")
            }
        }
    }

    func testBinaryKernelsMatchPortableBitForBitInEveryStrideMode() {
        let ops: [heed_binary_op] = [HEED_ADD, HEED_SUB, HEED_MUL, HEED_DIV, HEED_MAXIMUM, HEED_MINIMUM, HEED_POW,
                                     HEED_EQUAL, HEED_GREATER, HEED_LESS]
        for op in ops {
            for n in Self.lengths {
                var a = Self.awkwardInput(n, seed: 100 + UInt64(n)), b = Self.awkwardInput(n, seed: 200 + UInt64(n))
                if n > 4 { b[1] = a[1]; b[3] = a[3] }   // ties for EQUAL and the max/min order
                for (sa, sb) in [(1, 1), (1, 0), (0, 1), (0, 0)] {
                    let (fast, portable) = bothPaths { binary(op, a, sa, b, sb, n) }
                    assertIdentical(fast, portable, "binary op \(op.rawValue), n = \(n), strides \(sa)/\(sb)")
                }
            }
        }
    }

    func testReductionsAndAccumulateMatchPortable() {
        for n in Self.lengths {
            let clean = Tensor.randomNormal([n], std: 3, seed: 300 + UInt64(n)).scalars
            let awkward = Self.awkwardInput(n, seed: 400 + UInt64(n))
            for x in [clean, awkward] {
                for op in [HEED_REDUCE_SUM, HEED_REDUCE_MAX, HEED_REDUCE_MIN] {
                    let (fast, portable) = bothPaths { [x.withUnsafeBufferPointer { heed_reduce_f32(op, $0.baseAddress, Int64(n)) }] }
                    if op == HEED_REDUCE_SUM {
                        // Same eight lane accumulators and final order: bit for bit.
                        assertIdentical(fast, portable, "sum, n = \(n)")
                    } else {
                        // The same set of candidates; only the sign of a zero may depend on order.
                        XCTAssertTrue(fast[0] == portable[0] || (fast[0].isNaN && portable[0].isNaN),
                                      "reduce \(op.rawValue), n = \(n): \(fast[0]) vs \(portable[0])")
                    }
                }
                for op in [HEED_REDUCE_SUM, HEED_REDUCE_MAX, HEED_REDUCE_MIN] {
                    let other = Self.awkwardInput(n, seed: 500 + UInt64(n))
                    let (fast, portable) = bothPaths { () -> [Float] in
                        var acc = other
                        acc.withUnsafeMutableBufferPointer { pa in x.withUnsafeBufferPointer { px in
                            heed_accumulate_f32(op, pa.baseAddress, px.baseAddress, Int64(n)) } }
                        return acc
                    }
                    assertIdentical(fast, portable, "accumulate \(op.rawValue), n = \(n)")
                }
            }
            // Empty runs and NaN, on the dispatched path.
            XCTAssertEqual(heed_reduce_f32(HEED_REDUCE_MAX, nil, 0), -.infinity)
            XCTAssertEqual(heed_reduce_f32(HEED_REDUCE_MIN, nil, 0), .infinity)
            XCTAssertEqual(heed_reduce_f32(HEED_REDUCE_SUM, nil, 0), 0)
            if n > 0 {
                var withNaN = clean
                withNaN[n - 1] = .nan
                XCTAssertTrue(withNaN.withUnsafeBufferPointer { heed_reduce_f32(HEED_REDUCE_MAX, $0.baseAddress, Int64(n)) }.isNaN)
                XCTAssertTrue(withNaN.withUnsafeBufferPointer { heed_reduce_f32(HEED_REDUCE_MIN, $0.baseAddress, Int64(n)) }.isNaN)
            }
        }
    }

    func testAffineMatchesPortableBitForBit() {
        for n in Self.lengths {
            let x = Self.awkwardInput(n, seed: 600 + UInt64(n))
            let (fast, portable) = bothPaths { () -> [Float] in
                var out = [Float](repeating: 0, count: n)
                x.withUnsafeBufferPointer { px in out.withUnsafeMutableBufferPointer { po in
                    heed_affine_f32(px.baseAddress, 0.3, -1.7, po.baseAddress, Int64(n)) } }
                return out
            }
            assertIdentical(fast, portable, "affine, n = \(n)")
        }
    }

    /// Softmax rows: against a double-precision reference (both paths) and
    /// each other. Bound: exp's 2 ulp plus the normalising sum, whose rounding
    /// error is at most (n/8 + 3)·2^−24 relative with eight lanes (AVX2) and
    /// (n − 1)·2^−24 with one sequential accumulator (portable). On random rows
    /// both stay near the random-walk size √n·2^−24: rtol 2e-6 for AVX2 and
    /// 1e-5 for portable hold at 1025 columns.
    /// heed_layer_norm_rows_f32: AVX2 and portable bit for bit, both against a
    /// double-precision layer norm, with and without weight/bias, in place.
    func testLayerNormRows() {
        for cols in Self.lengths where cols > 0 {
            let rows = 3
            var x = Tensor.randomNormal([rows, cols], std: 3, seed: 900 + UInt64(cols)).scalars
            for c in 0..<cols { x[cols + c] = 1e4 + x[cols + c] }              // row 1: a large mean
            for c in 0..<cols { x[2 * cols + c] = 0.25 }                       // row 2: constant (σ² = 0 → ε)
            let weight = Tensor.randomNormal([cols], seed: 901).scalars, bias = Tensor.randomNormal([cols], seed: 902).scalars
            for affine in [false, true] {
                func run() -> [Float] {
                    var out = x
                    out.withUnsafeMutableBufferPointer { o in
                        heed_layer_norm_rows_f32(o.baseAddress, o.baseAddress, Int64(rows), Int64(cols),
                                                 affine ? weight : nil, affine ? bias : nil, 1e-5)   // in place
                    }
                    return out
                }
                let (fast, portable) = bothPaths(run)
                XCTAssertEqual(fast.map(\.bitPattern), portable.map(\.bitPattern), "avx2 vs portable, cols = \(cols)")
                for r in 0..<rows {
                    let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
                    let mean = row.reduce(0, +) / Double(cols)
                    let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cols)
                    let expected = row.indices.map { c -> Float in
                        let y = (row[c] - mean) / (variance + 1e-5).squareRoot()
                        return Float(affine ? y * Double(weight[c]) + Double(bias[c]) : y)
                    }
                    // Row 1's f32 inputs near 1e4 carry absolute error ~5e-4 into x − μ.
                    assertClose(Array(fast[(r * cols)..<((r + 1) * cols)]), expected, rtol: 1e-4, atol: r == 1 ? 2e-3 : 2e-5,
                                "row \(r), cols = \(cols), affine \(affine)")
                }
            }
        }
    }

    func testSoftmaxAndLogSoftmaxRows() {
        for cols in Self.lengths where cols > 0 {
            let rows = 6
            var x = Tensor.randomNormal([rows, cols], std: 4, seed: 700 + UInt64(cols)).scalars
            for c in 0..<cols { x[c] = -.infinity }                             // row 0: fully masked
            for c in 0..<cols { x[cols + c] = c == cols / 2 ? 3 : -.infinity }  // row 1: one survivor
            x[2 * cols + cols - 1] = .nan                                        // row 2: NaN
            for c in 0..<cols { x[3 * cols + c] *= 1e30 }                        // row 3: huge logits
            let (fast, portable) = bothPaths { rowsKernel(heed_softmax_rows_f32, x, rows, cols) }
            let (fastLog, portableLog) = bothPaths { rowsKernel(heed_log_softmax_rows_f32, x, rows, cols) }
            for result in [fast, portable] {
                XCTAssertEqual(Array(result[0..<cols]), [Float](repeating: 0, count: cols), "masked row, cols = \(cols)")
                XCTAssertEqual(result[cols + cols / 2], 1, "one-hot row")
                XCTAssertEqual(result[cols..<(2 * cols)].reduce(0, +), 1, "one-hot row sums to 1")
                XCTAssertTrue(result[(2 * cols)..<(3 * cols)].allSatisfy(\.isNaN), "NaN row")
                XCTAssertFalse(result[(3 * cols)...].contains { $0.isNaN }, "huge logits stay finite, cols = \(cols)")
            }
            for result in [fastLog, portableLog] {
                XCTAssertTrue(result[0..<cols].allSatisfy { $0 == -.infinity }, "masked row gives -inf")
                XCTAssertEqual(result[cols + cols / 2], 0, "log of the one-hot entry")
            }
            let reference = referenceSoftmax(x, rows, cols)
            for r in 3..<rows {
                let range = (r * cols)..<((r + 1) * cols)
                for (name, result, rtol) in [("avx2", fast, Float(2e-6)), ("portable", portable, Float(1e-5))] {
                    assertClose(Array(result[range]), reference[range].map { Float($0.softmax) },
                                rtol: rtol, atol: 1e-37, "softmax \(name), row \(r), cols = \(cols)")
                }
                for (name, result) in [("avx2", fastLog), ("portable", portableLog)] {
                    // log-softmax = x − lse: absolute error ~ulp(x) + ulp(lse).
                    let expected = reference.map { Float($0.logSoftmax) }
                    for c in range where x[c].isFinite {
                        let tolerance = 4 * Double(Swift.max(Swift.abs(x[c]), Swift.abs(expected[c] - x[c]), 1).ulp)
                        XCTAssertLessThanOrEqual(Double(Swift.abs(result[c] - expected[c])), tolerance,
                                                 "log-softmax \(name), row \(r), col \(c), cols = \(cols)")
                    }
                }
            }
        }
    }
}

// MARK: (c) the nonlinearities against Foundation's double functions

extension KernelTests {
    /// A dense grid over [−20, 20], powers of two from 2^−140 to 2^12 with a
    /// few mantissas, both signs, and the special values.
    static let nonlinearityInputs: [Float] = {
        var x = (-5120...5120).map { Float($0) / 256 }
        for exponent in -140...12 {
            for mantissa: Float in [1, 1.2345, 1.5, 1.99] {
                let value = Float(sign: .plus, exponent: exponent, significand: mantissa)
                x += [value, -value]
            }
        }
        return x + [0, -0, .infinity, -.infinity, .nan]
    }()

    /// Ulp bounds for results of normal size; results below 2^−100 (where the
    /// exponential inside is subnormal and ulps of the result lose meaning)
    /// are held to an absolute 1e-30 instead. The bounds are the measured
    /// maxima rounded up by about half an ulp.
    func testNonlinearitiesAgainstFoundationDouble() {
        let c = (2 / Double.pi).squareRoot()
        func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
        func twiceU(_ x: Double) -> Double { 2 * c * (x + 0.044715 * x * x * x) }
        let cases: [(heed_unary_op, String, Double, (Double) -> Double)] = [
            (HEED_TANH, "tanh", 2, { Foundation.tanh($0) }),
            (HEED_SIGMOID, "sigmoid", 3, sigmoid),
            (HEED_SILU, "silu", 3.5, { $0 * sigmoid($0) }),
            (HEED_ERF, "erf", 1.5, { Foundation.erf($0) }),
            (HEED_GELU_ERF, "gelu", 5, { 0.5 * $0 * Foundation.erfc(-$0 / 2.0.squareRoot()) }),
        ]
        let x = Self.nonlinearityInputs
        for (op, name, bound, reference) in cases {
            let y = unary(op, x)
            var worst = 0.0, worstInput: Float = 0
            for (input, output) in zip(x, y) {
                let expected = reference(Double(input))
                if Swift.abs(expected) < 0x1p-100 && !expected.isNaN {
                    XCTAssertLessThanOrEqual(Swift.abs(Double(output) - expected), 1e-30, "\(name)(\(input))")
                    continue
                }
                let error = ulpError(output, expected)
                if error > worst { worst = error; worstInput = input }
            }
            XCTAssertLessThanOrEqual(worst, bound, "\(name): \(worst) ulp at x = \(worstInput)")
        }

        // GELU (tanh form): 2u = 2√(2/π)(x + 0.044715x³) is formed in float, and
        // its relative rounding error δ (a few 2^−24) moves σ(2u) by a relative
        // (1 − σ)·|2u|·δ. So the bound grows with |2u|: 3 + 3·|2u| ulps.
        let geluTanh = unary(HEED_GELU_TANH, x)
        for (input, output) in zip(x, geluTanh) where Swift.abs(input) < 1e6 {
            let u2 = twiceU(Double(input))
            let expected = Double(input) * sigmoid(u2)
            if Swift.abs(expected) < 0x1p-100 && !expected.isNaN { continue }
            XCTAssertLessThanOrEqual(ulpError(output, expected), 3 + 3 * Swift.abs(u2), "gelu tanh form at \(input)")
        }

        // Derivatives: each cancels to 0 at the minimum of its function
        // (x ≈ −0.7518 for GELU, −1.2785 for SiLU), so relative error is
        // unbounded there; the bound is 8 ulp plus 2^−23 (one ulp at 1, the
        // size of the terms that cancel).
        let derivatives: [(heed_unary_op, String, (Double) -> Double)] = [
            (HEED_GELU_ERF_GRAD, "gelu'", { x in
                0.5 * Foundation.erfc(-x / 2.0.squareRoot()) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }),
            (HEED_GELU_TANH_GRAD, "gelu tanh'", { x in
                guard Swift.abs(x) <= 20 else { return x > 0 ? 1 : 0 }
                let s = sigmoid(twiceU(x)), complement = sigmoid(-twiceU(x))
                return s + 2 * x * s * complement * c * (1 + 3 * 0.044715 * x * x) }),
            (HEED_SILU_GRAD, "silu'", { x in sigmoid(x) * (1 + x * sigmoid(-x)) }),
        ]
        for (op, name, reference) in derivatives {
            let y = unary(op, x)
            for (input, output) in zip(x, y) where input.isFinite {
                let expected = reference(Double(input))
                let error = Swift.abs(Double(output) - expected)
                XCTAssertLessThanOrEqual(error, 8 * ulp(of: expected) + 0x1p-23, "\(name)(\(input)) = \(output), expected \(expected)")
            }
        }
    }

    /// ln over every 4093rd positive float (subnormals included) within 1.5 ulp,
    /// and its special values exactly.
    func testLogAgainstFoundationDouble() {
        var inputs: [Float] = []
        var bits: UInt32 = 1
        while bits < 0x7f80_0000 { inputs.append(Float(bitPattern: bits)); bits += 4093 }
        let outputs = unary(HEED_LOG, inputs)
        var worst = 0.0, worstInput: Float = 0
        for (x, y) in zip(inputs, outputs) {
            let error = ulpError(y, Foundation.log(Double(x)))
            if error > worst { worst = error; worstInput = x }
        }
        XCTAssertLessThanOrEqual(worst, 1.5, "log: \(worst) ulp at x = \(worstInput)")
        let special = unary(HEED_LOG, [0, -0, -1, -.infinity, .infinity, .nan, 1])
        XCTAssertEqual(special[0], -.infinity)
        XCTAssertEqual(special[1], -.infinity)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertTrue(special[3].isNaN)
        XCTAssertEqual(special[4], .infinity)
        XCTAssertTrue(special[5].isNaN)
        XCTAssertEqual(special[6], 0)
    }
}

// MARK: Helpers

/// Runs `body` on the dispatched path, then with the portable kernels forced.
func bothPaths<T>(_ body: () -> T) -> (fast: T, portable: T) {
    heed_kernels_force_portable(0)
    let fast = body()
    heed_kernels_force_portable(1)
    defer { heed_kernels_force_portable(0) }
    return (fast, body())
}

func unary(_ op: heed_unary_op, _ x: [Float]) -> [Float] {
    var out = [Float](repeating: .nan, count: x.count)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in heed_unary_f32(op, px.baseAddress, po.baseAddress, Int64(x.count)) }
    }
    return out
}

/// out[i] = a[i·sa] OP b[i·sb] for n elements.
func binary(_ op: heed_binary_op, _ a: [Float], _ sa: Int, _ b: [Float], _ sb: Int, _ n: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: n)
    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in out.withUnsafeMutableBufferPointer { po in
        heed_binary_f32(op, pa.baseAddress, Int64(sa), pb.baseAddress, Int64(sb), po.baseAddress, Int64(n))
    } } }
    return out
}

func rowsKernel(_ kernel: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int64, Int64) -> Void,
                _ x: [Float], _ rows: Int, _ cols: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: x.count)
    x.withUnsafeBufferPointer { px in out.withUnsafeMutableBufferPointer { po in
        kernel(px.baseAddress, po.baseAddress, Int64(rows), Int64(cols)) } }
    return out
}

/// Softmax and log-softmax of each row in double precision.
func referenceSoftmax(_ x: [Float], _ rows: Int, _ cols: Int) -> [(softmax: Double, logSoftmax: Double)] {
    var result: [(Double, Double)] = []
    for r in 0..<rows {
        let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
        let m = row.max() ?? -.infinity
        let sum = row.reduce(0) { $0 + Foundation.exp($1 - m) }
        result += row.map { (Foundation.exp($0 - m) / sum, $0 - m - Foundation.log(sum)) }
    }
    return result
}

/// The ulp of a reference value: 2^(⌊log2|y|⌋ − 23), or 2^−149 below the normal range.
func ulp(of reference: Double) -> Double {
    let magnitude = Swift.abs(reference)
    if magnitude < Double(Float.leastNormalMagnitude) { return Double(Float.leastNonzeroMagnitude) }
    return Double(sign: .plus, exponent: Swift.min(magnitude.exponent, 127) - 23, significand: 1)
}

/// |got − reference| in ulps of the reference; 0 when got is the correctly
/// rounded value (infinities and zeros included); NaN must meet NaN.
func ulpError(_ got: Float, _ reference: Double) -> Double {
    if reference.isNaN { return got.isNaN ? 0 : .infinity }
    if Float(reference) == got { return 0 }
    if !got.isFinite { return .infinity }
    return Swift.abs(Double(got) - reference) / ulp(of: reference)
}

/// Bit-for-bit equality, any NaN matching any NaN.
func assertIdentical(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where x.bitPattern != y.bitPattern && !(x.isNaN && y.isNaN) {
        XCTFail("\(message): element \(i): \(x) vs \(y)", file: file, line: line)
        return
    }
}

/// |a − b| <= ulps·ulp(b) + atol·max(1, |input|) elementwise; NaN only with NaN, infinities exactly.
func assertWithinUlps(_ a: [Float], _ b: [Float], ulps: Double, atol: Double, inputs: [Float], _ message: String,
                      file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() {
        if x.isNaN || y.isNaN || x.isInfinite || y.isInfinite {
            if !(x.isNaN && y.isNaN) && x != y {
                XCTFail("\(message): input \(inputs[i]): \(x) vs \(y)", file: file, line: line)
                return
            }
            continue
        }
        let difference = Swift.abs(Double(x) - Double(y))
        if difference > ulps * ulp(of: Double(y)) + atol * Swift.max(1, Double(Swift.abs(inputs[i]))) {
            XCTFail("\(message): input \(inputs[i]): \(x) vs \(y) (\(difference / ulp(of: Double(y))) ulp)", file: file, line: line)
            return
        }
    }
}
