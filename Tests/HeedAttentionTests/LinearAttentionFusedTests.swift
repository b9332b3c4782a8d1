import XCTest
import CHeedKernels
import Foundation
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// The fused linear-attention kernels (the causal scan in CHeedKernels'
/// linear_scan.c and the fused feature maps) against the composed reference
/// paths they replace: outputs and the gradients of every input — queries,
/// keys, values, RFA's gate parameters and gate input, the decay itself —
/// over a sweep of chunk sizes (1, 7, 64), Tq ≠ Tk, grouped and multi-query
/// heads, head dimension 59, on the AVX2 and the portable kernels; and the
/// vector sin/cos of RFA's features against Foundation in ulps.
final class LinearAttentionFusedTests: XCTestCase {
    private typealias Implementation = KernelizedAttention.Implementation

    /// Runs `body` once per implementation on fresh copies of `inputs`, seeds
    /// the backward with the same random tensor, and compares the fused run's
    /// output and every gradient with the reference run's.
    private func compare(_ label: String, _ inputs: [Tensor], rtol: Float = 2e-4, atol: Float = 2e-5,
                         file: StaticString = #filePath, line: UInt = #line,
                         _ body: (Implementation, [Tensor]) -> Tensor) {
        var runs: [(output: Tensor, gradients: [Tensor?])] = []
        for implementation in [Implementation.fused, .reference] {
            let leaves = inputs.map { Tensor($0.scalars, shape: $0.shape, requiresGrad: $0.requiresGrad) }
            let output = body(implementation, leaves)
            output.backward(Tensor.randomNormal(output.shape, seed: 77))
            runs.append((output.detached(), leaves.map { $0.grad }))
        }
        assertClose(runs[0].output, runs[1].output, rtol: rtol, atol: atol, "\(label) output", file: file, line: line)
        for (index, input) in inputs.enumerated() where input.requiresGrad {
            guard let fused = runs[0].gradients[index], let reference = runs[1].gradients[index] else {
                XCTFail("\(label): input \(index) has no gradient", file: file, line: line)
                continue
            }
            assertClose(fused, reference, rtol: rtol, atol: atol, "\(label) gradient of input \(index)", file: file, line: line)
        }
    }

    /// Runs `body` with the dispatched kernels and again with the portable ones.
    private func onBothKernelSets(_ body: (String) -> Void) {
        body(String(cString: heed_kernels_isa()))
        heed_kernels_force_portable(1)
        defer { heed_kernels_force_portable(0) }
        body("portable")
    }

    /// (Tq, Tk) pairs: equal lengths, more keys than queries (a prefix of keys
    /// only feeds the state), a single token, and a length that crosses chunks of 64.
    private let lengths = [(9, 9), (5, 13), (1, 1), (2, 11), (70, 70)]

    // MARK: The scan alone

    /// The scan on given features, signed or positive, with and without a decay
    /// (including one strong enough to forget a chunk: e^{−30}), gradients of
    /// all five inputs.
    func testCausalScanMatchesTheReference() {
        onBothKernelSets { kernels in
            var seed: UInt64 = 1
            func next() -> UInt64 { seed += 1; return seed }
            for (tq, tk) in lengths {
                for chunk in [1, 7, 64] where !(tk == 70 && chunk == 1) {
                    for (heads, keyHeads) in [(2, 2), (4, 2), (3, 1)] {
                        for decayed in [false, true] {
                            let (b, f, dv) = (2, 6, 5)
                            let fq = randomTensor([b, heads, tq, f], seed: next(), std: 0.5)
                            let fk = randomTensor([b, keyHeads, tk, f], seed: next(), std: 0.5)
                            let value = randomTensor([b, keyHeads, tk, dv], seed: next())
                            // Positive features (as Performer and elu+1 give; signed ones can make a
                            // denominator vanish, which turns the comparison into one of roundings).
                            let logDecay = Tensor.minimum(Tensor.randomNormal([b, heads, tk], std: 3, seed: next()) - 2, Tensor(scalar: 0))
                            let inputs = [fq, fk, value] + (decayed ? [Tensor(logDecay.scalars, shape: logDecay.shape, requiresGrad: true),
                                                                       Tensor.randomUniform([b, heads, tk], low: 0.2, high: 1.5, seed: next(),
                                                                                            requiresGrad: true)] : [])
                            compare("\(kernels) Tq \(tq) Tk \(tk) chunk \(chunk) H \(heads)/\(keyHeads) decay \(decayed)", inputs,
                                    rtol: 5e-4, atol: 5e-5) { implementation, x in
                                let decay = decayed ? KernelizedAttention.Decay(logDecay: x[3], inputScale: x[4]) : nil
                                return KernelizedAttention.causal(queryFeatures: x[0].exp(), keyFeatures: x[1].exp(),
                                                                  value: x[2], chunkSize: chunk, denominatorEpsilon: decayed ? 1e-3 : 0,
                                                                  decay: decay, implementation: implementation)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The bidirectional kernel, with more queries than keys too (no
    /// alignment constraint) and lengths that cross its chunks of 64.
    func testBidirectionalMatchesTheReference() {
        onBothKernelSets { kernels in
            for (tq, tk) in [(9, 9), (5, 13), (13, 5), (1, 1), (70, 70), (130, 3)] {
                for (heads, keyHeads) in [(2, 2), (4, 2), (3, 1)] {
                    let inputs = [randomTensor([2, heads, tq, 6], seed: 40, std: 0.5), randomTensor([2, keyHeads, tk, 6], seed: 41, std: 0.5),
                                  randomTensor([2, keyHeads, tk, 5], seed: 42)]
                    compare("\(kernels) bidirectional Tq \(tq) Tk \(tk) H \(heads)/\(keyHeads)", inputs) { implementation, x in
                        KernelizedAttention.bidirectional(queryFeatures: x[0].exp(), keyFeatures: x[1].exp(), value: x[2],
                                                          denominatorEpsilon: 1e-3, implementation: implementation)
                    }
                }
            }
        }
    }

    /// The decay's gradients — derived by hand for the kernel (linear_scan.c)
    /// — against central differences of the dense formula in Double:
    ///
    /// ```
    /// L = Σ_i seed_i · Σ_j w_ij v_j / (Σ_j w_ij + ε),  w_ij = φq_i·φk_j · e^{Σ_{j<l≤p_i} logDecay_l} · inputScale_j
    /// ```
    ///
    /// with two query heads sharing one key/value head, more keys than
    /// queries, and chunks of 2 (so several checkpoint segments).
    func testDecayGradientsAgainstFiniteDifferencesOfTheDenseFormula() {
        let (heads, tq, tk, f, dv, epsilon) = (2, 6, 9, 3, 2, 1e-3)
        let fq = randomTensor([1, heads, tq, f], seed: 30, std: 0.5, requiresGrad: false).exp()
        let fk = randomTensor([1, 1, tk, f], seed: 31, std: 0.5, requiresGrad: false).exp()
        let value = randomTensor([1, 1, tk, dv], seed: 32, requiresGrad: false)
        let logDecay = Tensor(Tensor.randomUniform([1, heads, tk], low: -3, high: 0, seed: 33).scalars, shape: [1, heads, tk], requiresGrad: true)
        let inputScale = Tensor.randomUniform([1, heads, tk], low: 0.2, high: 1.5, seed: 34, requiresGrad: true)
        let seed = Tensor.randomNormal([1, heads, tq, dv], seed: 35)
        for kernels in ["dispatched", "portable"] {
            heed_kernels_force_portable(kernels == "portable" ? 1 : 0)
            defer { heed_kernels_force_portable(0) }
            logDecay.grad = nil
            inputScale.grad = nil
            KernelizedAttention.causal(queryFeatures: fq, keyFeatures: fk, value: value, chunkSize: 2, denominatorEpsilon: Float(epsilon),
                                       decay: .init(logDecay: logDecay, inputScale: inputScale)).backward(seed)
            let (q, k, v, w) = (fq.scalars.map(Double.init), fk.scalars.map(Double.init), value.scalars.map(Double.init), seed.scalars.map(Double.init))
            func loss(_ decay: [Double], _ scale: [Double]) -> Double {
                var total = 0.0
                for head in 0..<heads {
                    for i in 0..<tq {
                        let position = i + tk - tq
                        var numerator = [Double](repeating: 0, count: dv), denominator = epsilon
                        for j in 0...position {
                            let similarity = (0..<f).reduce(0.0) { $0 + q[(head * tq + i) * f + $1] * k[j * f + $1] }
                            let carried = j < position ? ((j + 1)...position).reduce(0.0) { $0 + decay[head * tk + $1] } : 0
                            let weight = similarity * Foundation.exp(carried) * scale[head * tk + j]
                            denominator += weight
                            for d in 0..<dv { numerator[d] += weight * v[j * dv + d] }
                        }
                        for d in 0..<dv { total += w[(head * tq + i) * dv + d] * numerator[d] / denominator }
                    }
                }
                return total
            }
            let (decay, scale) = (logDecay.scalars.map(Double.init), inputScale.scalars.map(Double.init))
            for (name, analytic, isDecay) in [("logDecay", logDecay.grad!.scalars, true), ("inputScale", inputScale.grad!.scalars, false)] {
                let step = 1e-6
                let numeric: [Float] = (0..<(heads * tk)).map { l in
                    var (up, down) = (isDecay ? decay : scale, isDecay ? decay : scale)
                    up[l] += step
                    down[l] -= step
                    let difference = isDecay ? loss(up, scale) - loss(down, scale) : loss(decay, up) - loss(decay, down)
                    return Float(difference / (2 * step))
                }
                assertClose(analytic, numeric, rtol: 1e-3, atol: 1e-4, "\(kernels) \(name)")
            }
        }
    }

    /// A shut gate (e^{−40} per step) is no problem for the fused scan: every
    /// exponent it forms is ≤ 0, so nothing overflows, and the gradients are finite.
    func testStrongDecayStaysFinite() {
        let positive = { (seed: UInt64) in
            Tensor(randomTensor([1, 1, 20, 4], seed: seed, requiresGrad: false).exp().scalars, shape: [1, 1, 20, 4], requiresGrad: true)
        }
        let (fq, fk) = (positive(5), positive(6))
        let value = randomTensor([1, 1, 20, 3], seed: 7)
        let logDecay = Tensor(Array(repeating: -40, count: 20), shape: [1, 1, 20], requiresGrad: true)
        let inputScale = Tensor(Array(repeating: 1, count: 20), shape: [1, 1, 20], requiresGrad: true)
        let out = KernelizedAttention.causal(queryFeatures: fq, keyFeatures: fk, value: value, chunkSize: 8,
                                             decay: .init(logDecay: logDecay, inputScale: inputScale))
        assertClose(out, value.detached(), rtol: 1e-5, atol: 1e-6, "a shut gate returns the current value")
        out.backward(Tensor.randomNormal(out.shape, seed: 8))
        for tensor in [fq, fk, value, logDecay, inputScale] {
            XCTAssertTrue(tensor.grad!.scalars.allSatisfy { $0.isFinite })
        }
    }

    // MARK: The engines end to end

    func testPerformerMatchesTheReference() {
        onBothKernelSets { kernels in
            for (tq, tk) in lengths {
                for (heads, keyHeads, d) in [(2, 2, 5), (4, 2, 59), (2, 1, 8)] {
                    let performer = Performer(features: 16, headDimension: d, seed: UInt64(d))
                    let inputs = [randomTensor([2, heads, tq, d], seed: 1, std: 0.7), randomTensor([2, keyHeads, tk, d], seed: 2, std: 0.7),
                                  randomTensor([2, keyHeads, tk, 3], seed: 3)]
                    for causal in [false, true] {
                        for chunk in causal ? [1, 7, 64] : [64] where !(tk == 70 && chunk == 1) {
                            compare("\(kernels) performer Tq \(tq) Tk \(tk) H \(heads)/\(keyHeads) D \(d) causal \(causal) chunk \(chunk)",
                                    inputs) { implementation, x in
                                var engine = performer
                                engine.implementation = implementation
                                return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: chunk)
                            }
                        }
                    }
                }
            }
        }
    }

    func testRandomFeatureAttentionMatchesTheReference() {
        onBothKernelSets { kernels in
            for (tq, tk) in lengths {
                for (heads, keyHeads, d) in [(2, 2, 5), (4, 2, 59)] {
                    for normalizes in [true, false] {
                        var rfa = RandomFeatureAttention(features: 8, headDimension: d, sigma: 1.3, seed: UInt64(d), normalizesInputs: normalizes)
                        rfa.denominatorEpsilon = 0.25   // keeps the signed estimate's denominator away from 0
                        // Without normalisation, inputs of norm ≈ 1 keep the angles O(1) (and the
                        // estimate meaningful: with angles of O(√D) the denominator is noise, and
                        // the comparison one of amplified roundings).
                        let std: Float = normalizes ? 1 : 1 / Float(d).squareRoot()
                        let inputs = [randomTensor([2, heads, tq, d], seed: 4, std: std), randomTensor([2, keyHeads, tk, d], seed: 5, std: std),
                                      randomTensor([2, keyHeads, tk, 3], seed: 6)]
                        for causal in [false, true] {
                            for chunk in causal ? [1, 7, 64] : [64] where !(tk == 70 && chunk == 1) {
                                compare("\(kernels) rfa Tq \(tq) Tk \(tk) H \(heads)/\(keyHeads) D \(d) unit \(normalizes) causal \(causal) chunk \(chunk)",
                                        inputs, rtol: 5e-4, atol: 5e-5) { implementation, x in
                                    var engine = rfa
                                    engine.implementation = implementation
                                    return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: chunk)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The gated RFA (Peng et al., 2021, eq. 7): gradients of q, k, v and of
    /// the gate's weight, bias and input.
    func testGatedRandomFeatureAttentionMatchesTheReference() {
        onBothKernelSets { kernels in
            for (tq, tk) in lengths {
                for (heads, keyHeads) in [(2, 2), (4, 2), (2, 1)] {
                    let rfa = RandomFeatureAttention(features: 8, headDimension: 4, sigma: 1.5, seed: 9)
                    let inputs = [randomTensor([2, heads, tq, 4], seed: 10), randomTensor([2, keyHeads, tk, 4], seed: 11),
                                  randomTensor([2, keyHeads, tk, 3], seed: 12), randomTensor([2, 1, tk, 3], seed: 13, std: 2),
                                  randomTensor([heads, 3], seed: 14), Tensor((0..<heads).map { Float($0) - 1 }, requiresGrad: true)]
                    for chunk in [1, 7, 64] where !(tk == 70 && chunk == 1) {
                        compare("\(kernels) gated rfa Tq \(tq) Tk \(tk) H \(heads)/\(keyHeads) chunk \(chunk)", inputs,
                                rtol: 5e-4, atol: 5e-5) { implementation, x in
                            var engine = rfa
                            engine.implementation = implementation
                            engine.denominatorEpsilon = 0.25
                            engine.gate = .init(weight: x[4], bias: x[5])
                            return engine(query: x[0], key: x[1], value: x[2], causal: true, gateInput: x[3], chunkSize: chunk)
                        }
                    }
                }
            }
        }
    }

    func testEluLinearAttentionMatchesTheReference() {
        onBothKernelSets { kernels in
            for (tq, tk) in lengths {
                for (heads, keyHeads, d) in [(2, 2, 5), (4, 2, 59), (3, 1, 4)] {
                    let inputs = [randomAwayFromZero([2, heads, tq, d], seed: 15), randomAwayFromZero([2, keyHeads, tk, d], seed: 16),
                                  randomTensor([2, keyHeads, tk, 3], seed: 17)]
                    for causal in [false, true] {
                        for chunk in causal ? [1, 7, 64] : [64] where !(tk == 70 && chunk == 1) {
                            compare("\(kernels) elu Tq \(tq) Tk \(tk) H \(heads)/\(keyHeads) D \(d) causal \(causal) chunk \(chunk)",
                                    inputs) { implementation, x in
                                var engine = LinearAttention()
                                engine.implementation = implementation
                                return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: chunk)
                            }
                        }
                    }
                }
            }
        }
    }

    /// One batch and one key/value head for four query heads: fewer groups
    /// than cores, so the fused path splits the group into parts that each
    /// recompute the shared state (and map the keys themselves) and sums
    /// the parts' key and value gradients — for Performer also what reaches
    /// the keys' shift (ε 0.5, so that it counts).
    func testGroupSplitAcrossCoresMatchesTheReference() {
        let rfa = RandomFeatureAttention(features: 8, headDimension: 6, sigma: 1.5, seed: 21)
        var performer = Performer(features: 7, headDimension: 6, seed: 25)
        performer.featureEpsilon = 0.5
        for (tq, tk) in [(9, 9), (5, 13), (70, 70)] {
            let inputs = [randomAwayFromZero([1, 4, tq, 6], seed: 22), randomAwayFromZero([1, 1, tk, 6], seed: 23),
                          randomTensor([1, 1, tk, 3], seed: 24)]
            for causal in [false, true] {
                compare("elu split group Tq \(tq) Tk \(tk) causal \(causal)", inputs) { implementation, x in
                    var engine = LinearAttention()
                    engine.implementation = implementation
                    return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: 7)
                }
                compare("rfa split group Tq \(tq) Tk \(tk) causal \(causal)", inputs, rtol: 5e-4, atol: 5e-5) { implementation, x in
                    var engine = rfa
                    engine.implementation = implementation
                    return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: 7)
                }
                compare("performer split group Tq \(tq) Tk \(tk) causal \(causal)", inputs) { implementation, x in
                    var engine = performer
                    engine.implementation = implementation
                    return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: 7)
                }
            }
        }
    }

    /// Performer's shifts are maxima — of a query row, of a whole head of
    /// keys: when several entries tie (identical key rows; a projection with
    /// repeated rows, which ties entries within a row), the shift's gradient
    /// is shared among them as the composed `max` shares it. The shifts cancel
    /// between numerator and denominator but for ε, so their gradient is
    /// O(ε): a large ε (0.5) makes it count. (Identical keys make the output
    /// independent of the queries, hence distinct keys too, for the queries' ties.)
    func testPerformerSharesTheShiftGradientAmongTiedMaxima() {
        let distinct = Performer(features: 6, headDimension: 4, seed: 3)
        let w = RandomProjection.gaussian(rows: 3, columns: 4, seed: 4).scalars
        let repeated = Performer(projection: Tensor(w + w, shape: [6, 4]))
        let row = randomTensor([1, 1, 1, 4], seed: 18, requiresGrad: false)
        let identicalKeys = (row.expand(to: [1, 1, 3, 4]).reshaped([1, 1, 3, 4]) * 1).scalars   // three identical rows
        let distinctKeys = randomTensor([1, 1, 3, 4], seed: 25, requiresGrad: false).scalars
        onBothKernelSets { kernels in
            for (name, performer) in [("distinct", distinct), ("repeated", repeated)] {
                for (keyName, keys) in [("identical", identicalKeys), ("distinct", distinctKeys)] {
                    let inputs = [randomTensor([1, 1, 3, 4], seed: 19), Tensor(keys, shape: [1, 1, 3, 4], requiresGrad: true),
                                  randomTensor([1, 1, 3, 2], seed: 20)]
                    for epsilon: Float in [1e-6, 0.5] {
                        for causal in [false, true] {
                            compare("\(kernels) tied maxima, \(name) projection rows, \(keyName) keys, ε \(epsilon), causal \(causal)",
                                    inputs) { implementation, x in
                                var engine = performer
                                engine.implementation = implementation
                                engine.featureEpsilon = epsilon
                                return engine(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: 2)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The feature maps on their own (`features(of:)`, the fused ops of
    /// FusedFeatureMaps.swift) against their composed references, outputs and
    /// input gradients: Performer's queries and keys (ε 0.5, so the shifts'
    /// gradients do not cancel; tied maxima from a repeated projection and
    /// identical key rows), RFA's with and without normalisation, elu + 1.
    func testFeatureMapsMatchTheReference() {
        let w = RandomProjection.gaussian(rows: 5, columns: 6, seed: 26).scalars
        let row = randomTensor([1, 1, 1, 6], seed: 27, requiresGrad: false).scalars
        let tied = Tensor(Array(repeating: row, count: 4).flatMap { $0 } + randomTensor([1, 1, 3, 6], seed: 28).scalars,
                          shape: [1, 1, 7, 6], requiresGrad: true)                    // four identical rows, three others
        onBothKernelSets { kernels in
            for projection in [Tensor(w, shape: [5, 6]), Tensor(w + w, shape: [10, 6])] {
                var performer = Performer(projection: projection)
                performer.featureEpsilon = 0.5
                for (name, x) in [("random", randomTensor([2, 3, 70, 6], seed: 29, std: 0.7)), ("tied", tied)] {
                    for isQuery in [true, false] {
                        compare("\(kernels) performer features m \(projection.shape[0]) \(name) query \(isQuery)", [x]) { implementation, x in
                            var engine = performer
                            engine.implementation = implementation
                            return engine.features(of: x[0], isQuery: isQuery)
                        }
                    }
                }
            }
            for normalizes in [true, false] {
                let rfa = RandomFeatureAttention(features: 8, headDimension: 6, sigma: 1.3, seed: 30, normalizesInputs: normalizes)
                compare("\(kernels) rfa features unit \(normalizes)", [randomTensor([2, 3, 70, 6], seed: 31)], rtol: 5e-4, atol: 5e-5) { implementation, x in
                    var engine = rfa
                    engine.implementation = implementation
                    return engine.features(of: x[0])
                }
            }
            compare("\(kernels) elu features", [randomAwayFromZero([2, 3, 70, 6], seed: 32)]) { implementation, x in
                LinearAttention.features(x[0], implementation: implementation)
            }
        }
    }

    // MARK: Vector kernels

    /// RFA's fused features with W = [1], σ = 1 and no normalisation are
    /// [sin x, cos x]: within 2 ulp of the correctly rounded values, over
    /// ordinary arguments, tiny ones, the floats nearest multiples of π/2
    /// (where the reduction is hardest) and arguments beyond the vector
    /// range (libm), on both kernel sets.
    func testSineAndCosineFeaturesWithinTwoUlp() {
        var arguments: [Float] = [0, -0, 1e-30, -1e-30, 1e-7, Float.leastNonzeroMagnitude, 8191.9, 8192, 8192.5, -9000, 1e6, -3e7]
        var generator = RandomGenerator(seed: 21)
        for _ in 0..<20000 { arguments.append((generator.nextUniform() * 2 - 1) * 8192) }
        for _ in 0..<5000 { arguments.append((generator.nextUniform() * 2 - 1) * 4) }
        for exponent in -40...13 { arguments.append(Float(Foundation.pow(2.0, Double(exponent))) * 1.37) }
        for k in 1...5000 { arguments.append(Float(Double(k) * Double.pi / 2)) }
        let rfa = RandomFeatureAttention(projection: Tensor([1], shape: [1, 1]), sigma: 1, normalizesInputs: false)
        let input = Tensor(arguments, shape: [1, 1, arguments.count, 1])
        onBothKernelSets { kernels in
            let features = rfa.features(of: input).scalars                                 // [sin x, cos x] per row
            var worst: (ulps: Double, x: Float) = (0, 0)
            for (i, x) in arguments.enumerated() {
                for (value, exact) in [(features[2 * i], Foundation.sin(Double(x))), (features[2 * i + 1], Foundation.cos(Double(x)))] {
                    let ulps = Swift.abs(Double(value) - exact) / Double(Float(exact).ulp)
                    if ulps > worst.ulps { worst = (ulps, x) }
                }
            }
            XCTAssertLessThanOrEqual(worst.ulps, 2, "\(kernels): worst \(worst.ulps) ulp at x = \(worst.x)")
        }
    }

    /// elu+1's fused map equals the composed relu(x) + exp(min(x, 0)) to the
    /// exp kernel's accuracy, including at 0, ±∞ and large negative inputs.
    func testEluPlusOneFeaturesMatchTheComposedMap() {
        let x = Tensor([0, -0, 1, -1, 87, -87, -104, -200, .infinity, -.infinity, 0x1p-127, 1e-7, -1e-7] +
                       Tensor.randomNormal([1000], std: 5, seed: 22).scalars)
        onBothKernelSets { kernels in
            assertClose(LinearAttention.features(x), LinearAttention.features(x, implementation: .reference),
                        rtol: 3e-7, atol: 0, "\(kernels)")
        }
    }
}
